package main

import (
	"fmt"
	"io"
	"runtime/metrics"
)

// printSchedLatency writes to w how long this process's goroutines waited,
// runnable, before they ran (runtime/metrics /sched/latencies:seconds, as
// quantiles of the whole run), and the GC cycles and the CPU the runtime
// estimates the GC took. A wait near the peer timeout (5 s) ends sessions
// whose heartbeats did arrive but were not read in time.
func printSchedLatency(w io.Writer, label string) {
	s := []metrics.Sample{
		{Name: "/sched/latencies:seconds"},
		{Name: "/gc/cycles/total:gc-cycles"},
		{Name: "/cpu/classes/gc/total:cpu-seconds"},
	}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindFloat64Histogram {
		return
	}
	h := s[0].Value.Float64Histogram()
	var total uint64
	for _, c := range h.Counts {
		total += c
	}
	// upper returns the upper bound of the bucket holding quantile q.
	upper := func(q float64) float64 {
		var acc uint64
		for i, c := range h.Counts {
			acc += c
			if c > 0 && float64(acc) >= q*float64(total) {
				return h.Buckets[i+1]
			}
		}
		return 0
	}
	ms := func(sec float64) string { return fmt.Sprintf("%.3g ms", sec*1e3) }
	fmt.Fprintf(w, "%s: goroutines waited to run at most: %s (median), %s (99%%), %s (99.9%%), %s (all %d); %d GC cycles, GC CPU %.2f s\n",
		label, ms(upper(0.5)), ms(upper(0.99)), ms(upper(0.999)), ms(upper(1)), total,
		s[1].Value.Uint64(), s[2].Value.Float64())
}
