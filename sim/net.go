package sim

import (
	"bytes"
	"errors"
	"fmt"
	"time"

	"github.com/masterless-go/masterless/fsm"
	"github.com/masterless-go/masterless/spec"
	"github.com/masterless-go/masterless/wire"
)

// The simulated network: TCP connections as pairs of FIFO byte streams with
// latency, plus the faults that can hit them.

var (
	errRefused = errors.New("sim: connection refused")
	errReset   = errors.New("sim: connection reset by peer")
	errEOF     = errors.New("sim: EOF")
)

// simConn is one TCP connection. ends[0] is the dialer's, ends[1] the
// acceptor's.
type simConn struct {
	id     spec.ConnID
	ends   [2]simEnd
	ep     uint32 // bumped when bytes in flight are lost (reset, silence)
	reset  bool   // reset: nothing more is carried
	silent bool   // silently dead: nothing more is carried, no FIN, no reset
}

// simEnd is one end of a connection: the node process holding it, whether
// its connection layer still holds it, and what it sent but not yet flushed.
// What it received but not yet parsed is the connection layer's, as in netio.
// With bounded socket buffers (Knobs.SockBuf, sockets.go) it also holds the
// adapter's output buffer and writer, and the bytes that arrived but the
// reader has not read yet.
type simEnd struct {
	node     int
	inc      uint64
	open     bool
	known    bool // the connection layer was told of it (Incoming or Dialed)
	wbuf     []byte
	wctl     bool          // wbuf holds something other than PINGs
	segments int           // segments sent from here
	lastSent time.Duration // arrival time of the last segment sent from here (FIFO)

	// The writing side (sockets.go).
	out      []byte // netio's conn.out: written, not yet taken by the writer
	wcur     []byte // the writer's Write in progress: what the kernel has not taken yet
	wseq     uint64 // Writes started, to match a write deadline with its Write
	written  uint64 // stream offset: bytes ever put in out
	pushed   uint64 // stream offset: bytes the kernel took
	ctlUpto  uint64 // stream offset at the end of the last bytes other than PINGs
	inPipe   int    // bytes the kernel took and the peer's reader has not read (window in use)
	flushing bool   // the layer closed it: the writer drains out, then the FIN goes
	waiters  []waiter
	// The reading side: bytes arrived (the kernel's receive buffer), not yet
	// read; blocked while the reader waits for room in the delivery queue.
	rq      [][]byte
	blocked bool
	fin     error      // the FIN arrived behind bytes not read yet
	adv     *adversary // an adversary holds it, not node (adversary.go)
}

func (c *simConn) String() string {
	s := fmt.Sprintf("g%d", c.id)
	for i, e := range c.ends {
		s += fmt.Sprintf(" [%d] node %d inc %d open=%t", i, e.node, e.inc, e.open)
	}
	if c.reset {
		s += " reset"
	}
	if c.silent {
		s += " silent"
	}
	return s
}

// latency draws one one-way delay.
func (w *World) latency() time.Duration {
	return w.k.Latency + between(w.c, 0, w.k.Jitter) + 1 // never zero: a reply comes strictly after its cause
}

// dial carries out the connection layer's Dial: the SYN travels to the
// listener at addr.
func (w *World) dial(n *process, id fsm.DialID, addr string) {
	to, known := w.byAddr[addr]
	lat := w.latency()
	if known && w.phase == PhaseSafety {
		switch {
		case w.k.Faults&FaultDialTimeout != 0 && chance(w.c, w.k.DialTimeoutPM),
			w.cut[n.idx][to] > w.now:
			w.hangUntil = max(w.hangUntil, w.now+w.handshakeTimeout())
			return // never answers: the fsm's own deadline must end it
		case w.k.Faults&FaultDialFail != 0 && chance(w.c, w.k.DialFailPM),
			w.noDial[n.idx][to] > w.now:
			known = false
		}
	}
	if !known {
		to = -1
	}
	w.schedule(event{at: w.now + lat, kind: evDialResult, ctl: true, node: n.idx, inc: n.inc, dial: id, side: to})
}

func (w *World) handshakeTimeout() time.Duration {
	if d := w.k.HandshakeTimeout; d > 0 {
		return d
	}
	return fsm.DefaultHandshakeTimeout
}

// dialArrives runs when the SYN reaches its destination: the listener
// accepts, and its connection layer hears Incoming (it reads the dialer's
// first bytes before it writes anything), or the dial fails.
func (w *World) dialArrives(e *event) {
	n := w.nodes[e.node]
	if !n.alive || n.inc != e.inc {
		return // the dialing process is gone
	}
	to := e.side
	if to < 0 || !w.nodes[to].alive {
		n.link.DialFailed(w.now, e.dial, errRefused)
		return
	}
	acc := w.nodes[to]
	w.nextG++
	w.stats.Conns++
	w.countPair(n.idx, acc.idx)
	c := &simConn{id: w.nextG}
	c.ends[0] = simEnd{node: n.idx, inc: n.inc, open: true}
	c.ends[1] = simEnd{node: acc.idx, inc: acc.inc, open: true, known: true}
	w.conns = append(w.conns, c)
	n.conns[localID(c.id, 0)] = c
	acc.conns[localID(c.id, 1)] = c
	// The dialer learns of the connection one latency later, with the
	// SYN-ACK, and writes its preamble.
	dialedAt := w.now + w.latency()
	c.ends[1].lastSent = dialedAt
	w.schedule(event{at: dialedAt, kind: evDialed, ctl: true, node: n.idx, inc: n.inc, dial: e.dial, conn: c})
	acc.link.IncomingAuth(w.now, localID(c.id, 1), n.id, w.authAs(n)) // the dialer's simulated host is its id
}

// dialedArrives tells the dialer its connection is up.
func (w *World) dialedArrives(e *event) {
	n, c := w.nodes[e.node], e.conn
	if !n.alive || n.inc != e.inc {
		return // the dialer crashed meanwhile; crash closed its end
	}
	if !c.ends[0].open {
		// Reset before the SYN-ACK arrived (the listener crashed): the dial fails.
		n.link.DialFailed(w.now, e.dial, errReset)
		return
	}
	c.ends[0].known = true
	n.link.DialedAuth(w.now, e.dial, localID(c.id, 0), w.authAs(w.nodes[c.ends[1].node]))
}

// sendBytes puts what side wrote on c onto the stream toward the other end.
func (w *World) sendBytes(c *simConn, side int) {
	e := &c.ends[side]
	if len(e.wbuf) == 0 {
		return
	}
	data, ctl := e.wbuf, e.wctl
	e.wbuf, e.wctl = nil, false
	if w.k.SockBuf > 0 {
		w.queueOut(c, side, data, ctl) // through the output buffer and a bounded socket
		return
	}
	if c.reset || c.silent {
		return
	}
	e.segments++
	other := 1 - side
	at := w.arrival(c, side)
	w.schedule(event{at: at, kind: evDeliver, ctl: ctl, conn: c, side: other, ep: c.ep, data: data})
	if w.opt.AdapterBug == RepeatSegments && e.segments > 1 && bytes.Contains(data, []byte{byte(wire.Data)}) {
		w.schedule(event{at: w.arrival(c, side), kind: evDeliver, ctl: ctl, conn: c, side: other, ep: c.ep, data: data})
	}
}

// arrival returns when something sent now from side of c reaches the other
// end: after the latency, after everything sent before it, and after any
// partition between the two nodes heals.
func (w *World) arrival(c *simConn, side int) time.Duration {
	e := &c.ends[side]
	at := max(w.now+w.connLatency(c), e.lastSent)
	at = max(at, w.cut[e.node][c.ends[1-side].node])
	e.lastSent = at
	return at
}

// deliver runs when bytes reach an end: they wait in its receive buffer for
// the reader, which reads them into the connection layer's buffer as
// netio's reader does (sockets.go): at once, unless it waits for room in the
// delivery queue.
func (w *World) deliver(ev *event) {
	c := ev.conn
	e := &c.ends[ev.side]
	if ev.ep != c.ep {
		return // lost in a reset
	}
	if e.adv != nil {
		return // an adversary reads nothing: what it replays it saw elsewhere
	}
	if !e.open {
		w.discarded(c, ev.side, len(ev.data)) // a real stack would drop them too (netio's reader discards them)
		return
	}
	e.rq = append(e.rq, ev.data)
	w.readEnd(c, ev.side)
}

// closeEnd closes side of c because its connection layer closed it: the FIN
// follows the bytes already sent (with bounded buffers, once the writer has
// drained the output buffer: sockets.go).
func (w *World) closeEnd(c *simConn, side int) {
	e := &c.ends[side]
	if !e.open {
		return
	}
	e.open = false
	delete(w.nodes[e.node].conns, localID(c.id, side))
	w.wakeWaiters(e)
	if w.k.SockBuf > 0 && (len(e.out) > 0 || len(e.wcur) > 0) {
		e.flushing = true
		w.schedule(event{at: w.now + w.linger(), kind: evLinger, conn: c, side: side, ep: c.ep})
		return
	}
	w.sendFIN(c, side)
}

// sendFIN sends side's FIN to the other end.
func (w *World) sendFIN(c *simConn, side int) {
	if c.reset || c.silent || !c.ends[1-side].open {
		return
	}
	w.schedule(event{at: w.arrival(c, side), kind: evFIN, ctl: true, conn: c, side: 1 - side, ep: c.ep})
}

// closeArrives runs when a FIN or a reset reaches an end still open: its
// fsm hears ConnClosed. A FIN comes after the bytes before it: while the
// reader has not read them (it waits for room in the delivery queue), the
// EOF waits too; a reset discards them.
func (w *World) closeArrives(ev *event) {
	c := ev.conn
	e := &c.ends[ev.side]
	if !e.open || (ev.kind == evFIN && ev.ep != c.ep) {
		return
	}
	if e.adv != nil {
		e.open = false
		return
	}
	err := errEOF
	if ev.kind == evReset {
		err = errReset
		e.rq, e.fin = nil, nil
	} else if len(e.rq) > 0 || w.stalled(w.nodes[e.node]) {
		e.fin = err // read after the bytes before it, by a reader that runs (stall.go)
		return
	}
	w.closeNow(c, ev.side, err)
}

// closeNow closes side of c, which its layer still holds, because the peer
// closed or reset it.
func (w *World) closeNow(c *simConn, side int, err error) {
	e := &c.ends[side]
	e.open = false
	n := w.nodes[e.node]
	local := localID(c.id, side)
	delete(n.conns, local)
	w.wakeWaiters(e)
	if !e.known {
		return // the fsm never heard of it; dialedArrives reports the failed dial
	}
	n.link.Closed(w.now, local, err)
}

// resetConn resets c: bytes in flight are lost and every open end hears
// ConnClosed after one latency (the RST travels too). An end whose node
// crashed is closed at once.
func (w *World) resetConn(c *simConn) {
	if c.reset {
		return
	}
	w.stats.Resets++
	c.reset = true
	c.ep++
	for s := range c.ends {
		e := &c.ends[s]
		if !e.open {
			continue
		}
		if !w.nodes[e.node].alive || w.nodes[e.node].inc != e.inc {
			e.open = false
			continue
		}
		w.schedule(event{at: w.now + w.latency(), kind: evReset, ctl: true, conn: c, side: s})
	}
}
