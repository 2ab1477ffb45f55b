package sim_test

import (
	"bytes"
	"flag"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/masterless-go/masterless/sim"
)

var knobFlags = sim.RegisterKnobs(flag.CommandLine)

// TestSeed replays one run: go test ./sim -run 'TestSeed$' -v -seed=N [knob flags].
// The failure report of any sweep prints this command with every knob.
func TestSeed(t *testing.T) {
	if knobFlags.Seed() == 0 {
		t.Skip("replays one run: pass -seed=N (and the knob flags a failure report prints)")
	}
	k, err := knobFlags.Resolve(knobFlags.Seed())
	require.NoError(t, err)
	opt := sim.Options{}
	if dir := os.Getenv("SIM_TRACE_DIR"); dir != "" {
		f, err := os.Create(dir + "/seed-" + strconv.FormatUint(k.Seed, 10) + ".ndjson")
		require.NoError(t, err)
		defer f.Close()
		opt.Trace = f
	}
	r := sim.RunSeed(k, opt)
	var b strings.Builder
	r.Report(&b)
	t.Log("\n" + b.String())
	if r.Err != nil {
		t.Fail()
	}
}

// TestDeterministic runs seeds twice with their NDJSON traces
// (spec/TRACE.md) and requires identical bytes.
func TestDeterministic(t *testing.T) {
	for _, seed := range []uint64{1, 2, 3, 42, 9052} {
		var a, b bytes.Buffer
		k := sim.DrawKnobs(seed)
		ra := sim.RunSeed(k, sim.Options{Trace: &a})
		rb := sim.RunSeed(k, sim.Options{Trace: &b})
		require.Greater(t, a.Len(), 1000, "seed %d: trace too short to mean anything", seed)
		require.Equal(t, ra.Steps, rb.Steps, "seed %d", seed)
		require.True(t, bytes.Equal(a.Bytes(), b.Bytes()), "seed %d: two runs of the same seed produced different traces", seed)
		// The trace leaves out the steps the model does not track (PING,
		// DATA, Send, heartbeats), so it has at most a few lines per step.
		require.Less(t, bytes.Count(a.Bytes(), []byte("\n")), 3*ra.Steps, "seed %d", seed)
	}
}

// TestSweepIndependentOfWorkers: a sweep's outcome does not depend on how
// many goroutines share the seeds, since each World is its own.
func TestSweepIndependentOfWorkers(t *testing.T) {
	one := sim.Sweep(sim.SweepConfig{First: 100, Seeds: 200, Workers: 1})
	two := sim.Sweep(sim.SweepConfig{First: 100, Seeds: 200, Workers: 2})
	require.Equal(t, 200, one.Seeds)
	require.Greater(t, one.Steps, int64(10000))
	require.Equal(t, one.Steps, two.Steps)
	require.Equal(t, one.Stats, two.Stats)
	require.Equal(t, one.Delivered, two.Delivered)
}
