package spec_test

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/masterless-go/masterless/fsm"
	"github.com/masterless-go/masterless/spec"
)

// withAdversary is healthy() plus g4, a connection adversary x1 dialed to
// b, where b has taken x1's HELLO as x1's own (an insider's id).
func withAdversary() *spec.Snapshot {
	s := healthy()
	s.Nodes[1].Conns = append(s.Nodes[1].Conns, spec.ConnEnd{ConnStatus: fsm.ConnStatus{ID: 9, State: fsm.StateJoin, Peer: "x1", PeerIncarnation: 1, Leader: true}, Global: 4})
	s.Nodes[1].Handshaking = 1
	s.Conns = append(s.Conns, spec.Conn{ID: 4, Ends: [2]spec.End{{"x1", 0, true}, {"b", 1, true}}})
	return s
}

func TestAdversaryHealthyPasses(t *testing.T) {
	s := withAdversary()
	require.NoError(t, spec.CheckSafety(s))
	require.NoError(t, spec.CheckAdversary(s))
}

// Negative controls of NoImpersonation: b takes the adversary's g4 for a's,
// handshaking, then as the session.
func TestImpersonationCaught(t *testing.T) {
	s := withAdversary()
	s.Nodes[1].Conns[1].Peer = "a"
	require.ErrorContains(t, spec.NoImpersonation(s), "no-impersonation: b holds g4 (join, an adversary) as its connection with a, but the other end is held by x1")

	s = withAdversary()
	s.Nodes[1].Conns = []spec.ConnEnd{{ConnStatus: fsm.ConnStatus{ID: 9, State: fsm.StateEstablished, Peer: "a", Leader: true, Sess: 2}, Global: 4}}
	s.Nodes[1].Peers[0].SessionConn, s.Nodes[1].Peers[0].SessionGlobal, s.Nodes[1].Peers[0].Sess = 9, 4, 2
	s.Nodes[1].Handshaking = 0
	require.ErrorContains(t, spec.CheckAdversary(s), "no-impersonation: b holds g4 (established, an adversary) as its session with a, but the other end is held by x1")
}

// Negative controls of NoEviction: b closes its session g1 with a while
// handling the adversary's g4; the same close caused by an honest
// connection, a timer or a session that is not an honest pair's passes.
func TestEvictionCaught(t *testing.T) {
	s := withAdversary()
	c := spec.SessionClosed{Node: "b", Peer: "a", Conn: 1, PeerEnd: "a", Cause: 4, CauseEnd: "x1", Err: errors.New("replaced")}
	require.ErrorContains(t, spec.NoEviction(s, c), "no-eviction: b closed its session g1 with a (replaced) while handling g4, whose other end is held by an adversary x1")

	for _, ok := range []spec.SessionClosed{
		{Node: "b", Peer: "a", Conn: 1, PeerEnd: "a", Cause: 3, CauseEnd: "a"},    // an honest connection
		{Node: "b", Peer: "a", Conn: 1, PeerEnd: "a"},                             // a timer or a command
		{Node: "b", Peer: "x1", Conn: 4, PeerEnd: "x1", Cause: 4, CauseEnd: "x1"}, // the insider's own session
		{Node: "b", Peer: "a", Conn: 4, PeerEnd: "x1", Cause: 4, CauseEnd: "x1"},  // an impostor's (NoImpersonation's)
	} {
		require.NoError(t, spec.NoEviction(s, ok), "%+v", ok)
	}
}
