package sim

import (
	"errors"
	"time"
)

// Bounded socket buffers and the adapter's blocking semantics, modelled on
// netio (conn.go, dispatch.go, api.go), when Knobs.SockBuf is set:
//
//   - What the connection layer writes goes to the end's output buffer
//     (netio's conn.out). A writer takes the whole buffer as one Write, which
//     the kernel accepts as far as the window allows: SockBuf bytes per
//     direction, taken by the kernel and not yet read by the peer's reader
//     (its send and receive buffers together). Space comes back one latency
//     after the peer's reader reads (the window update travels back).
//   - A Write that has not completed after the peer timeout fails the
//     connection (netio's write deadline); a closing end drains its buffer
//     for at most the linger time, then is reset.
//   - The reader reads whatever has arrived into the connection layer's
//     buffer and reports it (the layer parses and steps the fsm). After a
//     read on a connection that is not flow controlled (0.4.1, or the
//     MutationNoCredit negative control) it waits while the node's delivery
//     queue is over its bound (netio's waitRoom): bytes then stay in the
//     receive buffer, the window closes, and the peer's writer stops.
//   - A Send (from a callback or a producer) that leaves such a
//     connection's output buffer over SendBuffer waits until the writer
//     takes the buffer or the connection closes (netio's settleAndWait).
//     SendContext also waits for room in the fsm's queue (app.go).
//
// With SockBuf zero, bytes go out as one segment per step and are read on
// arrival: unbounded buffers (half the random sweeps' seeds; the other half
// and every load run have bounded ones).

var (
	errWriteTimeout = errors.New("sim: write timed out: the peer reads nothing (i/o timeout)")
	errLinger       = errors.New("sim: linger expired with bytes unsent: reset")
)

// endRef names one end of a connection.
type endRef struct {
	c    *simConn
	side int
}

func (r endRef) end() *simEnd { return &r.c.ends[r.side] }

// waiter is a node's application or producer waiting on an end's output
// buffer; peer is the producer's peer, "" for the application.
type waiter struct {
	node int
	inc  uint64
	peer string
}

// queueOut appends what side wrote during a step to its output buffer, and
// lets the writer go on.
func (w *World) queueOut(c *simConn, side int, data []byte, ctl bool) {
	e := &c.ends[side]
	if c.reset {
		return
	}
	if len(e.out) == 0 && cap(data) <= 2*len(data) {
		e.out = data
	} else {
		e.out = append(e.out, data...)
	}
	e.written += uint64(len(data))
	if ctl {
		e.ctlUpto = e.written
	}
	if len(e.out) > w.sendBuffer() {
		w.full = append(w.full, endRef{c, side}) // for a Send to wait on (settleAndWait)
	}
	w.pumpWriter(c, side)
}

// pumpWriter moves bytes from side's writer into the socket as far as the
// window allows, taking the next buffer when a Write completes.
func (w *World) pumpWriter(c *simConn, side int) {
	e := &c.ends[side]
	for !c.reset {
		if len(e.wcur) == 0 {
			if len(e.out) == 0 {
				if e.flushing {
					e.flushing = false
					w.sendFIN(c, side)
				}
				return
			}
			// The writer takes the whole buffer as its next Write, with a
			// deadline; whoever waited for the buffer to drain goes on.
			e.wcur, e.out = e.out, nil
			e.wseq++
			d := w.peerTimeout()
			if e.flushing {
				d = w.linger()
			}
			w.schedule(event{at: w.now + d, kind: evWriteDeadline, conn: c, side: side, ep: c.ep, wseq: e.wseq})
			w.wakeWaiters(e)
		}
		room := w.k.SockBuf - e.inPipe
		if room <= 0 {
			return
		}
		k := min(room, len(e.wcur))
		chunk := e.wcur[:k:k]
		e.wcur = e.wcur[k:]
		e.inPipe += k
		ctl := e.pushed < e.ctlUpto
		e.pushed += uint64(k)
		if c.silent {
			continue // taken by the kernel, never carried: the window never reopens
		}
		e.segments++
		w.schedule(event{at: w.arrival(c, side), kind: evDeliver, ctl: ctl, conn: c, side: 1 - side, ep: c.ep, data: chunk})
	}
}

// windowOpens runs when the window update for k bytes read by the other
// end reaches side: its writer may go on.
func (w *World) windowOpens(ev *event) {
	c := ev.conn
	if ev.ep != c.ep {
		return
	}
	c.ends[ev.side].inPipe -= ev.bytes
	w.pumpWriter(c, ev.side)
}

// read notes that side's reader took k bytes off its receive buffer: the
// window update goes back to the writer.
func (w *World) read(c *simConn, side, k int) {
	if w.k.SockBuf == 0 || k == 0 || c.reset || c.silent {
		return
	}
	from, to := c.ends[side].node, c.ends[1-side].node
	at := max(w.now+w.connLatency(c), w.cut[from][to]) // an adversary's connection draws from its own generator
	w.schedule(event{at: at, kind: evWindow, conn: c, side: 1 - side, ep: c.ep, bytes: k})
}

// discarded: k bytes reached side after its layer closed it; netio's reader
// reads and drops them (until the FIN or the linger deadline), which opens
// the window, unless the process is gone.
func (w *World) discarded(c *simConn, side, k int) {
	if n := w.nodes[c.ends[side].node]; n.alive && n.inc == c.ends[side].inc {
		w.read(c, side, k)
	}
}

// readEnd is side's reader: it reads what arrived into the connection
// layer's buffer, in as many reads as its free space asks for, unless it
// waits for room in the delivery queue or its node's readers stall
// (stall.go).
func (w *World) readEnd(c *simConn, side int) {
	e := &c.ends[side]
	n := w.nodes[e.node]
	if w.stalled(n) {
		return // readsResume reads it all, in order
	}
	local := localID(c.id, side)
	for len(e.rq) > 0 && e.open && !e.blocked && w.err == nil {
		buf := n.link.ReadBuffer(local)
		if buf == nil { // closed by its fsm: the rest is discarded
			for _, b := range e.rq {
				w.discarded(c, side, len(b))
			}
			e.rq = nil
			break
		}
		k := copy(buf, e.rq[0])
		if k == len(e.rq[0]) {
			e.rq[0] = nil
			e.rq = e.rq[1:]
		} else {
			e.rq[0] = e.rq[0][k:]
		}
		n.link.Received(w.now, local, k)
		w.read(c, side, k)
		if w.app(n) != nil && e.open && !n.link.FlowControlled(local) && n.app.overBound(w) {
			e.blocked = true // netio's waitRoom: until the queue is back to half its bound
			n.app.roomWait = append(n.app.roomWait, endRef{c, side})
		}
	}
	if !e.open && len(e.rq) > 0 {
		for _, b := range e.rq {
			w.discarded(c, side, len(b))
		}
		e.rq = nil
	}
	if e.open && len(e.rq) == 0 && e.fin != nil && !e.blocked {
		err := e.fin
		e.fin = nil
		w.closeNow(c, side, err) // the FIN comes after the bytes: EOF once they are read
	}
}

// writeDeadline runs when a Write's deadline passes: if it is still in
// progress, the connection fails (netio's writeLoop: fail, then abort).
func (w *World) writeDeadline(ev *event) {
	c := ev.conn
	e := &c.ends[ev.side]
	if ev.ep != c.ep || e.wseq != ev.wseq || len(e.wcur) == 0 {
		return
	}
	w.stats.WriteTimeouts++
	w.failEnd(c, ev.side, errWriteTimeout)
}

// lingerEnds runs when a closing end's linger time is over: bytes still
// unsent are given up and the connection is reset.
func (w *World) lingerEnds(ev *event) {
	c := ev.conn
	e := &c.ends[ev.side]
	if ev.ep != c.ep || !e.flushing {
		return
	}
	e.flushing = false
	w.stats.Lingers++
	w.failEnd(c, ev.side, errLinger)
}

// failEnd fails side of c from its own adapter: its layer hears Closed now
// (if it still held it) and the connection is reset (a silent one carries
// no reset either).
func (w *World) failEnd(c *simConn, side int, err error) {
	e := &c.ends[side]
	n := w.nodes[e.node]
	if e.open && e.adv != nil {
		e.open = false // an adversary's end: no layer to tell
	} else if e.open {
		e.open = false
		delete(n.conns, localID(c.id, side))
		w.wakeWaiters(e)
		if e.known {
			n.link.Closed(w.now, localID(c.id, side), err)
		}
	}
	if !c.silent {
		w.resetConn(c)
	}
}

// linger is how long a closing connection may take to drain (netio's
// conn.linger).
func (w *World) linger() time.Duration { return min(w.handshakeTimeout(), 2*time.Second) }

func (w *World) peerTimeout() time.Duration {
	if d := w.k.PeerTimeout; d > 0 {
		return d
	}
	return 5 * time.Second // fsm.DefaultPeerTimeout
}

// sendBuffer is netio's Config.SendBuffer.
func (w *World) sendBuffer() int {
	if w.k.SendBuffer > 0 {
		return w.k.SendBuffer
	}
	return DefaultSendBuffer
}

// overSendBuffer reports whether a Send must wait on r (settleAndWait): its
// output buffer is over the bound and its connection is not flow
// controlled.
func (w *World) overSendBuffer(n *process, r endRef) bool {
	e := r.end()
	return e.open && e.node == n.idx && len(e.out) > w.sendBuffer() && !n.link.FlowControlled(localID(r.c.id, r.side))
}

// wakeWaiters wakes everyone waiting on e's output buffer: they look again.
func (w *World) wakeWaiters(e *simEnd) {
	for _, wt := range e.waiters {
		w.schedule(event{at: w.now, kind: evWake, node: wt.node, inc: wt.inc, peer: wt.peer})
	}
	e.waiters = e.waiters[:0]
}
