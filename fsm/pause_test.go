package fsm_test

import (
	"errors"
	"testing"
	"time"

	"github.com/masterless-go/masterless/fsm"
	"github.com/masterless-go/masterless/wire"
)

// pauseDriver steps a node with one session (observed: A, established at
// 0, heartbeat 1 s, peer timeout 5 s) and records when it timed A out.
type pauseDriver struct {
	t        *testing.T
	n        *fsm.Node
	closedAt time.Duration // -1 while the session lives
}

func newPauseDriver(t *testing.T) *pauseDriver {
	return &pauseDriver{t: t, n: observed(t), closedAt: -1}
}

// tick steps one Tick at now, however late, and notes a peer timeout.
func (d *pauseDriver) tick(now time.Duration) {
	d.t.Helper()
	if err := d.n.Step(now, fsm.Tick{}); err != nil {
		d.t.Fatal(err)
	}
	for _, a := range d.n.Ready() {
		if a.Kind == fsm.ActClose && errors.Is(a.Err, fsm.ErrPeerTimeout) && d.closedAt < 0 {
			d.closedAt = now
		}
	}
}

// onTime ticks at every deadline up to until, as an adapter that is never
// late does, and stops at a peer timeout.
func (d *pauseDriver) onTime(until time.Duration) {
	d.t.Helper()
	for d.closedAt < 0 {
		at, ok := d.n.NextDeadline()
		if !ok || at > until {
			return
		}
		d.tick(at)
	}
}

// heard steps a PING from A at now: the reader caught up.
func (d *pauseDriver) heard(now time.Duration) {
	d.t.Helper()
	if err := d.n.Step(now, fsm.FrameReceived{Conn: 1, Frame: wire.Frame{Type: wire.Ping}}); err != nil {
		d.t.Fatal(err)
	}
	d.n.Ready()
}

// A node that was itself paused (a Tick far past the deadline it was due
// at: starved of CPU, stopped) does not time out the sessions its pause made
// look silent: each gets as long again as the Tick was late, once per
// silence (session.go, peerTimeoutAt). A dead peer is still found.
func TestOwnPauseIsNotThePeers(t *testing.T) {
	const slot = time.Second / 16 // heartbeat deadlines fall on a grid (heartbeatAt)
	t.Run("on time: timed out at the peer timeout", func(t *testing.T) {
		d := newPauseDriver(t)
		d.onTime(20 * time.Second)
		if d.closedAt < 5*time.Second || d.closedAt > 5*time.Second+slot {
			t.Fatalf("timed out at %v, want 5 s after the last frame", d.closedAt)
		}
	})
	t.Run("paused, the peer alive: the session stays", func(t *testing.T) {
		d := newPauseDriver(t)
		d.onTime(2 * time.Second)
		d.tick(7 * time.Second) // due at 3 s: 4 s late, the silence 7 s
		if d.closedAt >= 0 {
			t.Fatalf("timed out at %v by a Tick 4 s late", d.closedAt)
		}
		d.heard(7500 * time.Millisecond) // what waited in the socket
		d.onTime(12 * time.Second)
		if d.closedAt >= 0 {
			t.Fatalf("timed out at %v, less than a peer timeout after the peer was heard", d.closedAt)
		}
		if got := d.n.Counters().PauseGraces; got != 1 {
			t.Fatalf("PauseGraces = %d, want 1", got)
		}
		d.onTime(20 * time.Second)
		if d.closedAt < 12500*time.Millisecond || d.closedAt > 12500*time.Millisecond+slot {
			t.Fatalf("timed out at %v, want 5 s after the frame at 7.5 s", d.closedAt)
		}
	})
	t.Run("paused, the peer dead: timed out when the grace ends", func(t *testing.T) {
		d := newPauseDriver(t)
		d.onTime(2 * time.Second)
		d.tick(7 * time.Second) // 4 s late: a grace until 11 s
		d.onTime(10900 * time.Millisecond)
		if d.closedAt >= 0 {
			t.Fatalf("timed out at %v, within the grace", d.closedAt)
		}
		d.onTime(20 * time.Second)
		if d.closedAt != 11*time.Second {
			t.Fatalf("timed out at %v, want 11 s (7 s + the 4 s the Tick was late)", d.closedAt)
		}
	})
	t.Run("paused twice in one silence: one grace", func(t *testing.T) {
		d := newPauseDriver(t)
		d.onTime(2 * time.Second)
		d.tick(7 * time.Second)
		d.tick(30 * time.Second) // late again: no second grace for the same silence
		if d.closedAt != 30*time.Second {
			t.Fatalf("timed out at %v, want at the second late Tick (30 s)", d.closedAt)
		}
	})
	t.Run("the grace is at most a peer timeout", func(t *testing.T) {
		d := newPauseDriver(t)
		d.onTime(2 * time.Second)
		d.tick(60 * time.Second) // 57 s late
		if d.closedAt >= 0 {
			t.Fatalf("timed out at %v by a late Tick", d.closedAt)
		}
		d.onTime(70 * time.Second)
		if d.closedAt != 65*time.Second {
			t.Fatalf("timed out at %v, want 65 s (60 s + one peer timeout)", d.closedAt)
		}
	})
	t.Run("late by less than a heartbeat: timed out", func(t *testing.T) {
		d := newPauseDriver(t)
		d.onTime(4500 * time.Millisecond)
		d.tick(5900 * time.Millisecond) // due at 5 s: 0.9 s late
		if d.closedAt != 5900*time.Millisecond {
			t.Fatalf("timed out at %v, want at the Tick 0.9 s late (5.9 s)", d.closedAt)
		}
	})
}
