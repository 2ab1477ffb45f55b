package fsm_test

import (
	"errors"
	"testing"
	"time"

	"github.com/masterless-go/masterless/fsm"
	"github.com/masterless-go/masterless/wire"
)

// timeoutDriver steps a node with one session (observed: A, established at
// 0, heartbeat 1 s, peer timeout 5 s) and records when it timed A out. Its
// Ticks come on time (onTime), as an adapter's do, or late (tick), as a
// starved one's do: a Tick later than a heartbeat past its deadline means
// the node's own pause (peerTimeoutAt), so a test of the peer timeout alone
// ticks on time.
type timeoutDriver struct {
	t        *testing.T
	n        *fsm.Node
	closedAt time.Duration // -1 while the session lives
}

func newTimeoutDriver(t *testing.T) *timeoutDriver {
	return &timeoutDriver{t: t, n: observed(t), closedAt: -1}
}

// tick steps one Tick at now, however late, and notes a peer timeout.
func (d *timeoutDriver) tick(now time.Duration) {
	d.t.Helper()
	d.tickLag(now, 0)
}

// tickLag is tick with the adapter's measure of its reading's lag
// (Tick.Lag).
func (d *timeoutDriver) tickLag(now, lag time.Duration) {
	d.t.Helper()
	if err := d.n.Step(now, fsm.Tick{Lag: lag}); err != nil {
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
func (d *timeoutDriver) onTime(until time.Duration) {
	d.t.Helper()
	for d.closedAt < 0 {
		at, ok := d.n.NextDeadline()
		if !ok || at > until {
			return
		}
		d.tick(at)
	}
}

// open fails the test if the session was timed out; why says when.
func (d *timeoutDriver) open(why string) {
	d.t.Helper()
	if d.closedAt >= 0 {
		d.t.Fatalf("timed out at %v, %s", d.closedAt, why)
	}
}

// closedWithin fails the test unless the session was timed out at a time
// in [from, to]; why says when it should have been.
func (d *timeoutDriver) closedWithin(from, to time.Duration, why string) {
	d.t.Helper()
	if d.closedAt < from || d.closedAt > to {
		d.t.Fatalf("timed out at %v (-1: not), want %s", d.closedAt, why)
	}
}

// heard steps a PING from A at now: the reader caught up.
func (d *timeoutDriver) heard(now time.Duration) {
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
		d := newTimeoutDriver(t)
		d.onTime(20 * time.Second)
		d.closedWithin(5*time.Second, 5*time.Second+slot, "5 s after the last frame")
	})
	t.Run("paused, the peer alive: the session stays", func(t *testing.T) {
		d := newTimeoutDriver(t)
		d.onTime(2 * time.Second)
		d.tick(7 * time.Second) // due at 3 s: 4 s late, the silence 7 s
		d.open("by a Tick 4 s late")
		d.heard(7500 * time.Millisecond) // what waited in the socket
		d.onTime(12 * time.Second)
		d.open("less than a peer timeout after the peer was heard")
		if got := d.n.Counters().PauseGraces; got != 1 {
			t.Fatalf("PauseGraces = %d, want 1", got)
		}
		d.onTime(20 * time.Second)
		d.closedWithin(12500*time.Millisecond, 12500*time.Millisecond+slot, "5 s after the frame at 7.5 s")
	})
	t.Run("paused, the peer dead: timed out when the grace ends", func(t *testing.T) {
		d := newTimeoutDriver(t)
		d.onTime(2 * time.Second)
		d.tick(7 * time.Second) // 4 s late: a grace until 11 s
		d.onTime(10900 * time.Millisecond)
		d.open("within the grace")
		d.onTime(20 * time.Second)
		d.closedWithin(11*time.Second, 11*time.Second, "11 s (7 s + the 4 s the Tick was late)")
	})
	t.Run("paused twice in one silence: one grace", func(t *testing.T) {
		d := newTimeoutDriver(t)
		d.onTime(2 * time.Second)
		d.tick(7 * time.Second)
		d.tick(30 * time.Second) // late again: no second grace for the same silence
		d.closedWithin(30*time.Second, 30*time.Second, "at the second late Tick (30 s)")
	})
	t.Run("the grace is at most a peer timeout", func(t *testing.T) {
		d := newTimeoutDriver(t)
		d.onTime(2 * time.Second)
		d.tick(60 * time.Second) // 57 s late
		d.open("by a late Tick")
		d.onTime(70 * time.Second)
		d.closedWithin(65*time.Second, 65*time.Second, "65 s (60 s + one peer timeout)")
	})
	t.Run("late by less than a heartbeat: timed out", func(t *testing.T) {
		d := newTimeoutDriver(t)
		d.onTime(4500 * time.Millisecond)
		d.tick(5900 * time.Millisecond) // due at 5 s: 0.9 s late
		d.closedWithin(5900*time.Millisecond, 5900*time.Millisecond, "at the Tick 0.9 s late (5.9 s)")
	})
}

// A Tick on time whose adapter reports that its reading of the network lags
// (Tick.Lag: a process starved by its own goroutines, whose timer runs on
// time while its socket readers wait) counts as late as the lag: the
// sessions it would time out get the same grace, once per silence.
func TestReadLagIsOwnPause(t *testing.T) {
	t.Run("lagging, the peer alive: the session stays", func(t *testing.T) {
		d := newTimeoutDriver(t)
		d.onTime(4900 * time.Millisecond)
		d.tickLag(5*time.Second, 3*time.Second) // on time, but what the peer sent waits unread
		d.open("by a Tick on time whose reading lags 3 s")
		if got := d.n.Counters().PauseGraces; got != 1 {
			t.Fatalf("PauseGraces = %d, want 1", got)
		}
		d.heard(6 * time.Second)
		d.onTime(10 * time.Second)
		d.open("less than a peer timeout after the peer was heard")
	})
	t.Run("lagging, the peer dead: timed out when the grace ends", func(t *testing.T) {
		d := newTimeoutDriver(t)
		d.onTime(4900 * time.Millisecond)
		d.tickLag(5*time.Second, 3*time.Second)
		d.onTime(20 * time.Second)
		d.closedWithin(8*time.Second, 8*time.Second, "8 s (5 s + the 3 s lag)")
	})
	t.Run("a lag under a heartbeat: timed out", func(t *testing.T) {
		d := newTimeoutDriver(t)
		d.onTime(4900 * time.Millisecond)
		d.tickLag(5*time.Second, 900*time.Millisecond)
		d.closedWithin(5*time.Second, 5*time.Second, "at the peer timeout")
	})
}
