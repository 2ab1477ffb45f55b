//go:build masterless_mutation

package sim_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/masterless-go/masterless/fsm"
	"github.com/masterless-go/masterless/sim"
)

// TestGraceCatchesIgnoredUnconfirmedSession is the negative control of
// no-protocol-error (spec.NoProtocolErrorBetweenHonest) and of
// TestGraceWaitsForUnconfirmedSession: with the reconnect grace ending on
// time while the peer is back on an unconfirmed session
// (fsm.MutationGraceIgnoresUnconfirmed), the seeds that found it must
// close an honest session with BYE protocol error: at least one of them,
// so that a change elsewhere in fsm that reshapes one run does not break
// the control (the race takes a rare schedule: 4 seeds in 20,000); when
// none catches it any more, redraw them as unconfirmedGraceSeeds says.
func TestGraceCatchesIgnoredUnconfirmedSession(t *testing.T) {
	caught := 0
	for _, seed := range unconfirmedGraceSeeds {
		k := unconfirmedGraceKnobs(seed)
		k.Mutation = fsm.MutationGraceIgnoresUnconfirmed
		r := sim.RunSeed(k, sim.Options{})
		if r.Err == nil {
			t.Logf("seed %d: the mutation went unnoticed", seed)
			continue
		}
		require.ErrorContains(t, r.Err, "no-protocol-error", "seed %d: another checker failed", seed)
		caught++
	}
	t.Logf("%d of %d seeds caught it", caught, len(unconfirmedGraceSeeds))
	require.Positive(t, caught, "no seed caught the mutation: redraw unconfirmedGraceSeeds")
}
