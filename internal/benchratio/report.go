package main

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"

	"github.com/masterless-go/masterless/internal/measure"
)

// targets are issue 10's ratios to bare TCP.
var targets = map[string]float64{
	"PingPong/masterless":   0.9,
	"OneWay/masterless":     0.8,
	"SendMany16/masterless": 0.7,
	"Echo/masterless":       0.7,
	"Churn/masterless":      0.5,
}

// baseline returns the name of the bare-TCP twin of benchmark name, or ""
// for a benchmark that has none.
func baseline(name string) string {
	if !strings.Contains(name, "masterless") {
		return ""
	}
	return strings.Replace(name, "masterless", "bare", 1)
}

// summary is a benchmark's figures over the rounds.
type summary struct {
	name      string
	this      []float64 // rate, this tree
	bare      []float64 // its baseline's rate, this tree
	ratio     []float64 // this / bare, per round
	oldRatio  []float64 // the same with the revision against
	thisByOld []float64 // this tree's rate / the revision's, per round
}

// summarize pairs every masterless benchmark with its baseline, round by
// round. A round in which either is missing is left out of that pair.
func summarize(all []round, this, against string) []summary {
	byRound := map[int]map[string]map[string]float64{}
	names := map[string]bool{}
	for _, r := range all {
		if byRound[r.n] == nil {
			byRound[r.n] = map[string]map[string]float64{}
		}
		byRound[r.n][r.bin] = r.rates
		for name := range r.rates {
			if baseline(name) != "" {
				names[name] = true
			}
		}
	}
	var out []summary
	for _, name := range slices.Sorted(maps.Keys(names)) {
		s := summary{name: name}
		for n := 1; n <= len(byRound); n++ {
			cur := byRound[n][this]
			v, b := cur[name], cur[baseline(name)]
			if v > 0 && b > 0 {
				s.this = append(s.this, v)
				s.bare = append(s.bare, b)
				s.ratio = append(s.ratio, v/b)
			}
			if against == "" {
				continue
			}
			old := byRound[n][against]
			if ov, ob := old[name], old[baseline(name)]; ov > 0 && ob > 0 {
				s.oldRatio = append(s.oldRatio, ov/ob)
				if v > 0 {
					s.thisByOld = append(s.thisByOld, v/ov)
				}
			}
		}
		if len(s.ratio) > 0 {
			out = append(out, s)
		}
	}
	return out
}

// report prints the table of summarize's figures and the rounds' loads.
func report(w io.Writer, all []round, this, against string) {
	head := []string{"benchmark", "masterless", "bare", "ratio", "target"}
	table(w, summarize(all, this, against), head, "ratio", against, func(s summary) []string {
		target := "—"
		if t, ok := targets[s.name]; ok {
			verdict := "not met"
			if measure.Median(s.ratio) >= t {
				verdict = "met"
			}
			target = fmt.Sprintf("%.2f, %s", t, verdict)
		}
		return []string{s.name, spread(s.this, rate), spread(s.bare, rate), spread(s.ratio, two), target}
	})
	var loads []string
	for _, r := range all {
		loads = append(loads, strings.Fields(r.load)[0])
	}
	fmt.Fprintf(w, "\n%d rounds; medians (min–max); ratios taken per round; one-minute load average at the start of each run: %s\n",
		roundsOf(all), strings.Join(loads, " "))
}

// roundsOf returns the number of rounds in all.
func roundsOf(all []round) int {
	n := 0
	for _, r := range all {
		n = max(n, r.n)
	}
	return n
}

// spread renders xs as "median (min–max)", "—" when empty.
func spread(xs []float64, f func(float64) string) string {
	if len(xs) == 0 {
		return "—"
	}
	return fmt.Sprintf("%s (%s–%s)", f(measure.Median(xs)), f(slices.Min(xs)), f(slices.Max(xs)))
}

func two(x float64) string { return fmt.Sprintf("%.2f", x) }

// rate renders a rate with a unit prefix: 4.82M, 62.6k.
func rate(x float64) string {
	switch {
	case x >= 1e6:
		return fmt.Sprintf("%.2fM", x/1e6)
	case x >= 1e3:
		return fmt.Sprintf("%.1fk", x/1e3)
	}
	return fmt.Sprintf("%.0f", x)
}

// reportCPU prints the CPU rounds (-cpu): each masterless benchmark's CPU
// per operation and its baseline's, and their ratio, per round, with the
// revision against when there is one. Lower is better in every column.
func reportCPU(w io.Writer, cpus []round, this, against string) {
	head := []string{"benchmark", "masterless, CPU/op", "bare, CPU/op", "masterless / bare"}
	table(w, summarize(cpus, this, against), head, "masterless / bare", against, func(s summary) []string {
		return []string{s.name, spread(s.this, nanos), spread(s.bare, nanos), spread(s.ratio, two)}
	})
}

// table prints sums as a Markdown table: the cells row gives, then, with a
// revision against, its ratio (named oldRatio in the head) and this tree's
// figure over the revision's.
func table(w io.Writer, sums []summary, head []string, oldRatio, against string, row func(summary) []string) {
	if against != "" {
		head = append(head, oldRatio+", "+against, "this / "+against)
	}
	fmt.Fprintln(w, "| "+strings.Join(head, " | ")+" |")
	fmt.Fprintln(w, strings.Repeat("|---", len(head))+"|")
	for _, s := range sums {
		cells := row(s)
		if against != "" {
			cells = append(cells, spread(s.oldRatio, two), spread(s.thisByOld, two))
		}
		fmt.Fprintln(w, "| "+strings.Join(cells, " | ")+" |")
	}
}

// nanos renders a duration in nanoseconds: 305 ns, 12.4 µs.
func nanos(x float64) string {
	if x >= 1e4 {
		return fmt.Sprintf("%.1f µs", x/1e3)
	}
	return fmt.Sprintf("%.0f ns", x)
}
