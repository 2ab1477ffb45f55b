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
// its fsm still holds it, what it sent but not yet flushed, and what it
// received but not yet parsed.
type simEnd struct {
	node     int
	inc      uint64
	open     bool
	known    bool       // the fsm was told of it (Accepted or Dialed)
	codec    wire.Codec // V1, or a *wire.Legacy of this end's own (it has state)
	wbuf     []byte
	wctl     bool          // wbuf holds something other than PINGs
	lastSent time.Duration // arrival time of the last segment sent from here (FIFO)
	rbuf     []byte        // never compacted in place: delivered payloads alias it
	preamble bool          // the peer's preamble was checked
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

// dial carries out ActDial: the SYN travels to the listener at addr.
func (w *World) dial(n *simNode, id fsm.DialID, addr string, legacy bool) {
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
	w.schedule(event{at: w.now + lat, kind: evDialResult, ctl: true, node: n.idx, inc: n.inc, dial: id, side: to, legacy: legacy})
}

func (w *World) handshakeTimeout() time.Duration {
	if d := w.k.HandshakeTimeout; d > 0 {
		return d
	}
	return fsm.DefaultHandshakeTimeout
}

// dialArrives runs when the SYN reaches its destination: the listener
// accepts (both ends learn of the connection) or the dial fails.
func (w *World) dialArrives(e *event) {
	n := w.nodes[e.node]
	if !n.alive || n.inc != e.inc {
		return // the dialing process is gone
	}
	to := e.side
	if to < 0 || !w.nodes[to].alive {
		w.step(n, fsm.DialFailed{Dial: e.dial, Err: errRefused}, 0)
		return
	}
	acc := w.nodes[to]
	w.nextG++
	w.stats.Conns++
	c := &simConn{id: w.nextG}
	c.ends[0] = simEnd{node: n.idx, inc: n.inc, open: true, codec: wire.V1{}}
	c.ends[1] = simEnd{node: acc.idx, inc: acc.inc, open: true, codec: wire.V1{}}
	if e.legacy { // the dialer speaks masterless 0.4.1 on it
		c.ends[0].codec, c.ends[1].codec = &wire.Legacy{}, &wire.Legacy{}
		c.ends[0].preamble, c.ends[1].preamble = true, true // 0.4.1 has none
	}
	w.conns = append(w.conns, c)
	n.conns[localID(c.id, 0)] = c
	acc.conns[localID(c.id, 1)] = c
	// The dialer learns of the connection one latency later, with the
	// SYN-ACK, and writes its preamble. The listener, like netio's, reads the
	// dialer's first bytes to tell v1 from 0.4.1 before it writes or steps
	// Accepted (see deliver); it gives up after the handshake timeout.
	dialedAt := w.now + w.latency()
	c.ends[1].lastSent = dialedAt
	w.schedule(event{at: dialedAt, kind: evDialed, ctl: true, node: n.idx, inc: n.inc, dial: e.dial, conn: c})
	w.schedule(event{at: w.now + w.handshakeTimeout(), kind: evDetectTimeout, conn: c, side: 1})
}

// detectTimeout closes an accepted connection whose dialer sent nothing in
// time; its fsm never heard of it.
func (w *World) detectTimeout(e *event) {
	c := e.conn
	if end := &c.ends[e.side]; end.open && !end.known {
		w.closeEnd(c, e.side, false)
	}
}

// detect runs on the first bytes that reach an accepted end: once they tell
// the protocol, the listener registers the connection, writes its preamble
// and steps Accepted. It reports whether the fsm now knows the end.
func (w *World) detect(c *simConn, side int) bool {
	e := &c.ends[side]
	legacy, decided := wire.DetectLegacy(e.rbuf)
	if !decided {
		return false
	}
	if _, isLegacy := e.codec.(*wire.Legacy); legacy != isLegacy {
		w.fail(fmt.Errorf("adapter: g%d: the listener took a %v dialer for legacy=%t", c.id, e.codec.Name(), legacy))
		return false
	}
	e.known = true
	if !legacy {
		w.writePreamble(c, side)
	}
	w.step(w.nodes[e.node], fsm.Accepted{Conn: localID(c.id, side), Legacy: legacy}, c.id)
	return e.open
}

// dialedArrives tells the dialer its connection is up.
func (w *World) dialedArrives(e *event) {
	n, c := w.nodes[e.node], e.conn
	if !n.alive || n.inc != e.inc {
		return // the dialer crashed meanwhile; crash closed its end
	}
	if !c.ends[0].open {
		// Reset before the SYN-ACK arrived (the listener crashed): the dial fails.
		w.step(n, fsm.DialFailed{Dial: e.dial, Err: errReset}, 0)
		return
	}
	c.ends[0].known = true
	w.writePreamble(c, 0)
	w.step(n, fsm.Dialed{Dial: e.dial, Conn: localID(c.id, 0)}, c.id)
}

func (w *World) writePreamble(c *simConn, side int) {
	c.ends[side].wbuf = c.ends[side].codec.AppendPreamble(c.ends[side].wbuf[:0])
	c.ends[side].wctl = true
	w.pending = append(w.pending, pendingEnd{c, side})
}

// sendBytes puts what side wrote on c onto the stream toward the other end.
func (w *World) sendBytes(c *simConn, side int) {
	e := &c.ends[side]
	if len(e.wbuf) == 0 {
		return
	}
	data, ctl := e.wbuf, e.wctl
	e.wbuf, e.wctl = nil, false
	if c.reset || c.silent {
		return
	}
	other := 1 - side
	at := w.arrival(c, side)
	w.schedule(event{at: at, kind: evDeliver, ctl: ctl, conn: c, side: other, ep: c.ep, data: data})
	if w.opt.AdapterBug == RepeatSegments && e.preamble && bytes.Contains(data, []byte{byte(wire.Data)}) {
		w.schedule(event{at: w.arrival(c, side), kind: evDeliver, ctl: ctl, conn: c, side: other, ep: c.ep, data: data})
	}
}

// arrival returns when something sent now from side of c reaches the other
// end: after the latency, after everything sent before it, and after any
// partition between the two nodes heals.
func (w *World) arrival(c *simConn, side int) time.Duration {
	e := &c.ends[side]
	at := max(w.now+w.latency(), e.lastSent)
	at = max(at, w.cut[e.node][c.ends[1-side].node])
	e.lastSent = at
	return at
}

// deliver runs when bytes reach an end: check the preamble, parse frames,
// feed them to the fsm one by one.
func (w *World) deliver(ev *event) {
	c := ev.conn
	e := &c.ends[ev.side]
	if ev.ep != c.ep || !e.open {
		return // lost in a reset, or the end is closed: a real stack would drop them too
	}
	n := w.nodes[e.node]
	side := ev.side
	local := localID(c.id, side)
	if len(e.rbuf) == 0 {
		e.rbuf = ev.data // a segment is never written again once sent: parse it in place
	} else {
		e.rbuf = append(e.rbuf, ev.data...)
	}
	if !e.known && (side == 0 || !w.detect(c, side)) {
		return
	}
	if !e.preamble {
		k, err := e.codec.ParsePreamble(e.rbuf)
		if err != nil {
			w.step(n, fsm.Malformed{Conn: local, Err: err}, c.id)
			return
		}
		if k == 0 {
			return
		}
		e.rbuf, e.preamble = e.rbuf[k:], true
	}
	for e.open && len(e.rbuf) > 0 && w.err == nil {
		f, k, err := e.codec.ParseFrame(e.rbuf)
		if err != nil {
			w.step(n, fsm.Malformed{Conn: local, Err: err}, c.id)
			return
		}
		if k == 0 {
			break
		}
		e.rbuf = e.rbuf[k:]
		w.stats.Frames[min(int(f.Type), len(w.stats.Frames)-1)]++
		if f.Type == wire.Bye {
			w.stats.Byes[min(int(f.Code), len(w.stats.Byes)-1)]++
		}
		w.step(n, fsm.FrameReceived{Conn: local, Frame: f}, c.id)
	}
	if len(e.rbuf) == 0 {
		e.rbuf = nil
	}
}

// closeEnd closes side of c because its own fsm asked (ActClose): the FIN
// follows the bytes already sent.
func (w *World) closeEnd(c *simConn, side int, _ bool) {
	e := &c.ends[side]
	if !e.open {
		return
	}
	e.open, e.rbuf = false, nil
	delete(w.nodes[e.node].conns, localID(c.id, side))
	if c.reset || c.silent || !c.ends[1-side].open {
		return
	}
	w.schedule(event{at: w.arrival(c, side), kind: evFIN, ctl: true, conn: c, side: 1 - side, ep: c.ep})
}

// closeArrives runs when a FIN or a reset reaches an end still open: its
// fsm hears ConnClosed.
func (w *World) closeArrives(ev *event) {
	c := ev.conn
	e := &c.ends[ev.side]
	if !e.open || (ev.kind == evFIN && ev.ep != c.ep) {
		return
	}
	e.open, e.rbuf = false, nil
	n := w.nodes[e.node]
	local := localID(c.id, ev.side)
	delete(n.conns, local)
	if !e.known {
		return // the fsm never heard of it; dialedArrives reports the failed dial
	}
	err := errEOF
	if ev.kind == evReset {
		err = errReset
	}
	w.step(n, fsm.ConnClosed{Conn: local, Err: err}, c.id)
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
