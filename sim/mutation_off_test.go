//go:build !masterless_mutation

package sim_test

import (
	"flag"
	"io"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/masterless-go/masterless/sim"
)

// TestNoMutationWithoutTag: a build without the masterless_mutation tag
// cannot run a deliberately broken fsm; asking for one is an error, not a
// silently correct run (which would let a negative control pass vacuously).
func TestNoMutationWithoutTag(t *testing.T) {
	k := sim.DrawKnobs(1)
	k.Mutation = 1
	r := sim.RunSeed(k, sim.Options{})
	require.ErrorContains(t, r.Err, "-tags masterless_mutation")

	fs := flag.NewFlagSet("sim", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	kf := sim.RegisterKnobs(fs)
	require.NoError(t, fs.Parse([]string{"-mutation=1"}))
	_, err := kf.Resolve(1)
	require.ErrorContains(t, err, "-tags masterless_mutation")
}
