// Package measure holds what the benchmarks and the timing tests share to
// report a measurement: the machine's load when it was taken, and the
// median of rounds.
package measure

import (
	"os"
	"slices"
	"strings"
)

// LoadAverage returns the 1-, 5- and 15-minute load averages as
// /proc/loadavg gives them ("1.02 0.90 0.85"), or "?" where there are none.
func LoadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

// Median returns the median of xs, the mean of the middle two for an even
// count; xs must not be empty.
func Median(xs []float64) float64 {
	s := slices.Sorted(slices.Values(xs))
	m := len(s) / 2
	if len(s)%2 == 1 {
		return s[m]
	}
	return (s[m-1] + s[m]) / 2
}
