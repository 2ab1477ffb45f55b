package spec_test

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/masterless-go/masterless/fsm"
	"github.com/masterless-go/masterless/spec"
)

// healthy returns two nodes a < b sharing session g1 (b leads), plus a closed
// duplicate g2 and a handshaking g3 that a dialed.
func healthy() *spec.Snapshot {
	est := func(id fsm.ConnID, g spec.ConnID, peer string, dialed, leader bool) spec.ConnEnd {
		return spec.ConnEnd{ConnStatus: fsm.ConnStatus{ID: id, State: fsm.StateEstablished, Dialed: dialed, Peer: peer, PeerIncarnation: 1, Leader: leader, Sess: 1}, Global: g}
	}
	return &spec.Snapshot{
		Nodes: []spec.NodeView{
			{ID: "a", Incarnation: 1, Alive: true, Handshaking: 1,
				Conns: []spec.ConnEnd{est(2, 1, "b", true, false), {ConnStatus: fsm.ConnStatus{ID: 6, State: fsm.StateHello, Dialed: true}, Global: 3}},
				Peers: []spec.Peer{{PeerStatus: fsm.PeerStatus{ID: "b", Kept: true, SessionConn: 2, Sess: 1, Confirmed: true, Addr: "tcp://b"}, SessionGlobal: 1}}},
			{ID: "b", Incarnation: 1, Alive: true,
				Conns: []spec.ConnEnd{est(3, 1, "a", false, true)},
				Peers: []spec.Peer{{PeerStatus: fsm.PeerStatus{ID: "a", SessionConn: 3, Sess: 1, Confirmed: true}, SessionGlobal: 1}}},
		},
		Conns: []spec.Conn{
			{ID: 1, Ends: [2]spec.End{{"a", 1, true}, {"b", 1, true}}},
			{ID: 2, Ends: [2]spec.End{{"b", 1, false}, {"a", 1, false}}},
			{ID: 3, Ends: [2]spec.End{{"a", 1, true}, {"b", 1, false}}},
		},
	}
}

func TestHealthySnapshotPasses(t *testing.T) {
	s := healthy()
	require.NoError(t, spec.CheckSafety(s))
	for i := range s.Nodes {
		require.NoError(t, spec.CheckLocal(&s.Nodes[i]))
	}
	// g3 is still handshaking: not quiescent.
	require.ErrorContains(t, spec.CheckQuiescent(s), "still holds g3 in state hello")
	s.Nodes[0].Conns = s.Nodes[0].Conns[:1]
	s.Nodes[0].Handshaking = 0
	require.NoError(t, spec.CheckQuiescent(s))
}

// Negative controls: each invariant must catch the state it forbids.

func TestSelfConnectionCaught(t *testing.T) {
	s := healthy()
	s.Nodes[0].Conns[1].Peer = "a"
	require.ErrorContains(t, spec.NoSelfConnection(s), "a holds g3 (local c6, hello) with itself")
}

func TestSecondSessionCaught(t *testing.T) {
	s := healthy()
	s.Nodes[0].Conns[1].State, s.Nodes[0].Conns[1].Peer = fsm.StateEstablished, "b"
	require.ErrorContains(t, spec.AtMostOneSession(s), "a has 2 established connections to b: [1 3]")
}

func TestPeerTableMismatchCaught(t *testing.T) {
	s := healthy()
	s.Nodes[1].Peers[0].SessionConn, s.Nodes[1].Peers[0].SessionGlobal = 0, 0
	require.ErrorContains(t, spec.AtMostOneSession(s), "b has established g1 to a, but its peer table has no session")
}

func TestSessionOutsidePeerTableCaught(t *testing.T) {
	s := healthy()
	s.Nodes[1].Peers = nil
	require.ErrorContains(t, spec.AtMostOneSession(s), "b has established g1 to a, which is not in its peer table")
}

func TestSessionNotEstablishedCaught(t *testing.T) {
	s := healthy()
	s.Nodes[0].Peers[0].SessionConn, s.Nodes[0].Peers[0].SessionGlobal = 6, 3 // the handshaking g3
	require.ErrorContains(t, spec.AtMostOneSession(s), "a's session with b is g3, which is not an established connection to it (established: [1])")
	s.Nodes[0].Conns[0].State = fsm.StateWelcome
	require.ErrorContains(t, spec.AtMostOneSession(s), "a's session with b is g3, which is not an established connection to it (established: [])")
}

// TestSecondSessionCaughtAmongMany: AtMostOneSession tallies by peer id
// (it runs after every simulated step): among many peers, a second session
// with one of them is reported once, whatever its place, and nothing else.
func TestSecondSessionCaughtAmongMany(t *testing.T) {
	n := spec.NodeView{ID: "a", Alive: true}
	for i := range 40 {
		peer := string(rune('b' + i))
		id := fsm.ConnID(i + 1)
		n.Conns = append(n.Conns, spec.ConnEnd{ConnStatus: fsm.ConnStatus{ID: id, State: fsm.StateEstablished, Peer: peer, Sess: 1}, Global: spec.ConnID(id)})
		n.Peers = append(n.Peers, spec.Peer{PeerStatus: fsm.PeerStatus{ID: peer, SessionConn: id, Sess: 1}, SessionGlobal: spec.ConnID(id)})
	}
	s := &spec.Snapshot{Nodes: []spec.NodeView{n}}
	require.NoError(t, spec.AtMostOneSession(s))
	s.Nodes[0].Conns = append(s.Nodes[0].Conns, spec.ConnEnd{ConnStatus: fsm.ConnStatus{ID: 99, State: fsm.StateEstablished, Peer: "q", Sess: 2}, Global: 99})
	err := spec.AtMostOneSession(s)
	require.EqualError(t, err, "at-most-one-session: a has 2 established connections to q: [16 99]")
}

func TestDisagreementCaught(t *testing.T) {
	s := healthy()
	// b switches to g3 while a keeps g1, and g3 becomes live at both ends.
	s.Conns[2].Ends[1].Open = true
	s.Nodes[1].Conns = []spec.ConnEnd{{ConnStatus: fsm.ConnStatus{ID: 7, State: fsm.StateEstablished, Peer: "a", Leader: true, Sess: 2}, Global: 3}}
	s.Nodes[1].Peers[0].SessionConn, s.Nodes[1].Peers[0].SessionGlobal, s.Nodes[1].Peers[0].Sess = 7, 3, 2
	s.Conns[0].Ends[1].Open = true // g1 still open at b's end in the network, though b no longer holds it
	err := spec.BothEndsAgree(s)
	require.ErrorContains(t, err, "a's session with b is g1 (sess 1) but b's session with a is g3 (sess 2), both live")
	// The same state with g1's FIN in flight (closed at b) is allowed.
	s.Conns[0].Ends[1].Open = false
	require.NoError(t, spec.BothEndsAgree(s))
}

func TestSessionNumberMismatchCaught(t *testing.T) {
	s := healthy()
	s.Nodes[1].Peers[0].Sess = 9
	require.ErrorContains(t, spec.BothEndsAgree(s), "share session g1 but number it 1 and 9")
}

func TestEndsMatchNetworkCaught(t *testing.T) {
	s := healthy()
	s.Conns[0].Ends[1].Open = false
	require.ErrorContains(t, spec.EndsMatchNetwork(s), "b inc 1 holds g1 (dialed=false) but the network has no open end there")
	s = healthy()
	s.Nodes[0].Conns[0].Peer = "c"
	require.ErrorContains(t, spec.EndsMatchNetwork(s), "a thinks g1 leads to c, but its other end is b")
}

func TestHandshakeCountCaught(t *testing.T) {
	s := healthy()
	s.Nodes[0].Handshaking = 0
	require.ErrorContains(t, spec.HandshakeCount(&s.Nodes[0]), "a reports 0 connections handshaking, but 1 are not established or not confirmed")
	// A session the other end has not confirmed still holds its slot.
	s = healthy()
	s.Nodes[1].Peers[0].Confirmed = false
	require.ErrorContains(t, spec.HandshakeCount(&s.Nodes[1]), "b reports 0 connections handshaking, but 1 are not established or not confirmed")
	s.Nodes[1].Handshaking = 1
	require.NoError(t, spec.HandshakeCount(&s.Nodes[1]))
}

func TestQuiescenceCatchesMissingAndUnwantedSessions(t *testing.T) {
	s := healthy()
	s.Nodes[0].Conns, s.Nodes[0].Handshaking = s.Nodes[0].Conns[:1], 0
	// a keeps b but b dropped the session: not quiescent.
	s.Nodes[1].Conns = nil
	s.Nodes[1].Peers = nil
	s.Conns[0].Ends[1].Open = false
	require.ErrorContains(t, spec.CheckQuiescent(s), "pair a-b is kept (a keeps: true, b keeps: false, and can dial) but the sessions are a: g1, b: g0")

	s = healthy()
	s.Nodes[0].Conns, s.Nodes[0].Handshaking = s.Nodes[0].Conns[:1], 0
	s.Nodes[0].Peers[0].Kept = false
	require.ErrorContains(t, spec.CheckQuiescent(s), "neither a nor b keeps the pair, yet sessions remain")

	// a keeps b but cannot dial it: no session is required.
	s = healthy()
	s.Nodes[0].Conns, s.Nodes[0].Handshaking = nil, 0
	s.Nodes[0].Peers[0].Addr, s.Nodes[0].Peers[0].SessionConn, s.Nodes[0].Peers[0].SessionGlobal = "", 0, 0
	s.Nodes[1].Conns, s.Nodes[1].Peers = nil, nil
	s.Conns = nil
	require.NoError(t, spec.CheckQuiescent(s))
}

func TestDeliveryChecks(t *testing.T) {
	d := func(conn spec.ConnID, to string, seq uint64) spec.Delivery {
		return spec.Delivery{Conn: conn, Receiver: to, Sender: "a", Src: "a", Dst: "b", Seq: seq}
	}
	require.NoError(t, spec.CheckDeliveries([]spec.Delivery{d(1, "b", 1), d(1, "b", 2), d(2, "b", 5)}))
	require.ErrorContains(t, spec.CheckDeliveries([]spec.Delivery{d(1, "b", 1), d(1, "b", 1)}), "on g1 message a>b#1 delivered twice")
	require.ErrorContains(t, spec.CheckDeliveries([]spec.Delivery{d(1, "b", 2), d(1, "b", 1)}), "on g1 message a>b#1 delivered out of order (last was #2)")
	require.ErrorContains(t, spec.CheckDeliveries([]spec.Delivery{d(1, "b", 3), d(2, "b", 2)}), "a>b#2 delivered on g2 after #3 was delivered on g1")
	require.ErrorContains(t, spec.CheckDeliveries([]spec.Delivery{d(1, "c", 1)}), "delivered to c on g1, not its destination")
	bad := d(1, "b", 1)
	bad.Sender = "c"
	require.ErrorContains(t, spec.CheckDeliveries([]spec.Delivery{bad}), "reported by b as coming from c")
}

func TestCheckSafetyChecksDeliveries(t *testing.T) {
	s := healthy()
	s.Delivered = []spec.Delivery{{Conn: 1, Receiver: "b", Sender: "a", Src: "a", Dst: "b", Seq: 1}}
	require.NoError(t, spec.CheckSafety(s))
	s.Delivered = append(s.Delivered, s.Delivered[0])
	require.ErrorContains(t, spec.CheckSafety(s), "delivered twice")
}

func TestPayloadRoundTrip(t *testing.T) {
	src, dst, seq, err := spec.ParsePayload(spec.Payload("n01", "n02", 42))
	require.NoError(t, err)
	require.Equal(t, []any{"n01", "n02", uint64(42)}, []any{src, dst, seq})
	padded := spec.PaddedPayload("n01", "n02", 42, 1000)
	require.Len(t, padded, 1000)
	require.True(t, json.Valid(padded), "a padded payload is still a JSON object")
	src, dst, seq, err = spec.ParsePayload(padded)
	require.NoError(t, err)
	require.Equal(t, []any{"n01", "n02", uint64(42)}, []any{src, dst, seq})
	require.Equal(t, spec.Payload("n01", "n02", 42), spec.PaddedPayload("n01", "n02", 42, 5), "too small a size pads nothing")
	_, _, _, err = spec.ParsePayload([]byte("garbage"))
	require.Error(t, err)
}

// TestManyPayloadRoundTrip: every destination of a SendMany's payload reads
// its own message from it; a node it was not sent to reads the first one.
func TestManyPayloadRoundTrip(t *testing.T) {
	dsts, seqs := []string{"n02", "n03", "n04"}, []uint64{7, 1, 30}
	for _, size := range []int{0, 600} {
		p := spec.AppendManyPayload(nil, "n01", dsts, seqs, size)
		require.True(t, json.Valid(p), "%q is a JSON object", p)
		if size > 0 {
			require.Len(t, p, size)
		}
		for i, d := range dsts {
			src, dst, seq, err := spec.ParsePayloadFor(p, d)
			require.NoError(t, err)
			require.Equal(t, []any{"n01", d, seqs[i]}, []any{src, dst, seq})
		}
		src, dst, seq, err := spec.ParsePayloadFor(p, "n09")
		require.NoError(t, err)
		require.Equal(t, []any{"n01", "n02", uint64(7)}, []any{src, dst, seq})
	}
	one := spec.AppendManyPayload(nil, "n01", []string{"n02"}, []uint64{42}, 0)
	require.Equal(t, string(spec.Payload("n01", "n02", 42)), string(one), "one destination: a plain payload")
	for _, bad := range []string{`{"m":"n01>"}`, `{"m":"n01>n02#1,"}`, `{"m":"n01>n02#1,n03#x"}`} {
		_, _, _, err := spec.ParsePayloadFor([]byte(bad), "n02")
		require.Error(t, err, bad)
	}
}

// TestCheckPairConns: the bound holds at the limit and fails past it, and
// with all set a pair that opened nothing is reported.
func TestCheckPairConns(t *testing.T) {
	ok := map[[2]int]int{{0, 1}: 2, {0, 2}: 1, {1, 2}: 2}
	if err := spec.CheckPairConns(ok, 3, 2, true); err != nil {
		t.Fatal(err)
	}
	over := map[[2]int]int{{0, 1}: 3, {0, 2}: 1, {1, 2}: 2}
	if err := spec.CheckPairConns(over, 3, 2, true); err == nil {
		t.Fatal("3 connections for a pair passed a bound of 2")
	}
	missing := map[[2]int]int{{0, 1}: 2, {1, 2}: 2}
	if err := spec.CheckPairConns(missing, 3, 2, true); err == nil {
		t.Fatal("a pair without a connection passed")
	}
	if err := spec.CheckPairConns(missing, 3, 2, false); err != nil {
		t.Fatal(err)
	}
}

// TestUnchangedSkipsOnlyLocalInvariants: CheckSafety skips the nodes
// Snapshot.Unchanged marks in the invariants of one node alone, and only
// there; the invariants called on their own still check every node.
func TestUnchangedSkipsOnlyLocalInvariants(t *testing.T) {
	s := healthy()
	s.Nodes[1].Conns = append(s.Nodes[1].Conns, spec.ConnEnd{ConnStatus: fsm.ConnStatus{ID: 11, State: fsm.StateEstablished, Peer: "b", Sess: 3}, Global: 5})
	s.Conns = append(s.Conns, spec.Conn{ID: 5, Ends: [2]spec.End{{"b", 1, true}, {"b", 1, true}}})
	all := spec.CheckSafety(s)
	require.ErrorContains(t, all, "no-self-connection: b holds g5")
	require.ErrorContains(t, all, "at-most-one-session: b has established g5 to b")

	s.Unchanged = []bool{false, true}
	require.NoError(t, spec.CheckSafety(s)) // the network agrees with b's end: only the local invariants see it
	require.ErrorContains(t, spec.NoSelfConnection(s), "no-self-connection: b holds g5")
	require.ErrorContains(t, spec.AtMostOneSession(s), "at-most-one-session: b has established g5 to b")

	s.Unchanged = []bool{true, false}
	require.Equal(t, all.Error(), spec.CheckSafety(s).Error())
}
