package fsm_test

import (
	"testing"

	"github.com/masterless-go/masterless/fsm"
	"github.com/masterless-go/masterless/wire"
)

// established returns a node M with a session with peer A on connection 1.
func established(b *testing.B) *fsm.Node {
	n, err := fsm.New(fsm.Config{ID: "M", Incarnation: 1})
	if err != nil {
		b.Fatal(err)
	}
	_ = n.Step(0, fsm.Accepted{Conn: 1})
	_ = n.Step(0, fsm.FrameReceived{Conn: 1, Frame: wire.Frame{Type: wire.Hello, ID: "A", Incarnation: 1}})
	if _, ok := n.SessionConn("A"); !ok {
		b.Fatal("no session")
	}
	n.Ready()
	return n
}

// BenchmarkStepSend measures the fsm's share of sending one message.
func BenchmarkStepSend(b *testing.B) {
	n := established(b)
	payload := make([]byte, 32)
	b.ReportAllocs()
	for b.Loop() {
		if err := n.Step(0, fsm.Send{Peer: "A", Payload: payload}); err != nil {
			b.Fatal(err)
		}
		n.Ready()
	}
}

// BenchmarkStepReceiveData measures the fsm's share of receiving one message.
func BenchmarkStepReceiveData(b *testing.B) {
	n := established(b)
	ev := fsm.FrameReceived{Conn: 1, Frame: wire.Frame{Type: wire.Data, Payload: make([]byte, 32)}}
	b.ReportAllocs()
	for b.Loop() {
		_ = n.Step(0, ev)
		n.Ready()
	}
}
