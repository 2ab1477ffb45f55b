package fsm_test

import (
	"errors"
	"testing"
	"time"

	"github.com/masterless-go/masterless/fsm"
	"github.com/masterless-go/masterless/wire"
)

// observed is node M with a v2 session with A on c1, established at time 0
// (M leads: its id is the greater), both streams resumed with credit.
func observed(t *testing.T) *fsm.Node {
	t.Helper()
	n, err := fsm.New(fsm.Config{ID: "M", Incarnation: 1})
	if err != nil {
		t.Fatal(err)
	}
	for _, ev := range []fsm.Event{
		fsm.SetKeep{Peer: "A", Keep: true},
		fsm.Accepted{Conn: 1},
		fsm.FrameReceived{Conn: 1, Frame: wire.Frame{Type: wire.Hello, ID: "A", Incarnation: 1}},
		fsm.FrameReceived{Conn: 1, Frame: wire.Frame{Type: wire.Ack, Credit: 1 << 20}},
		fsm.FrameReceived{Conn: 1, Frame: wire.Frame{Type: wire.Resume, Next: 1}},
	} {
		if err := n.Step(0, ev); err != nil {
			t.Fatal(err)
		}
	}
	n.Ready()
	if s := peerA(t, n); s.State != fsm.PeerConnected || s.Sessions != 1 {
		t.Fatalf("A: state %s, %d sessions; want connected, 1", s.State, s.Sessions)
	}
	return n
}

func peerA(t *testing.T, n *fsm.Node) fsm.PeerCounters {
	t.Helper()
	c, ok := n.PeerCounters("A")
	if !ok {
		t.Fatal("no peer A")
	}
	return c
}

// pings returns the PINGs in acts.
func pings(acts []fsm.Action) []wire.Frame {
	var out []wire.Frame
	for _, a := range acts {
		if a.Kind == fsm.ActWrite && a.Frame.Type == wire.Ping {
			out = append(out, a.Frame)
		}
	}
	return out
}

// The heartbeat measures the round trip: M's PING carries its clock, A's
// next PING echoes it with how long A held it, and M takes the difference.
// A's own stamp comes back in M's next PING with the time M held it.
func TestRoundTripFromHeartbeat(t *testing.T) {
	n := observed(t)
	_ = n.Step(time.Second, fsm.Tick{})
	p := pings(n.Ready())
	if len(p) != 1 || p[0].Stamp != uint64(time.Second) || p[0].Echo != 0 {
		t.Fatalf("first heartbeat: %v, want one PING stamp=1s", p)
	}
	// A got it after 40 ms and sends its own PING 200 ms later: 100 ms more on the way back.
	echo := wire.Frame{Type: wire.Ping, Stamp: 7, Echo: uint64(time.Second), Held: uint64(200 * time.Millisecond)}
	_ = n.Step(1340*time.Millisecond, fsm.FrameReceived{Conn: 1, Frame: echo})
	s := peerA(t, n)
	if s.RTT != 140*time.Millisecond || s.SmoothedRTT != 140*time.Millisecond {
		t.Fatalf("RTT %v, smoothed %v; want 140ms both", s.RTT, s.SmoothedRTT)
	}
	_ = n.Step(2*time.Second, fsm.Tick{})
	p = pings(n.Ready())
	if len(p) != 1 || p[0].Echo != 7 || p[0].Held != uint64(660*time.Millisecond) {
		t.Fatalf("second heartbeat: %v, want the echo of stamp 7 held 660ms", p)
	}

	// Echoes M cannot have sent change nothing: from the future, held
	// longer than the stamp is old, from before the session.
	for _, bad := range []wire.Frame{
		{Type: wire.Ping, Stamp: 8, Echo: uint64(time.Hour)},
		{Type: wire.Ping, Stamp: 8, Echo: uint64(time.Second), Held: uint64(time.Hour)},
	} {
		_ = n.Step(2100*time.Millisecond, fsm.FrameReceived{Conn: 1, Frame: bad})
	}
	if s := peerA(t, n); s.RTT != 140*time.Millisecond {
		t.Fatalf("a bogus echo changed the RTT to %v", s.RTT)
	}
	// A second sample moves the average by an eighth of the difference.
	_ = n.Step(2300*time.Millisecond, fsm.FrameReceived{Conn: 1, Frame: wire.Frame{Type: wire.Ping, Stamp: 9, Echo: uint64(2 * time.Second), Held: uint64(60 * time.Millisecond)}})
	if s := peerA(t, n); s.RTT != 240*time.Millisecond || s.SmoothedRTT != 140*time.Millisecond+100*time.Millisecond/8 {
		t.Fatalf("second sample: RTT %v, smoothed %v", s.RTT, s.SmoothedRTT)
	}
	if c := n.Counters(); c.RTTSamples != 2 {
		t.Fatalf("%d RTT samples counted, want 2", c.RTTSamples)
	}
}

// Messages and bytes are counted both ways, per peer and for the node; the
// end of the session is recorded with its reason and counted once.
func TestCountersCountWhatHappened(t *testing.T) {
	n := observed(t)
	for _, m := range []string{"one", "two", "three"} {
		if err := n.Step(time.Millisecond, fsm.Send{Peer: "A", Payload: []byte(m)}); err != nil {
			t.Fatal(err)
		}
	}
	for _, m := range []string{"a", "bb"} {
		_ = n.Step(2*time.Millisecond, fsm.FrameReceived{Conn: 1, Frame: wire.Frame{Type: wire.Data, Payload: []byte(m)}})
	}
	n.Ready()
	s := peerA(t, n)
	if s.MessagesOut != 3 || s.BytesOut != 11 || s.MessagesIn != 2 || s.BytesIn != 3 {
		t.Fatalf("A: out %d msgs %d B, in %d msgs %d B; want 3/11 and 2/3", s.MessagesOut, s.BytesOut, s.MessagesIn, s.BytesIn)
	}
	if q := n.Peers()[0].Queued; q != 3 || s.QueuedBytes != 11 {
		t.Fatalf("A: %d queued (%d B), want 3 (11 B) until acknowledged", q, s.QueuedBytes)
	}
	c := n.Counters()
	if c.MessagesOut != 3 || c.MessagesIn != 2 || c.BytesOut != 11 || c.BytesIn != 3 || c.Handshakes != 1 {
		t.Fatalf("node counters %+v", c)
	}

	if err := n.Step(3*time.Millisecond, fsm.Disconnect{Peer: "A"}); err != nil {
		t.Fatal(err)
	}
	n.Ready()
	s = peerA(t, n)
	if !errors.Is(s.LastEnd, fsm.ErrDisconnected) || s.LastEndAt != 3*time.Millisecond || s.State != fsm.PeerIdle {
		t.Fatalf("after Disconnect: last end %v at %v, state %s", s.LastEnd, s.LastEndAt, s.State)
	}
	c = n.Counters()
	if c.Closed[fsm.ReasonDisconnected] != 1 || len(c.Closed) != 1 || len(c.PeerClosed) != 0 || c.Lost != 0 {
		t.Fatalf("closes: %v by this node, %v by the peer, %d lost; want one disconnect", c.Closed, c.PeerClosed, c.Lost)
	}
}

// A refused duplicate is counted under its reason, a peer's BYE under its
// code, and a connection that just breaks as lost.
func TestCountersOfCloses(t *testing.T) {
	n := observed(t)
	// A second connection from A, same incarnation, while c1 is the session.
	_ = n.Step(time.Millisecond, fsm.Accepted{Conn: 2})
	_ = n.Step(time.Millisecond, fsm.FrameReceived{Conn: 2, Frame: wire.Frame{Type: wire.Hello, ID: "A", Incarnation: 1}})
	_ = n.Step(time.Millisecond, fsm.FrameReceived{Conn: 2, Frame: wire.Frame{Type: wire.Join, Keep: true}}) // it has not closed session 1
	// A connection from B that B closes with BYE duplicate id, and one from C that breaks.
	_ = n.Step(time.Millisecond, fsm.Accepted{Conn: 3})
	_ = n.Step(time.Millisecond, fsm.FrameReceived{Conn: 3, Frame: wire.Frame{Type: wire.Bye, Code: wire.CodeDuplicateID}})
	_ = n.Step(time.Millisecond, fsm.Accepted{Conn: 4})
	_ = n.Step(time.Millisecond, fsm.ConnClosed{Conn: 4, Err: errors.New("connection reset")})
	// A protocol error on the session.
	_ = n.Step(time.Millisecond, fsm.FrameReceived{Conn: 1, Frame: wire.Frame{Type: wire.Welcome, Sess: 1}})
	n.Ready()
	c := n.Counters()
	want := map[fsm.Reason]uint64{fsm.ReasonDuplicate: 1, fsm.ReasonProtocol: 1}
	if len(c.Closed) != len(want) || c.Closed[fsm.ReasonDuplicate] != 1 || c.Closed[fsm.ReasonProtocol] != 1 {
		t.Fatalf("closed by this node: %v, want %v", c.Closed, want)
	}
	if len(c.PeerClosed) != 1 || c.PeerClosed[wire.CodeDuplicateID] != 1 || c.Lost != 1 {
		t.Fatalf("closed by peers: %v, lost %d; want one duplicate id, one lost", c.PeerClosed, c.Lost)
	}
	if c.HandshakesFailed != 3 || c.Handshakes != 1 {
		t.Fatalf("%d handshakes, %d failed; want 1 and 3", c.Handshakes, c.HandshakesFailed)
	}
	if !fsm.ReasonDuplicate.Refusal() || fsm.ReasonProtocol.Refusal() {
		t.Fatal("Refusal groups the wrong reasons")
	}
	s := peerA(t, n)
	if !errors.Is(s.LastEnd, fsm.ErrProtocol) || s.State != fsm.PeerReconnecting {
		t.Fatalf("A after the protocol error: last end %v, state %s", s.LastEnd, s.State)
	}
}

// A handshake evicted to make room for a new connection (a silent one, then
// one past its HELLO), and a connection refused as it is accepted because
// only the node's own dials hold slots, are counted as failed handshakes,
// under their reasons.
func TestCountersOfEvictedAndRefusedAtAccept(t *testing.T) {
	n, err := fsm.New(fsm.Config{ID: "M", Incarnation: 1, MaxHandshakes: 1})
	if err != nil {
		t.Fatal(err)
	}
	_ = n.Step(0, fsm.Incoming{Conn: 1})
	_ = n.Step(0, fsm.Incoming{Conn: 2}) // evicts c1, which said nothing
	_ = n.Step(0, fsm.Accepted{Conn: 2})
	_ = n.Step(0, fsm.FrameReceived{Conn: 2, Frame: wire.Frame{Type: wire.Hello, ID: "Z", Incarnation: 1}}) // M follows Z: a JOIN goes, c2 waits for WELCOME
	_ = n.Step(0, fsm.Incoming{Conn: 3})                                                                    // none is silent: c2, past its HELLO, makes room
	_ = n.Step(0, fsm.ConnClosed{Conn: 3})
	_ = n.Step(0, fsm.Connect{Req: 1, Addr: "tcp://p"})
	_ = n.Step(0, fsm.Dialed{Dial: 1, Conn: 4}) // our own dial holds the slot
	_ = n.Step(0, fsm.Incoming{Conn: 5})        // refused: nothing evictable
	n.Ready()
	c := n.Counters()
	if c.Closed[fsm.ReasonEvicted] != 2 || c.Closed[fsm.ReasonTooManyHandshakes] != 1 || c.HandshakesFailed != 4 {
		t.Fatalf("closed %v, %d failed handshakes; want two evictions and one refusal (and c3's loss)", c.Closed, c.HandshakesFailed)
	}
	_ = n.Step(0, fsm.Shutdown{})
	_ = n.Step(0, fsm.Incoming{Conn: 6}) // refused for the shutdown, not counted as a refusal
	n.Ready()
	if c := n.Counters(); c.Closed[fsm.ReasonTooManyHandshakes] != 1 || c.Closed[fsm.ReasonShutdown] != 1 {
		t.Fatalf("after shutdown: closed %v", c.Closed)
	}
}

// A plaintext HELLO to a node that requires authentication is refused, and
// counted under "unauthenticated", one of the refusals.
func TestCountersOfUnauthenticated(t *testing.T) {
	n, err := fsm.New(fsm.Config{ID: "M", Incarnation: 1, RequireAuth: true})
	if err != nil {
		t.Fatal(err)
	}
	_ = n.Step(0, fsm.Accepted{Conn: 1})
	_ = n.Step(0, fsm.FrameReceived{Conn: 1, Frame: wire.Frame{Type: wire.Hello, ID: "A", Incarnation: 1}})
	n.Ready()
	c := n.Counters()
	if c.Closed[fsm.ReasonUnauthenticated] != 1 || len(c.Closed) != 1 || !fsm.ReasonUnauthenticated.Refusal() {
		t.Fatalf("closed %v; want one unauthenticated", c.Closed)
	}
}

// A session this node leads shows in the user's views (ListedSessions, the
// peer's state) only once the follower confirmed it: until then the
// follower may refuse the grant (a redial that reached this node where it
// expected another), and this node's user must hear of nothing.
func TestUnconfirmedGrantIsNotListed(t *testing.T) {
	n, err := fsm.New(fsm.Config{ID: "M", Incarnation: 1})
	if err != nil {
		t.Fatal(err)
	}
	for _, ev := range []fsm.Event{
		fsm.Accepted{Conn: 1},
		fsm.FrameReceived{Conn: 1, Frame: wire.Frame{Type: wire.Hello, ID: "A", Incarnation: 1, Keep: true}},
	} {
		if err := n.Step(0, ev); err != nil {
			t.Fatal(err)
		}
	}
	n.Ready()
	if got := n.Sessions(); len(got) != 1 || got[0] != "A" {
		t.Fatalf("Sessions = %v, want the granted session with A", got)
	}
	if got := n.ListedSessions(); len(got) != 0 {
		t.Fatalf("ListedSessions = %v before the follower confirmed", got)
	}
	if s := peerA(t, n); s.State != fsm.PeerConnecting {
		t.Fatalf("A: state %s before the follower confirmed, want connecting", s.State)
	}
	if err := n.Step(0, fsm.FrameReceived{Conn: 1, Frame: wire.Frame{Type: wire.Ack, Credit: 1 << 20}}); err != nil {
		t.Fatal(err)
	}
	n.Ready()
	if got := n.ListedSessions(); len(got) != 1 || got[0] != "A" {
		t.Fatalf("ListedSessions = %v after the follower's ACK, want [A]", got)
	}
	if s := peerA(t, n); s.State != fsm.PeerConnected {
		t.Fatalf("A: state %s after the follower's ACK, want connected", s.State)
	}
}

// Bytes of a frame still arriving count as hearing from the peer
// (FrameInProgress): a session whose peer sent only part of a large message
// in the last peer timeout stays, and one silent for a whole peer timeout
// after those bytes is closed.
func TestFrameInProgressHoldsOffPeerTimeout(t *testing.T) {
	d := newTimeoutDriver(t) // session with A at 0, default peer timeout 5 s
	if err := d.n.Step(4*time.Second, fsm.FrameInProgress{Conn: 1}); err != nil {
		t.Fatal(err)
	}
	d.n.Ready()
	d.onTime(6 * time.Second)
	d.open("for silence 2 s after bytes of a frame arrived")
	d.onTime(9*time.Second + time.Millisecond)
	d.closedWithin(9*time.Second, 9*time.Second+time.Millisecond, "a peer timeout after the last bytes")
}

// Each connection end is counted once, as a session or as a failed
// handshake, by when the user's views start to show it: a follower's
// session from the grant it adopted (so it is a session even if it ends
// before the leader's RESUME), a leader's once the follower confirmed it
// (so a grant never confirmed is a failed handshake).
func TestSessionCountedOnce(t *testing.T) {
	cases := []struct {
		name         string
		frames       []wire.Frame
		hs, hsFailed uint64
	}{
		{"follower, ended before RESUME", []wire.Frame{
			{Type: wire.Hello, ID: "Z", Incarnation: 9}, {Type: wire.Welcome, Sess: 4}}, 1, 0},
		{"follower, confirmed", []wire.Frame{
			{Type: wire.Hello, ID: "Z", Incarnation: 9}, {Type: wire.Welcome, Sess: 4},
			{Type: wire.Ack, Credit: 1 << 20}, {Type: wire.Resume, Next: 1}}, 1, 0},
		{"leader, grant never confirmed", []wire.Frame{
			{Type: wire.Hello, ID: "A", Incarnation: 1}}, 0, 1},
		{"leader, confirmed", []wire.Frame{
			{Type: wire.Hello, ID: "A", Incarnation: 1}, {Type: wire.Ack, Credit: 1 << 20}}, 1, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			n, err := fsm.New(fsm.Config{ID: "M", Incarnation: 1})
			if err != nil {
				t.Fatal(err)
			}
			evs := []fsm.Event{fsm.Accepted{Conn: 1}}
			for _, f := range tc.frames {
				evs = append(evs, fsm.FrameReceived{Conn: 1, Frame: f})
			}
			evs = append(evs, fsm.ConnClosed{Conn: 1, Err: fsm.ErrPeerClosed})
			for _, ev := range evs {
				if err := n.Step(time.Second, ev); err != nil {
					t.Fatal(err)
				}
				n.Ready()
			}
			k := n.Counters()
			if k.Handshakes != tc.hs || k.HandshakesFailed != tc.hsFailed {
				t.Fatalf("Handshakes %d, HandshakesFailed %d; want %d, %d", k.Handshakes, k.HandshakesFailed, tc.hs, tc.hsFailed)
			}
		})
	}
}
