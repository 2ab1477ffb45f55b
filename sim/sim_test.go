package sim_test

import (
	"bytes"
	"flag"
	"io"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/masterless-go/masterless/fsm"
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

// TestDeterministic runs seeds twice and requires identical runs; built
// with -tags masterless_trace, it compares their NDJSON traces
// (spec/TRACE.md) byte for byte too.
func TestDeterministic(t *testing.T) {
	for _, seed := range []uint64{1, 2, 3, 42, 9052} {
		var a, b bytes.Buffer
		k := sim.DrawKnobs(seed)
		opt := func(buf *bytes.Buffer) sim.Options {
			if fsm.TraceCompiled {
				return sim.Options{Trace: buf}
			}
			return sim.Options{}
		}
		ra, rb := sim.RunSeed(k, opt(&a)), sim.RunSeed(k, opt(&b))
		require.NoError(t, ra.Err, "seed %d", seed)
		require.Equal(t, ra.Steps, rb.Steps, "seed %d", seed)
		require.Equal(t, ra.Virtual, rb.Virtual, "seed %d", seed)
		require.Equal(t, ra.Stats, rb.Stats, "seed %d", seed)
		require.Equal(t, ra.Delivered, rb.Delivered, "seed %d", seed)
		if !fsm.TraceCompiled {
			continue
		}
		require.Greater(t, a.Len(), 1000, "seed %d: trace too short to mean anything", seed)
		require.True(t, bytes.Equal(a.Bytes(), b.Bytes()), "seed %d: two runs of the same seed produced different traces", seed)
		// The trace leaves out the steps the model does not track (PING,
		// DATA, Send, heartbeats), so it has at most a few lines per step.
		require.Less(t, bytes.Count(a.Bytes(), []byte("\n")), 3*ra.Steps, "seed %d", seed)
	}
}

// TestTraceNeedsTheBuildTag: without the fsm's trace points a trace cannot
// be written, and asking for one says how to get it.
func TestTraceNeedsTheBuildTag(t *testing.T) {
	if fsm.TraceCompiled {
		t.Skip("built with -tags masterless_trace")
	}
	r := sim.RunSeed(sim.DrawKnobs(1), sim.Options{Trace: io.Discard})
	require.ErrorContains(t, r.Err, "-tags masterless_trace")
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
