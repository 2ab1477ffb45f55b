package fsm_test

import (
	"reflect"
	"testing"
	"time"

	"github.com/masterless-go/masterless/fsm"
	"github.com/masterless-go/masterless/wire"
)

// TestSendDoesNotDependOnNow guards an assumption of netio: it steps Send at
// the time of the latest event it fed the fsm instead of reading the clock
// for every message (netio/api.go). That is sound only while a Send's effects
// (the DATA write on a session, the queue of a kept peer that is away, the
// refusals) and the deadlines after it do not depend on now. If this test
// fails, Send has started to use the time: netio must read the clock for it.
func TestSendDoesNotDependOnNow(t *testing.T) {
	setup := func() *fsm.Node {
		n, err := fsm.New(fsm.Config{ID: "M", Incarnation: 1, Seed: 1})
		if err != nil {
			t.Fatal(err)
		}
		for _, ev := range []fsm.Event{
			fsm.Listening{Info: "tcp://M"},
			fsm.Accepted{Conn: 1}, // A's session: M leads A and grants it on HELLO
			fsm.FrameReceived{Conn: 1, Frame: wire.Frame{Type: wire.Hello, ID: "A", Incarnation: 1}},
			fsm.SetKeep{Peer: "B", Keep: true}, // kept, never reached: sends to B queue
		} {
			if err := n.Step(0, ev); err != nil {
				t.Fatal(err)
			}
		}
		n.Ready()
		return n
	}
	type outcome struct {
		Errs     []string
		Actions  []string
		Peers    []fsm.PeerStatus
		Deadline time.Duration
		Due      bool
	}
	play := func(at time.Duration) outcome {
		n := setup()
		var o outcome
		for _, ev := range []fsm.Event{
			fsm.Send{Peer: "A", Payload: []byte("to the session")},
			fsm.Send{Peer: "B", Payload: []byte("to the queue")},
			fsm.Send{Peer: "C", Payload: []byte("unknown")},
			fsm.Send{Peer: "A", Payload: make([]byte, wire.DefaultMaxFrameSize)},
		} {
			err := n.Step(at, ev)
			o.Errs = append(o.Errs, errString(err))
		}
		for _, a := range n.Ready() {
			o.Actions = append(o.Actions, a.String())
		}
		o.Peers = n.Peers()
		o.Deadline, o.Due = n.NextDeadline()
		return o
	}
	early, late := play(0), play(900*time.Millisecond) // both before the first deadline
	if len(early.Actions) == 0 || early.Errs[0] != "" || early.Errs[1] != "" || early.Errs[2] == "" || early.Errs[3] == "" {
		t.Fatalf("the setup does not exercise a write, a queue and two refusals: %+v", early)
	}
	if !reflect.DeepEqual(early, late) {
		t.Fatalf("Send stepped at 0 and at 900ms differ:\n at 0:     %+v\n at 900ms: %+v", early, late)
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
