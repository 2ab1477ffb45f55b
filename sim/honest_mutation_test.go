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
// (fsm.MutationGraceIgnoresUnconfirmed), each of the seeds that found it
// must close an honest session with BYE protocol error.
func TestGraceCatchesIgnoredUnconfirmedSession(t *testing.T) {
	for _, seed := range unconfirmedGraceSeeds {
		k := unconfirmedGraceKnobs(seed)
		k.Mutation = fsm.MutationGraceIgnoresUnconfirmed
		r := sim.RunSeed(k, sim.Options{})
		require.Error(t, r.Err, "seed %d: the mutation went unnoticed", seed)
		require.ErrorContains(t, r.Err, "no-protocol-error", "seed %d", seed)
	}
}
