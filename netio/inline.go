package netio

import "time"

// Inline writes: a Send whose connection has been quiet is written by the
// sending goroutine itself, once it has dropped the core lock, with one
// non-blocking write(2), instead of waking the connection's writer
// goroutine for it.
//
// Why: a request answered from the message callback crosses three
// goroutines at each end (the reader, the dispatcher that runs the
// callback, the writer that flushes the answer), where bare TCP crosses
// two; on two CPUs every hand-over is a chance for the Go scheduler to run
// the next goroutine on the other CPU, and each crossing costs a wake-up
// and the state's cache lines. With the answer written by the callback's
// own goroutine (and the dispatcher yielding after it, before its
// consumption report, dispatch.go), a ping-pong's round trip stays on one
// CPU: 22.7 µs against 29.5 µs, bare TCP 23.5 µs (PERFORMANCE.md,
// 2026-12-03, third session).
//
// When: only a Send (one peer; SendMany's fan-out keeps its writers, which
// write in parallel), only on a plain TCP socket whose writer is parked with
// nothing queued, only up to inlineMax bytes, and only when nothing was
// written on the connection for inlineQuiet, counting inline writes. So a stream of sends (an echo's
// answers, a burst) costs at most one inline write per inlineQuiet and
// connection, and the writer gathers the rest into few system calls as
// before: writing every answer inline made every small write its own system
// call (an earlier experiment: echo at 0.54 of its rate).
//
// Order: while an inline write is pending or in flight the writer is not
// woken for the bytes queued behind it and does not write (conn.inflight);
// what the socket did not take goes back in front of them, for the writer.
// Nothing blocks: the write never waits for the socket, and the core lock is
// not held; the connection's buffer lock is not held during the system call
// either, so sends to it meanwhile only append.

// inlineQuiet is how long a connection must have had nothing written before
// a Send is written inline.
const inlineQuiet = 20 * time.Microsecond

// inlineMax is the most bytes written inline: a larger write is the
// writer's, which copies it into the socket in parallel with the sender
// (an inline write of 12 MiB would hold the Send for the milliseconds the
// kernel takes to copy the several MiB the socket takes at once).
const inlineMax = 64 << 10

// maxInline is the most connections one Send writes to inline; a step that
// writes to more wakes their writers.
const maxInline = 4

// inlineFor reports whether the bytes just queued on c, whose writer is
// parked with nothing else queued, are to be written inline by the Send in
// progress, and if so, registers c for it (called under n.mu and c.wmu).
func (n *Runtime) inlineFor(c *conn) bool {
	if !n.inlining || c.raw == nil || c.sc != nil || !c.steady.Load() || n.ninline == maxInline {
		return false
	}
	// The clock, not the latest step's time: a Send after a pause follows
	// no step. It is read only here, where a system call is about to be
	// made anyway.
	now := time.Since(n.start)
	if c.lastWrite != 0 && now-c.lastWrite < inlineQuiet {
		return false
	}
	c.lastWrite = now
	n.inline[n.ninline] = c
	n.ninline++
	return true
}

// takeInline returns the connections registered for inline writes and
// clears the list (called under n.mu, just before it is dropped).
func (n *Runtime) takeInline() (cs [maxInline]*conn, k int) {
	cs, k = n.inline, n.ninline
	n.inline, n.ninline = [maxInline]*conn{}, 0
	return cs, k
}

// flushInline carries out what takeInline returned (without n.mu).
func flushInline(cs *[maxInline]*conn, k int) {
	for _, c := range cs[:k] {
		c.flushInline()
	}
}

// flushInline writes c's queued bytes with one non-blocking write and hands
// what the socket did not take, and whatever was queued meanwhile, to the
// writer.
func (c *conn) flushInline() {
	c.wmu.Lock()
	if !c.inlined {
		c.wmu.Unlock()
		return
	}
	if c.idle && c.state == connOpen && !c.laneWork && len(c.out) > 0 && len(c.out) <= inlineMax {
		buf := c.out
		c.out, c.spare = c.spare[:0], nil // sends meanwhile append here
		c.inflight = true
		c.wmu.Unlock()
		k := c.tryWrite(buf)
		c.countOut(k)
		c.n.inlineWrites.Add(1)
		c.n.disp.inlined.Store(true)
		c.wmu.Lock()
		c.inflight = false
		if c.state == connAborted {
			c.out = nil // as abort left it
		} else if k < len(buf) {
			// The rest goes first, then what was queued meanwhile.
			rest := buf[:copy(buf, buf[k:])]
			c.out, c.spare = append(rest, c.out...), c.out[:0]
		} else if cap(buf) <= 2*c.n.cfg.SendBuffer {
			c.spare = buf[:0]
		}
	}
	c.inlined = false
	wake := c.idle && (len(c.out) > 0 || c.laneWork || c.state != connOpen)
	if wake {
		c.idle = false
	}
	c.wmu.Unlock()
	if wake {
		c.data.Signal()
	}
}
