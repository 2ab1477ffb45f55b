package sim_test

import (
	"flag"
	"io"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/masterless-go/masterless/sim"
)

// TestKnobsReplayFromTheirFlags: the flags a failing run prints (Knobs.Args,
// the replay command) give back every knob of the run, applied on top of
// the knobs of another seed, so that nothing the seed drew is left out of
// the replay.
func TestKnobsReplayFromTheirFlags(t *testing.T) {
	sawRedials := false
	for seed := uint64(1); seed <= 300; seed++ {
		k := sim.DrawKnobs(seed)
		sawRedials = sawRedials || k.MaxRedials > 0
		fs := flag.NewFlagSet("sim", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		kf := sim.RegisterKnobs(fs)
		require.NoError(t, fs.Parse(k.Args()))
		got, err := kf.ResolveOn(sim.DrawKnobs(seed + 1_000_000))
		require.NoError(t, err)
		got.Seed = k.Seed // -seed picks the seed Resolve draws from: ResolveOn is given the other's
		require.Equal(t, k, got, "seed %d: %s", seed, k)
	}
	require.True(t, sawRedials, "no seed drew a bound on redials")
}
