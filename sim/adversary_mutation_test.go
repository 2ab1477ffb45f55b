//go:build masterless_mutation

package sim_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/masterless-go/masterless/fsm"
)

// TestSweepAdversaryCatchesRefuseWhenFull is the sweep-level negative
// control of TestSweepAdversaryChangesNothing's comparison: against the old
// handshake slot rule (fsm.MutationRefuseWhenFull: a node whose slots are
// full refuses the newcomer instead of evicting the oldest silent
// connection), an idle flood keeps honest dialers out for a while. No
// invariant sees it (no session is touched, nobody is impersonated, the
// mesh converges once the flood stops), but what the honest users are told,
// and when, changes, and the comparison must say so. The seeds are those of
// TestSweepAdversaryIdleFloodChangesNothing, where the real rule changes
// nothing; the first that differs ends the test.
func TestSweepAdversaryCatchesRefuseWhenFull(t *testing.T) {
	for seed := uint64(idleFloodFirst); seed < idleFloodFirst+idleFloodSeeds; seed++ {
		k := idleFloodKnobs(seed)
		k.Mutation = fsm.MutationRefuseWhenFull
		w, _, diff := withAndWithout(t, k) // every invariant holds
		if diff != nil {
			t.Logf("seed %d, %d idle connections: %v", seed, w.Result().Stats.Adversary.Conns, diff)
			require.Zero(t, w.Result().Stats.Adversary.Evicted, "the old rule evicts nothing")
			return
		}
	}
	t.Fatalf("seeds %d to %d: an idle flood against nodes that refuse newcomers when full changed nothing the honest users see", idleFloodFirst, idleFloodFirst+idleFloodSeeds-1)
}
