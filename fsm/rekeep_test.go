package fsm_test

import (
	"errors"
	"testing"
	"time"

	"github.com/masterless-go/masterless/fsm"
	"github.com/masterless-go/masterless/wire"
)

// Keeping a peer again never puts its redial off: once the backoff since
// its last redial has passed, the next Tick dials it, however briefly the
// node keeps it. Before, every Keep drew a backoff anew from now, so an
// end that kept the peer for less than half a backoff at a time never
// dialed (a black-box audit: with the keeping end switching every 1-400 ms
// after an outage, the pair stayed apart until the grace ran out).
func TestKeepAgainDoesNotPutRedialOff(t *testing.T) {
	n, err := fsm.New(fsm.Config{ID: "M", Incarnation: 1, BackoffMin: 100 * time.Millisecond, BackoffMax: 10 * time.Second, ReconnectGrace: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Duration(0)
	step := func(ev fsm.Event) []fsm.Action {
		t.Helper()
		if err := n.Step(now, ev); err != nil {
			t.Fatal(err)
		}
		return n.Ready()
	}
	dialOf := func(acts []fsm.Action) (fsm.DialID, bool) {
		for _, a := range acts {
			if a.Kind == fsm.ActDial {
				return a.Dial, true
			}
		}
		return 0, false
	}
	step(fsm.SetKeep{Peer: "A", Keep: true})
	step(fsm.Accepted{Conn: 1})
	step(fsm.FrameReceived{Conn: 1, Frame: wire.Frame{Type: wire.Hello, ID: "A", Incarnation: 1, Info: "tcp://A", Keep: true}})
	step(fsm.FrameReceived{Conn: 1, Frame: wire.Frame{Type: wire.Ack, Credit: 1 << 20}})
	step(fsm.FrameReceived{Conn: 1, Frame: wire.Frame{Type: wire.Resume, Next: 1}})
	if got := n.ListedSessions(); len(got) != 1 {
		t.Fatalf("no session with A: %v", got)
	}
	now = time.Second
	step(fsm.ConnClosed{Conn: 1, Err: errors.New("reset")})
	// A is away: its redials fail until the backoff has grown past a second.
	var last time.Duration
	for dials := 0; dials < 6; {
		now += 10 * time.Millisecond
		if d, ok := dialOf(step(fsm.Tick{})); ok {
			dials++
			last = now
			step(fsm.DialFailed{Dial: d, Err: errors.New("refused")})
		}
	}
	// The next redial is due half a backoff (3.2 s) or more after the last.
	// Keep is switched off and on every 10 ms from then on.
	now = last + 3200*time.Millisecond
	for i := 0; i < 10; i++ {
		step(fsm.SetKeep{Peer: "A", Keep: false})
		now += 10 * time.Millisecond
		if _, ok := dialOf(step(fsm.SetKeep{Peer: "A", Keep: true})); ok {
			return
		}
		now += 10 * time.Millisecond
		if _, ok := dialOf(step(fsm.Tick{})); ok {
			return
		}
	}
	t.Fatalf("no redial in the 200 ms after its backoff since the last one (at %v) had passed, keeping A half of the time", last)
}
