//go:build masterless_mutation

package sim_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/masterless-go/masterless/fsm"
)

// TestSweepDiscoveryCatchesBothDial is the negative control of
// TestSweepDiscoveryJoinOneConnectionPerPair: when both ends of a discovered pair
// dial at once (no follower-first rule), pairs whose two dials cross open two
// connections, and the bound must catch it. (Not every pair: an end that has
// already heard the other's HELLO does not dial, and pacing spreads the dials.)
func TestSweepDiscoveryCatchesBothDial(t *testing.T) {
	k := joinKnobs(1, 32)
	k.Mutation = fsm.MutationDiscoveryBothDial
	r := runJoin(t, k) // the mesh still converges: the dedup rule holds
	t.Logf("both dial: %s", r)
	require.Error(t, checkJoinBound(r, 32), "the connection bound did not notice both ends dialing")
	require.Greater(t, r.most, 1)
}
