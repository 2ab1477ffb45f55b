package fsm_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/masterless-go/masterless/fsm"
	"github.com/masterless-go/masterless/spec"
	"github.com/masterless-go/masterless/wire"
)

// FuzzNodeFrames feeds arbitrary bytes, parsed as v1 frames, to a node that
// has a session and a handshake under way, interleaved with timer ticks. A
// peer's bytes may close connections but must never panic the node or break
// its bookkeeping. A target with its high bit set runs discovery, with a
// discovery session on c1, so MEMBERS frames reach the member table.
func FuzzNodeFrames(f *testing.F) {
	var c wire.Binary
	seed := func(frames ...wire.Frame) []byte {
		var b []byte
		for _, fr := range frames {
			b, _ = c.AppendFrame(b, &fr)
		}
		return b
	}
	f.Add(uint8(1), seed(wire.Frame{Type: wire.Hello, ID: "A", Incarnation: 1}, wire.Frame{Type: wire.Join, Closed: 0, Keep: true}))
	f.Add(uint8(2), seed(wire.Frame{Type: wire.Hello, ID: "Z", Incarnation: 3}, wire.Frame{Type: wire.Welcome, Sess: 4}))
	f.Add(uint8(1), seed(wire.Frame{Type: wire.Data, Payload: []byte("x")}, wire.Frame{Type: wire.Bye, Code: 200}))
	f.Add(uint8(3), seed(wire.Frame{Type: wire.Hello, ID: "M", Incarnation: 1}, wire.Frame{Type: wire.Hello, ID: "M", Incarnation: 1}))
	f.Add(uint8(0x81), seed(wire.MembersFrame([]wire.Member{{ID: "B", Incarnation: 2, Addr: "tcp://B"}, {ID: "Z", Incarnation: 9, Addr: "tcp://Z2"}}),
		wire.MembersFrame([]wire.Member{{ID: "B", Incarnation: 2, State: wire.MemberLeft}, {ID: "A", Incarnation: 5, Addr: "tcp://A"}})))
	f.Add(uint8(0x82), seed(wire.Frame{Type: wire.Hello, ID: "Z", Incarnation: 3}, wire.Frame{Type: wire.Welcome, Sess: 4},
		wire.MembersFrame([]wire.Member{{ID: "M", Incarnation: 1, State: wire.MemberLeft}})))
	f.Fuzz(func(t *testing.T, target uint8, b []byte) {
		disc := target&0x80 != 0
		n, err := fsm.New(fsm.Config{ID: "M", Incarnation: 1, Seed: 1, Discovery: disc})
		if err != nil {
			t.Fatal(err)
		}
		now := time.Duration(0)
		must := func(ev fsm.Event) {
			_ = n.Step(now, ev) // refusals are fine; panics are not
			n.Ready()
			if err := n.CheckTimers(); err != nil {
				t.Fatalf("after %#v: %v", ev, err)
			}
			if err := n.CheckStreams(); err != nil {
				t.Fatalf("after %#v: %v", ev, err)
			}
			if err := n.CheckSlots(); err != nil {
				t.Fatalf("after %#v: %v", ev, err)
			}
			if err := n.CheckActionSlots(); err != nil {
				t.Fatalf("after %#v: %v", ev, err)
			}
		}
		must(fsm.Listening{Info: "tcp://M"})
		// c1: an established session with A (M leads A).
		must(fsm.Accepted{Conn: 1})
		var features uint16
		if disc {
			features = wire.FeatureMembers
		}
		must(fsm.FrameReceived{Conn: 1, Frame: wire.Frame{Type: wire.Hello, ID: "A", Incarnation: 1, Features: features}})
		// c2: a dial to Z still handshaking (Z leads M).
		must(fsm.Connect{Req: 1, Addr: "tcp://Z"})
		must(fsm.Dialed{Dial: 1, Conn: 2})
		// c3: an accepted connection that said nothing yet.
		must(fsm.Accepted{Conn: 3})
		conn := fsm.ConnID(1 + target%3)
		for len(b) > 0 {
			fr, used, err := c.ParseFrame(b)
			if err != nil {
				must(fsm.Malformed{Conn: conn, Err: err})
				return
			}
			if used == 0 { // part of a frame, then the connection ends
				must(fsm.FrameInProgress{Conn: conn})
				now += 700 * time.Millisecond
				must(fsm.Tick{})
				must(fsm.ConnClosed{Conn: conn})
				break
			}
			b = b[used:]
			must(fsm.FrameReceived{Conn: conn, Frame: fr})
			now += 700 * time.Millisecond
			must(fsm.Tick{})
			checkLocal(t, n)
		}
		now += time.Minute
		must(fsm.Tick{})
		checkLocal(t, n)
	})
}

// checkLocal asserts what must hold of any single node at any time: the
// invariants of package spec that one node can be held to on its own.
func checkLocal(t *testing.T, n *fsm.Node) {
	t.Helper()
	if err := n.CheckTimers(); err != nil {
		t.Fatal(err)
	}
	if err := n.CheckStreams(); err != nil {
		t.Fatal(err)
	}
	s := spec.FromFSM(n, func(c fsm.ConnID) spec.ConnID { return spec.ConnID(c) })
	if err := spec.CheckLocal(&s); err != nil {
		t.Fatal(err)
	}
}

// TestCheckLocalCatches is checkLocal's negative control: the node of the
// fuzz target with a second session forged into its view must fail it.
func TestCheckLocalCatches(t *testing.T) {
	n, err := fsm.New(fsm.Config{ID: "M", Incarnation: 1})
	if err != nil {
		t.Fatal(err)
	}
	_ = n.Step(0, fsm.Accepted{Conn: 1})
	_ = n.Step(0, fsm.FrameReceived{Conn: 1, Frame: wire.Frame{Type: wire.Hello, ID: "A", Incarnation: 1}})
	s := spec.FromFSM(n, func(c fsm.ConnID) spec.ConnID { return spec.ConnID(c) })
	if err := spec.CheckLocal(&s); err != nil {
		t.Fatalf("a healthy node fails: %v", err)
	}
	s.Conns = append(s.Conns, s.Conns[0])
	s.Conns[1].ID, s.Conns[1].Global = 9, 9
	if err := spec.CheckLocal(&s); err == nil || !strings.Contains(err.Error(), "2 established connections to A") {
		t.Fatalf("a second session is not caught: %v", err)
	}
}

// TestSendRefusesPayloadLargerThanAFrame: Send refuses, with
// ErrPayloadTooLarge and before anything is queued, a payload whose DATA frame
// (type byte plus payload) would exceed the node's MaxFrameSize; the largest
// payload that fits is accepted. (A payload over the peer's smaller limit is
// the root package's TestPayloadOverPeerMaxFrameSize.)
func TestSendRefusesPayloadLargerThanAFrame(t *testing.T) {
	n, err := fsm.New(fsm.Config{ID: "M", Incarnation: 1, MaxFrameSize: 64})
	if err != nil {
		t.Fatal(err)
	}
	_ = n.Step(0, fsm.Accepted{Conn: 1})
	_ = n.Step(0, fsm.FrameReceived{Conn: 1, Frame: wire.Frame{Type: wire.Hello, ID: "A", Incarnation: 1}})
	n.Ready()
	if err := n.Step(0, fsm.Send{Peer: "A", Payload: make([]byte, 63)}); err != nil {
		t.Fatalf("63-byte payload in a 64-byte frame: %v", err)
	}
	if err := n.Step(0, fsm.Send{Peer: "A", Payload: make([]byte, 64)}); !errors.Is(err, fsm.ErrPayloadTooLarge) {
		t.Fatalf("64-byte payload: got %v, want ErrPayloadTooLarge", err)
	}
}

// TestKeepOfAnImpossibleIDIsRefused: SetKeep of an id no node can have
// (empty, or longer than wire.MaxIDLen) fails with ErrUnknownPeer and
// creates no record; it returned nil and kept a record for a peer that could
// never come.
func TestKeepOfAnImpossibleIDIsRefused(t *testing.T) {
	n, err := fsm.New(fsm.Config{ID: "M", Incarnation: 1})
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"", strings.Repeat("x", wire.MaxIDLen+1)} {
		if err := n.Step(0, fsm.SetKeep{Peer: id, Keep: true}); !errors.Is(err, fsm.ErrUnknownPeer) {
			t.Errorf("keep of a %d-byte id: got %v, want ErrUnknownPeer", len(id), err)
		}
	}
	if err := n.Step(0, fsm.SetKeep{Peer: strings.Repeat("x", wire.MaxIDLen), Keep: true}); err != nil {
		t.Errorf("keep of a %d-byte id: %v", wire.MaxIDLen, err)
	}
	if len(n.Peers()) != 1 {
		t.Errorf("want one record, for the id of the longest length; got %+v", n.Peers())
	}
}

// TestCommandsNamingOwnIDAreRefused: SetKeep, Send and Disconnect naming the
// node's own id fail with ErrSelfConnect and create no peer record. Before,
// they were accepted: a message to itself sat in the queue until the
// reconnect grace ran out, since a node can never dial itself.
func TestCommandsNamingOwnIDAreRefused(t *testing.T) {
	n, err := fsm.New(fsm.Config{ID: "M", Incarnation: 1})
	if err != nil {
		t.Fatal(err)
	}
	for _, ev := range []fsm.Event{fsm.SetKeep{Peer: "M", Keep: true}, fsm.Send{Peer: "M", Payload: []byte("x")}, fsm.Disconnect{Peer: "M"}} {
		if err := n.Step(0, ev); !errors.Is(err, fsm.ErrSelfConnect) {
			t.Errorf("%#v: got %v, want ErrSelfConnect", ev, err)
		}
	}
	if len(n.Peers()) != 0 {
		t.Errorf("a peer record for the node itself was created: %+v", n.Peers())
	}
}
