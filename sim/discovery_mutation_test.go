//go:build masterless_mutation

package sim_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/masterless-go/masterless/fsm"
	"github.com/masterless-go/masterless/sim"
	"github.com/masterless-go/masterless/spec"
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

// TestSweepMeshCatchesDialWhileHandshaking is the negative control of
// TestSweepMeshStaggered: when a Connect dials even though the node at its
// address is handshaking with this one (fsm.MutationDialWhileHandshaking),
// pairs whose Connects come one after the other open two connections, and
// the bound must catch it. The mesh still converges: the dedup rule holds.
func TestSweepMeshCatchesDialWhileHandshaking(t *testing.T) {
	k, gap := staggerKnobs(1, scaled(16))
	k.Mutation = fsm.MutationDialWhileHandshaking
	r := runStaggeredMesh(t, k, gap)
	t.Logf("dial while handshaking: %s", r)
	err := spec.CheckPairConns(r.pairs, k.Nodes, 1, true)
	require.Error(t, err, "the bound on connections per pair did not notice the extra dials")
	require.Greater(t, r.most, 1)
}

// TestSweepDiscoveryCatchesDroppedRedial is the negative control of the
// simulator's bookkeeping check (process.go, checkBookkeeping): with the
// discovery queue dropping a member whose turn came while it could not go
// yet (fsm.MutationDiscoveryDropsWaiting), the join with faults that found
// it (seed 113, 12 nodes) must fail on the timers.
func TestSweepDiscoveryCatchesDroppedRedial(t *testing.T) {
	k := faultKnobs(113, 12)
	k.Mutation = fsm.MutationDiscoveryDropsWaiting
	w, err := sim.NewWorld(k, sim.Options{Discovery: true, MaxSteps: 20_000_000})
	require.NoError(t, err)
	for i := 1; i < k.Nodes; i++ { // as runJoin
		i := i
		w.At(time.Duration(k.Seed*7919+uint64(i)*104729)%time.Second, func() { w.Connect(i, w.Addr(0)) })
	}
	err = w.Run()
	require.Error(t, err, "the dropped redial went unnoticed")
	require.ErrorContains(t, err, "bookkeeping")
	require.ErrorContains(t, err, "timer")
	t.Log(err)
}
