package fsm_test

import (
	"fmt"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/masterless-go/masterless/fsm"
	"github.com/masterless-go/masterless/wire"
)

// Send and SendMany are time-free (fsm.Send): an adapter may step them at
// the time of its latest step instead of reading the clock for each
// message. The check runs two twin nodes through one script of events; the
// twins see the same time for every other event, but each Send and SendMany
// reaches twin A at the script's current time and twin B an hour later (a
// Send through fsm.Node.Send, A's through Step: the two entries must agree). The
// twins must make the same actions, return the same errors and keep the
// same next deadline after every step: a Send whose outcome, or whose effect
// on later steps, depended on its now would set them apart (the Ticks and
// peer timeouts after it run on the node's clock).

// twinStep is one event of a twin script.
type twinStep struct {
	kind    int // twinSend, twinSendMany, twinAck, twinData, twinTick, twinConsumed, twinReconnect
	size    int // payload bytes (sends, DATA)
	reserve bool
	n       uint64 // ACK: messages to acknowledge; Consumed: messages
	dt      time.Duration
}

const (
	twinSend = iota
	twinSendMany
	twinAck
	twinData
	twinTick
	twinConsumed
	twinReconnect
	twinKeep // keep or let go of A (reserve says which), so that its record can be forgotten
	twinKinds
)

// twinScript draws a script of steps events; draw(k) returns a number in [0, k).
func twinScript(draw func(k int) int, steps int) []twinStep {
	s := make([]twinStep, steps)
	for i := range s {
		s[i] = twinStep{
			kind:    draw(twinKinds),
			size:    draw(200) + draw(2)*(draw(1200)+400), // some past sharedMin: SendMany shares them
			reserve: draw(2) == 0,
			n:       uint64(draw(40)),
			dt:      time.Duration(draw(3000)) * time.Millisecond,
		}
	}
	return s
}

// runTwins runs script on two twin nodes built by cfg and returns the first
// difference between them, or nil.
func runTwins(cfg fsm.Config, script []twinStep) error {
	var twins [2]*fsm.Node
	for i := range twins {
		n, err := fsm.New(cfg)
		if err != nil {
			return err
		}
		twins[i] = n
	}
	now := time.Duration(0)
	conn := fsm.ConnID(1)
	var written, delivered, credit uint64 // DATA this node wrote on conn; acknowledged; credit granted
	late := time.Hour
	step := func(what string, ev fsm.Event, send bool) error {
		var outs [2]string
		for i, n := range twins {
			at := now
			if send && i == 1 {
				at = now + late
			}
			var err error
			if e, ok := ev.(fsm.Send); ok && i == 1 {
				err = n.Send(at, &e) // the entry that skips the event's box: the same step
			} else {
				err = n.Step(at, ev)
			}
			acts := n.Ready()
			for _, a := range splitAll(acts) {
				if a.Kind == fsm.ActWrite && a.Frame.Type == wire.Data && a.Conn == conn && i == 0 {
					written++
				}
			}
			d, ok := n.NextDeadline()
			outs[i] = fmt.Sprintf("err=%v deadline=%v,%v actions=%+v", err, d, ok, acts)
			if err := n.CheckActionSlots(); err != nil {
				return fmt.Errorf("%s: %w", what, err)
			}
			if err := n.CheckStreams(); err != nil {
				return fmt.Errorf("%s: %w", what, err)
			}
		}
		if outs[0] != outs[1] {
			return fmt.Errorf("%s at %v: the twin stepped at the time the send was made and the one stepped %v later differ:\n  %s\n  %s", what, now, late, outs[0], outs[1])
		}
		return nil
	}
	session := func() error {
		if err := step("accept", fsm.Accepted{Conn: conn}, false); err != nil {
			return err
		}
		if err := step("hello", fsm.FrameReceived{Conn: conn, Frame: wire.Frame{Type: wire.Hello, ID: "A", Incarnation: 1}}, false); err != nil {
			return err
		}
		credit += 4 << 10
		return step("credit", fsm.FrameReceived{Conn: conn, Frame: wire.Frame{Type: wire.Ack, Delivered: delivered, Credit: credit}}, false)
	}
	if err := step("keep", fsm.SetKeep{Peer: "A", Keep: true}, false); err != nil {
		return err
	}
	if err := step("keep", fsm.SetKeep{Peer: "B", Keep: true}, false); err != nil {
		return err
	}
	if err := session(); err != nil {
		return err
	}
	var err error
	for i, s := range script {
		what := fmt.Sprintf("step %d (%+v)", i, s)
		payload := make([]byte, s.size)
		switch s.kind {
		case twinSend:
			err = step(what, fsm.Send{Peer: "A", Payload: payload, Reserve: s.reserve}, true)
		case twinSendMany:
			err = step(what, fsm.SendMany{Peers: []string{"B", "A", "Z"}, Payload: payload, Reserve: s.reserve, Errs: make([]error, 3)}, true)
		case twinAck:
			delivered = min(delivered+s.n, written)
			credit += uint64(s.size) << 4
			err = step(what, fsm.FrameReceived{Conn: conn, Frame: wire.Frame{Type: wire.Ack, Delivered: delivered, Credit: credit}}, false)
		case twinData:
			err = step(what, fsm.FrameReceived{Conn: conn, Frame: wire.Frame{Type: wire.Data, Payload: payload}}, false)
		case twinTick:
			now += s.dt
			err = step(what, fsm.Tick{}, false)
		case twinConsumed:
			err = step(what, fsm.Consumed{Peer: "A", Incarnation: 1, Messages: int(s.n), Bytes: int(s.n) * s.size}, false)
		case twinReconnect:
			if err = step(what, fsm.ConnClosed{Conn: conn}, false); err != nil {
				return err
			}
			conn++
			written = delivered // what was not acknowledged is sent again on the new session
			err = session()
		case twinKeep:
			err = step(what, fsm.SetKeep{Peer: "A", Keep: s.reserve}, false)
		}
		if err != nil {
			return err
		}
	}
	now += time.Minute // past every peer timeout and heartbeat
	return step("the last tick", fsm.Tick{}, false)
}

// TestCheckActionSlotsCatches is the negative control of CheckActionSlots
// (run by the twins above and the fuzz harness): a DATA write with a field
// that clean does not clear must be reported.
func TestCheckActionSlotsCatches(t *testing.T) {
	n := established(t)
	if err := n.Step(0, fsm.Send{Peer: "A", Payload: []byte("x")}); err != nil {
		t.Fatal(err)
	}
	acts := n.Ready()
	marked := false
	for i := range acts {
		if acts[i].Kind == fsm.ActWrite && acts[i].Frame.Type == wire.Data {
			acts[i].Frame.Text = "a field clean leaves" // the slot is the node's own
			marked = true
		}
	}
	if !marked {
		t.Fatalf("no DATA write in %+v", acts)
	}
	if err := n.CheckActionSlots(); err == nil {
		t.Fatal("a DATA write's slot left with a field set went unnoticed")
	}
}

func TestSendIsTimeFree(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		steps := rapid.IntRange(1, 60).Draw(t, "steps")
		script := twinScript(func(k int) int { return rapid.IntRange(0, k-1).Draw(t, "x") }, steps)
		if err := runTwins(fsm.Config{ID: "M", Incarnation: 1, Seed: 1}, script); err != nil {
			t.Fatal(err)
		}
	})
}
