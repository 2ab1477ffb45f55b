package netio

import (
	"os"
	"sync/atomic"
	"time"
)

// lagProbe measures how late this process runs the goroutines that the
// network wakes, for fsm.Tick.Lag (the node's own pause, spec/PROTOCOL.md 4).
//
// Why a probe. The fsm's rule sees a pause through a late Tick, and a
// process stopped or starved by other processes does run its timer late.
// One starved by its own goroutines does not: Go runs a goroutine that a
// timer woke at once, but one that the network poller woke behind every
// runnable goroutine. A black-box audit measured timers at most 0.16 s late
// while a socket reader lagged 3.6 s (100 spinning goroutines,
// GOMAXPROCS=1): the peer's PINGs waited unread while the timer found the
// session silent and closed it. So the timer goroutine writes a byte into a
// pipe that the poller watches, as it watches the sockets, and a goroutine
// of the probe's own reads it: how long the byte waits is how long a
// socket's bytes wait for their reader. One byte is in the pipe at a time;
// while it waits, its age is the lag so far.
type lagProbe struct {
	r, w *os.File
	base time.Time    // sent and last count from here (monotonic)
	sent atomic.Int64 // when the byte in the pipe was written; 0: none in it
	last atomic.Int64 // how long the last byte read had waited
}

// newLagProbe returns a probe, or nil if the process cannot make a pipe
// (out of descriptors): the node then runs without it, as before it
// existed, and Tick.Lag stays 0.
func newLagProbe() *lagProbe {
	r, w, err := os.Pipe()
	if err != nil {
		return nil
	}
	return &lagProbe{r: r, w: w, base: time.Now()}
}

// run reads the probe's bytes until the pipe's write end closes (close).
func (p *lagProbe) run() {
	var b [1]byte
	for {
		if _, err := p.r.Read(b[:]); err != nil {
			p.r.Close()
			return
		}
		if at := p.sent.Swap(0); at != 0 {
			p.last.Store(int64(time.Since(p.base)) - at)
		}
	}
}

// lag returns how late the network's goroutines run, as far as the probe
// can tell now: the age of the byte still in the pipe, or else how long the
// last one waited (reported once), and puts a new byte in the pipe when
// none is in it. Called by the timer goroutine before each Tick.
func (p *lagProbe) lag() time.Duration {
	if p == nil {
		return 0
	}
	now := int64(time.Since(p.base))
	if at := p.sent.Load(); at != 0 {
		return time.Duration(now - at)
	}
	last := time.Duration(p.last.Swap(0))
	p.sent.Store(max(now, 1))
	if _, err := p.w.Write([]byte{0}); err != nil {
		p.sent.Store(0) // closed: no byte will come
	}
	return last
}

// close ends run: it sees the end of the pipe.
func (p *lagProbe) close() {
	if p != nil {
		p.w.Close()
	}
}
