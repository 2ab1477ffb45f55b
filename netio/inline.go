package netio

import "time"

// Inline writes: a Send whose connection has been quiet, and the
// protocol's own small writes where they are few, are written by the
// goroutine whose step made them, once it has dropped the core lock, with
// one non-blocking write(2), instead of waking the connection's writer
// goroutine for them (or starting one).
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
// When: only on a plain TCP socket whose writer is parked with nothing
// queued, or not started; and only for the writes of a Send (one peer;
// SendMany's fan-out keeps its writers, which write in parallel), a read,
// a dial's report, a Disconnect, a Tick or Close (allowInline), by the
// rules of their kind (inlineKind). A Send is written inline only when
// nothing was written on the connection for inlineQuiet, counting inline
// writes, or when the connection read something since its last write (an
// answer: conn.answering), and up to inlineMax bytes. So a stream of sends
// (an echo's answers, a burst) costs at most one inline write per
// inlineQuiet or read and connection, and the writer gathers the rest into
// few system calls as before: writing every answer inline made every small
// write its own system call (an earlier experiment: echo at 0.54 of its
// rate). The read is what tells a request-response from a stream: on a VM
// whose round trip (9.6 µs) was shorter than inlineQuiet, the quiet alone
// sent every answer of a ping-pong through the writer goroutine, at 0.83
// of bare TCP's rate (0.92-0.95 with the read counted; PERFORMANCE.md,
// "Answers inline after a read"). The
// protocol's own writes that reads and ticks make due (a handshake's
// frames, acknowledgements, heartbeats) go inline up to pacedMax bytes and
// at most once per pacedQuiet; those that come once (a dial's HELLO, a
// goodbye) whenever the writer is idle.
//
// A connection starts without a writer goroutine (conn.go, writerState):
// one starts at the first write that is not made inline, and ends once it
// has had nothing to write for writerRetireAfter. An idle connection's
// heartbeats, and a quiet session's sends, need none, so an idle peer
// costs one goroutine.
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

// pacedQuiet is how long before the protocol's own writes that reads and
// ticks make due (inlinePaced) are written inline again on a connection
// (and inlineQuiet since any write). Where they come close together, in a
// stream (an acknowledgement after every read) or a handshake (its frames
// a round trip apart), they go to the writer, which gathers them with the
// rest and writes while the reader reads on (written by the reader
// instead, a churn cycle, Connect, a message, Disconnect, measured no
// faster, and rather slower: PERFORMANCE.md, 2026-12-03, fourth session).
// An idle connection's heartbeats and acknowledgements, far apart, go
// inline, so it needs no writer, and so do a quiet session's.
const pacedQuiet = time.Millisecond

// writerRetireAfter is how long a connection's writer goroutine must have
// had nothing to write before it ends (conn.go, writerState): a burst has
// passed, and the connection's writes go inline again.
const writerRetireAfter = idleTrimAfter

// pacedMax is the most bytes of the protocol's own writes (inlinePaced,
// inlineOnce) written inline: a handshake's frames, acknowledgements, heartbeats
// and goodbyes are far smaller. A read that carries credit also writes the
// DATA that credit frees, which may be a window's worth: that is a
// stream's, for the writer, which sends it while the reader reads on.
const pacedMax = 1 << 10

// inlineMax is the most bytes written inline: a larger write is the
// writer's, which copies it into the socket in parallel with the sender
// (an inline write of 12 MiB would hold the Send for the milliseconds the
// kernel takes to copy the several MiB the socket takes at once).
const inlineMax = 64 << 10

// maxInline is the most connections one Send, read, dial or Disconnect
// writes to inline; a step that writes to more wakes their writers. A
// Tick's heartbeats and Close's goodbyes may go to every connection, and
// are written inline to as many as take them (inlineAll).
const maxInline = 4

// inlineAll is the bound of inlineFor for the timer's and Close's steps.
const inlineAll = int(^uint(0) >> 1)

// inlineKind is which writes a step makes, for inlineFor.
type inlineKind uint8

const (
	// inlineSend: a user's Send, written inline after inlineQuiet with
	// nothing written, up to inlineMax bytes.
	inlineSend inlineKind = iota
	// inlinePaced: the protocol's own writes that a read or a tick makes
	// due (a handshake's frames, acknowledgements, heartbeats), written
	// inline after inlineQuiet with nothing written and pacedQuiet with
	// none of these, up to pacedMax bytes.
	inlinePaced
	// inlineOnce: the writes that come once in a connection's life (a
	// dial's preamble and HELLO, a goodbye), written inline whenever the
	// writer is idle, up to pacedMax bytes.
	inlineOnce
)

// allowInline lets the writes of the steps about to be taken go inline,
// to at most conns connections (0: none), by the rules of their kind
// (called under n.mu).
func (n *Runtime) allowInline(conns int, kind inlineKind) {
	n.inlineConns, n.inlineKind = conns, kind
}

// inlineFor reports whether the bytes just queued on c, whose writer is
// parked or not started, with nothing else queued, are to be written
// inline by the goroutine whose step queued them (at most inlineMax of a
// Send, pacedMax of the protocol's own), and if so, registers c for it
// (called under n.mu and c.wmu).
func (n *Runtime) inlineFor(c *conn) bool {
	if !inlineSupported || len(n.inline) >= n.inlineConns || c.raw == nil || c.sc != nil || !c.steady.Load() {
		return false
	}
	if len(c.out) > inlineMax || (n.inlineKind != inlineSend && len(c.out) > pacedMax) {
		return false
	}
	// The clock, not the latest step's time: a Send after a pause follows
	// no step. It is read only here, where a system call is about to be
	// made anyway.
	now := time.Since(n.start)
	answer := n.inlineKind == inlineSend && c.answering
	if n.inlineKind != inlineOnce && c.lastWrite != 0 && now-c.lastWrite < inlineQuiet && !answer {
		return false
	}
	if n.inlineKind == inlinePaced {
		if c.lastPaced != 0 && now-c.lastPaced < pacedQuiet {
			return false
		}
		c.lastPaced = now
	}
	c.lastWrite, c.answering = now, false
	if c.writer == writerRunning && now-c.writerAt >= writerRetireAfter {
		c.retire = true // told after the write (flushInline)
	}
	n.inline = append(n.inline, c)
	return true
}

// takeInline appends the connections registered for inline writes to dst
// and clears the list (called under n.mu, just before it is dropped).
func (n *Runtime) takeInline(dst []*conn) []*conn {
	dst = append(dst, n.inline...)
	clear(n.inline)
	n.inline = n.inline[:0]
	return dst
}

// unlockInline drops n.mu and makes the inline writes that the steps taken
// under it registered: at most maxInline after a Send, a read, a dial or a
// Disconnect, as many as it has connections after Close (the list then
// grows once). The timer, whose every tick may write to many connections,
// keeps a list of its own.
func (n *Runtime) unlockInline() {
	var buf [maxInline]*conn
	cs := n.takeInline(buf[:0])
	n.mu.Unlock()
	flushInline(cs)
}

// noInline ends allowInline: the steps that follow write nothing inline.
func (n *Runtime) noInline() { n.allowInline(0, inlineSend) }

// flushInline carries out what takeInline returned (without n.mu).
func flushInline(cs []*conn) {
	for _, c := range cs {
		c.flushInline()
	}
}

// flushInline writes c's queued bytes with one non-blocking write and hands
// what the socket did not take, and whatever was queued meanwhile, to the
// writer, which it starts if c has none. A connection closed meanwhile
// (flushing) is written to all the same, and one without a writer that is
// then flushed half-closes here.
func (c *conn) flushInline() {
	c.wmu.Lock()
	if !c.inlined {
		c.wmu.Unlock()
		return
	}
	if c.idle && !c.inflight && c.state != connAborted && c.writer != writerNever && !c.laneWork && len(c.out) > 0 && len(c.out) <= inlineMax {
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
		if c.inflightWaiters > 0 {
			// A reader's end waits for this write (waitWriter). A parked
			// writer is not woken here: whatever it would write or do is
			// kicked below, and a broadcast after every inline write woke
			// it for nothing (a ping-pong's every answer).
			c.data.Broadcast()
		}
		switch {
		case c.state == connAborted:
			c.out = nil // as abort left it
		case k < len(buf):
			// The rest goes first, then what was queued meanwhile.
			rest := buf[:copy(buf, buf[k:])]
			c.out, c.spare = append(rest, c.out...), c.out[:0]
		case c.writer == writerNone && cap(buf) > idleKeep:
			// No writer gives back a big buffer once idle (trimIdle): one
			// this size is not kept.
		case cap(buf) <= 2*c.n.cfg.SendBuffer:
			c.spare = buf[:0]
		}
	}
	c.inlined = false
	w, now := wakeNone, false
	if c.idle && (len(c.out) > 0 || c.laneWork || c.state != connOpen || c.retire) {
		if now = c.flushedWithoutWriter(); !now { // closeGraceful left the FIN to this
			w = c.kick()
		}
	}
	c.wmu.Unlock()
	c.wake(w)
	if now {
		c.halfClose()
	}
}
