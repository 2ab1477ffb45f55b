package fsm_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/masterless-go/masterless/fsm"
	"github.com/masterless-go/masterless/wire"
)

// TestManyPeersDoNotHang: past the bound on remembered incoming streams,
// with every remembered stream belonging to a peer still known, a new peer
// is taken without forgetting any (the eviction loop once went round for
// ever: a flood of distinct ids could hang a node).
func TestManyPeersDoNotHang(t *testing.T) {
	n, err := fsm.New(fsm.Config{ID: "~", Incarnation: 1}) // "~" leads every pair below
	if err != nil {
		t.Fatal(err)
	}
	const peers = 1<<16 + 2
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range peers {
			c := fsm.ConnID(i + 1)
			_ = n.Step(0, fsm.Accepted{Conn: c})
			_ = n.Step(0, fsm.FrameReceived{Conn: c, Frame: wire.Frame{Type: wire.Hello, ID: fmt.Sprintf("p%06d", i), Incarnation: 1}})
			n.Ready()
		}
	}()
	select {
	case <-done:
	case <-time.After(2 * time.Minute):
		t.Fatal("a node with 65,538 peers hangs taking one more")
	}
	if got := len(n.Sessions()); got != peers {
		t.Fatalf("%d sessions, want %d", got, peers)
	}
}

// A credit that would wrap the sender's limit is taken as no limit, not as
// a small one: a resuming ACK with the largest credit, after messages were
// acknowledged on an earlier session, still lets the queued message go.
func TestHugeCreditDoesNotWrap(t *testing.T) {
	n, err := fsm.New(fsm.Config{ID: "M", Incarnation: 1})
	if err != nil {
		t.Fatal(err)
	}
	hello := wire.Frame{Type: wire.Hello, ID: "A", Incarnation: 1}
	for _, ev := range []fsm.Event{
		fsm.SetKeep{Peer: "A", Keep: true},
		fsm.Accepted{Conn: 1},
		fsm.FrameReceived{Conn: 1, Frame: hello},
		fsm.FrameReceived{Conn: 1, Frame: wire.Frame{Type: wire.Ack, Credit: 1 << 20}},
		fsm.Send{Peer: "A", Payload: []byte("first")},
		fsm.FrameReceived{Conn: 1, Frame: wire.Frame{Type: wire.Ack, Delivered: 1, Credit: 1 << 20}},
		fsm.ConnClosed{Conn: 1},
		fsm.Send{Peer: "A", Payload: []byte("second")}, // queued: no session
		fsm.Accepted{Conn: 2},
		fsm.FrameReceived{Conn: 2, Frame: hello},
	} {
		if err := n.Step(0, ev); err != nil {
			t.Fatal(err)
		}
	}
	n.Ready()
	_ = n.Step(0, fsm.FrameReceived{Conn: 2, Frame: wire.Frame{Type: wire.Ack, Delivered: 1, Credit: ^uint64(0)}})
	var data []string
	for _, a := range n.Ready() {
		if a.Kind == fsm.ActWrite && a.Frame.Type == wire.Data {
			data = append(data, string(a.Frame.Payload))
		}
	}
	if len(data) != 1 || data[0] != "second" {
		t.Fatalf("DATA written after the resuming ACK: %q, want the queued message", data)
	}
}
