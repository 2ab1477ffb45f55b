//go:build masterless_mutation

package sim_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/masterless-go/masterless/fsm"
	"github.com/masterless-go/masterless/spec"
)

// TestSweepMeshCatchesRedialWithSession is the negative control of the
// bound after faults (TestSweepMeshScaleWithFaults, spec/PROTOCOL.md 5.1):
// when a kept peer's redial timer dials it although the pair has its
// session again (fsm.MutationRedialWithSession), the handshake closes each
// such connection as a duplicate and the mesh still converges, but pairs
// open more than two connections after the faults stop, and
// spec.CheckPairConns on the connections counted since then (the count
// TestSweepMeshCatchesExtraDials does not reach) must say so.
func TestSweepMeshCatchesRedialWithSession(t *testing.T) {
	const nodes = 16
	k := faultKnobs(21, nodes)
	k.Mutation = fsm.MutationRedialWithSession
	r := runMesh(t, k, false) // every invariant holds, and the mesh is full
	t.Logf("seed 21, %d nodes, redials with a session: %s", nodes, r)
	err := spec.CheckPairConns(r.heal, nodes, 2, false)
	require.Error(t, err, "the bound after faults did not notice redials of peers that have a session")
	require.ErrorContains(t, err, "pair-conns")
	require.Greater(t, r.healMost, 2)
}
