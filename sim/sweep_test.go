package sim_test

import (
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/masterless-go/masterless/sim"
)

// sweepSeeds is how many seeds a sweep runs: $SIM_SEEDS if set, else def
// (a tenth of it with -short). TestSweep's 10,000 take about 5 s of CPU
// without the race detector and ten times that with it, so make test runs
// the full sweeps without -race (target sweep) and SIM_SEEDS=300 with it
// (target unit).
func sweepSeeds(t *testing.T, def int) int {
	if s := os.Getenv("SIM_SEEDS"); s != "" {
		n, err := strconv.Atoi(s)
		require.NoError(t, err, "SIM_SEEDS")
		return n
	}
	if testing.Short() {
		return def / 10
	}
	return def
}

// TestSweep runs many random seeds of 2 to 5 nodes with random faults and
// commands; every one must keep the safety invariants at every step and reach
// quiescence once healed. $SIM_TRACE_DIR, if set, receives their traces.
func TestSweep(t *testing.T) {
	n := sweepSeeds(t, 10000)
	first := uint64(1)
	if s := os.Getenv("SIM_FIRST"); s != "" {
		f, err := strconv.ParseUint(s, 10, 64)
		require.NoError(t, err, "SIM_FIRST")
		first = f
	}
	res := sim.Sweep(sim.SweepConfig{First: first, Seeds: n, TraceDir: os.Getenv("SIM_TRACE_DIR"), StopAfter: 20})
	t.Logf("%d steps in %v: %.0f steps/s, %.0f seeds/s", res.Steps, res.Elapsed.Round(time.Millisecond),
		float64(res.Steps)/res.Elapsed.Seconds(), float64(res.Seeds)/res.Elapsed.Seconds())
	for i := range res.Failures {
		var b strings.Builder
		res.Failures[i].Report(&b)
		t.Log("\n" + b.String())
	}
	t.Log(res.Summary())
	require.LessOrEqual(t, res.Seeds, n)
	require.Empty(t, res.Failures, "see the reports above")
}

// TestSweepLegacyDialers sweeps meshes where half the Go nodes dial with
// masterless 0.4.1's protocol. Two Go nodes that meet over 0.4.1 must move to
// v1, or the pair has two leaders (acceptor on the 0.4.1 connection, greater
// id on the v1 one) and can end up with a different session at each end: 17
// of 2,000 seeds broke both-ends-agree before fsm's legacyUpgrade.
func TestSweepLegacyDialers(t *testing.T) {
	n := sweepSeeds(t, 2000)
	res := sim.Sweep(sim.SweepConfig{First: 500_000, Seeds: n, StopAfter: 5, Knobs: func(seed uint64) sim.Knobs {
		k := sim.DrawKnobs(seed)
		k.LegacyPM = 500
		return k
	}})
	for i := range res.Failures {
		var b strings.Builder
		res.Failures[i].Report(&b)
		t.Log("\n" + b.String())
	}
	t.Log(res.Summary())
	require.Empty(t, res.Failures, "see the reports above")
}

// BenchmarkSweep reports simulated fsm steps per second on one goroutine.
func BenchmarkSweep(b *testing.B) {
	steps := 0
	start := time.Now()
	for i := 0; b.Loop(); i++ {
		r := sim.RunSeed(sim.DrawKnobs(uint64(i%1000+1)), sim.Options{})
		steps += r.Steps
	}
	el := time.Since(start).Seconds()
	b.ReportMetric(float64(steps)/el, "events/s")
	b.ReportMetric(float64(b.N)/el, "seeds/s")
}

// TestSweepCatchesRepeatedBytes is the negative control of the delivery
// invariants end to end: an adapter that sends DATA segments twice must be
// caught repeating a message.
func TestSweepCatchesRepeatedBytes(t *testing.T) {
	res := sim.Sweep(sim.SweepConfig{First: 1, Seeds: 500, StopAfter: 1, Options: sim.Options{AdapterBug: sim.RepeatSegments}})
	require.NotEmpty(t, res.Failures, "an adapter that repeats bytes went unnoticed")
	require.ErrorContains(t, res.Failures[0].Err, "delivered twice")
}
