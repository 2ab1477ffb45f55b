//go:build masterless_trace

package fsm

import (
	"cmp"
	"slices"
	"time"

	"github.com/masterless-go/masterless/wire"
)

// The trace points of spec/TRACE.md (trace.go), compiled in with the build
// tag masterless_trace. One function per event kind reports what its step
// did, so that a change to an event touches one place.

const traceCompiled = true

// tracer is a Node's trace state: the callback, what the last record showed
// (a step that changes none of it writes nothing) and what the step in
// progress found before it ran.
type tracer struct {
	fn        Tracer
	lastConns []TraceConn
	lastPeers []TracePeer // only peers kept or with a session: the others show nothing
	emitted   int         // records emitted by the step in progress
	held      bool        // the step's connection was open, and the model's, before the step
	dialer    bool        // and this node dialed it
}

func (t *tracer) on() bool { return t.fn != nil }

// SetTracer makes the node report every step to t (nil: stop), in the
// records described at TraceRecord, and reports true: this build has the
// trace points.
func (n *Node) SetTracer(t Tracer) bool {
	n.trace.fn = t
	return true
}

// tracedStep is Step with the trace points: each event kind's function
// below reports the step once it ran.
func (n *Node) tracedStep(now time.Duration, ev Event) error {
	t := &n.trace
	t.emitted, t.held, t.dialer = 0, false, false
	if id := eventConn(ev); id != 0 {
		// A connection still in detect is not the model's yet (traceListed):
		// its end is no step of the model's.
		if c := n.conns[id]; c != nil && traceListed(c) {
			t.held, t.dialer = true, c.dial != nil
		}
	}
	err := n.step(now, ev)
	switch e := ev.(type) {
	case Incoming:
		// The model meets an accepted connection once its protocol is
		// known (Accepted), unless the node refused it at once.
		if n.conns[e.Conn] == nil {
			n.traceRefused("accept", e.Conn, false)
		}
	case Accepted:
		n.traceAccepted(e)
	case Dialed:
		n.traceDialed(e)
	case DialFailed:
		n.traceEmit(TraceRecord{Kind: "dial-failed"})
	case FrameReceived:
		n.traceFrame(e)
	case DataReceived:
		// DATA changes nothing the model tracks unless it closes the
		// connection, which only the run's last frame taken can do: one
		// record, as for that frame alone.
		n.traceFrame(FrameReceived{Conn: e.Conn, Frame: wire.Frame{Type: wire.Data}})
	case ConnClosed:
		n.traceClosed(e.Conn, false, e.Err)
	case Malformed:
		n.traceClosed(e.Conn, true, e.Err)
	case Tick:
		n.traceIfChanged(TraceRecord{Kind: "tick"}) // after the per-close records of traceTimeout
	case Connect:
		n.traceConnect(e)
	case SetKeep:
		n.traceIfChanged(TraceRecord{Kind: "keep", Peer: e.Peer, Keep: e.Keep})
	case Disconnect:
		n.traceIfChanged(TraceRecord{Kind: "disconnect", Peer: e.Peer})
	case Shutdown:
		n.traceIfChanged(TraceRecord{Kind: "shutdown"})
	default: // Listening, Send, CancelConnect: nothing the trace shows changes
		n.traceIfChanged(TraceRecord{Kind: "dial-failed"})
	}
	return err
}

// eventConn returns the connection an event is about, 0 if none.
func eventConn(ev Event) ConnID {
	switch e := ev.(type) {
	case FrameReceived:
		return e.Conn
	case DataReceived:
		return e.Conn
	case ConnClosed:
		return e.Conn
	case Malformed:
		return e.Conn
	}
	return 0
}

// traceListed reports whether a record lists c: every connection the node
// has written its HELLO on, or could have (a 0.4.1 acceptor waits for the
// dialer's); one whose protocol is not known yet is not the model's.
func traceListed(c *conn) bool { return c.state != StateDetect }

// traceAccepted: "accept" (HELLO written); refused at once: opened, then closed.
func (n *Node) traceAccepted(e Accepted) {
	if n.conns[e.Conn] == nil {
		n.traceRefused("accept", e.Conn, false)
		return
	}
	n.traceEmit(TraceRecord{Kind: "accept", Conn: e.Conn})
}

// traceDialed: "dialed" (preamble and HELLO written); an abandoned dial:
// opened, then closed.
func (n *Node) traceDialed(e Dialed) {
	if n.conns[e.Conn] == nil {
		n.traceRefused("dialed", e.Conn, true)
		return
	}
	n.traceEmit(TraceRecord{Kind: "dialed", Conn: e.Conn, Dialer: true})
}

// traceRefused reports a connection refused as soon as it was reported: a
// record that shows it open in state hello, then a "tick" that closes it.
func (n *Node) traceRefused(kind string, id ConnID, dialer bool) {
	conns, peers := n.traceState()
	open := append(slices.Clone(conns), TraceConn{Conn: id, Dialer: dialer, State: StateHello})
	slices.SortFunc(open, func(a, b TraceConn) int { return cmp.Compare(a.Conn, b.Conn) })
	n.traceEmitState(TraceRecord{Kind: kind, Conn: id, Dialer: dialer}, open, peers)
	n.traceEmitState(TraceRecord{Kind: "tick", Conn: id, Dialer: dialer}, conns, peers)
}

// traceFrame: "frame" for a frame on a connection open before the step.
func (n *Node) traceFrame(e FrameReceived) {
	if !n.trace.held {
		return // closed by this node while the frame was in flight
	}
	r := TraceRecord{Kind: "frame", Conn: e.Conn, Dialer: n.trace.dialer, Frame: traceFrameOf(&e.Frame)}
	switch e.Frame.Type {
	case wire.Ping, wire.Data, wire.Ack, wire.Resume:
		// The stream frames (v2, stream.go) change nothing the model tracks.
		n.traceIfChanged(r)
		return
	}
	n.traceEmit(r)
}

func traceFrameOf(f *wire.Frame) TraceFrame {
	tf := TraceFrame{Type: f.Type.String()}
	switch f.Type {
	case wire.Hello:
		tf.ID, tf.Incarnation = f.ID, f.Incarnation
	case wire.Join:
		tf.Closed, tf.Keep = f.Closed, f.Keep
	case wire.Welcome:
		tf.Sess, tf.Keep = f.Sess, f.Keep
	case wire.Keep:
		tf.Keep = f.Keep
	case wire.Bye:
		tf.Code, tf.Sess = uint8(f.Code), f.Sess
	}
	return tf
}

// traceClosed: "closed" for a connection open before the step.
func (n *Node) traceClosed(id ConnID, reset bool, err error) {
	if n.trace.held {
		n.traceEmit(TraceRecord{Kind: "closed", Conn: id, Dialer: n.trace.dialer, Reset: reset, Err: err})
	}
}

// traceConnect: "connect", unless binding the request already reported a
// "keep" (traceKeepBound).
func (n *Node) traceConnect(e Connect) {
	if n.trace.emitted > 0 {
		return
	}
	r := TraceRecord{Kind: "connect"}
	for _, p := range n.sortedPeers() {
		if p.addr == e.Addr || p.info == e.Addr {
			r.Peer = p.id
			break
		}
	}
	n.traceEmit(r)
}

// traceKeepBound is the trace point of a Connect request bound to peer p,
// which the node kept (and told so on their session) just now: exactly a
// Keep(p, true), reported before the step goes on.
func (n *Node) traceKeepBound(p *peer) {
	if n.trace.on() {
		n.traceEmit(TraceRecord{Kind: "keep", Peer: p.id, Keep: true})
	}
}

// traceKeepSet is the trace point of the node itself setting whether it
// keeps p (connectGivesUp): exactly a Keep(p, keep) of its user.
func (n *Node) traceKeepSet(p *peer, keep bool) {
	if n.trace.on() {
		n.traceEmit(TraceRecord{Kind: "keep", Peer: p.id, Keep: keep})
	}
}

// traceTimeout is the trace point of a Tick closing c (handshake or peer
// timeout): one "tick" record per connection closed.
func (n *Node) traceTimeout(c *conn) {
	if n.trace.on() && traceListed(c) {
		n.traceEmit(TraceRecord{Kind: "tick", Conn: c.id, Dialer: c.dial != nil})
	}
}

// traceState returns what a record shows of the node now.
func (n *Node) traceState() ([]TraceConn, []TracePeer) {
	conns := make([]TraceConn, 0, len(n.conns))
	for _, c := range n.conns {
		if !traceListed(c) {
			continue
		}
		tc := TraceConn{Conn: c.id, Dialer: c.dial != nil, State: c.state, Sess: c.sess, Legacy: c.legacy()}
		if c.state != StateHello && c.peer != nil {
			tc.Peer, tc.PeerInc = c.peer.id, c.peerInc
		}
		conns = append(conns, tc)
	}
	slices.SortFunc(conns, func(a, b TraceConn) int { return cmp.Compare(a.Conn, b.Conn) })
	peers := make([]TracePeer, 0, len(n.peers))
	for _, p := range n.sortedPeers() {
		tp := TracePeer{Peer: p.id, Keep: p.kept}
		if p.session != nil {
			tp.SessionConn = p.session.id
		}
		peers = append(peers, tp)
	}
	return conns, peers
}

// shown drops the peers a record cannot tell from unknown ones.
func shown(peers []TracePeer) []TracePeer {
	return slices.DeleteFunc(slices.Clone(peers), func(p TracePeer) bool { return !p.Keep && p.SessionConn == 0 })
}

func (n *Node) traceEmit(r TraceRecord) {
	conns, peers := n.traceState()
	n.traceEmitState(r, conns, peers)
}

// traceIfChanged emits r if the state differs from what the last record showed.
func (n *Node) traceIfChanged(r TraceRecord) {
	conns, peers := n.traceState()
	if slices.Equal(conns, n.trace.lastConns) && slices.Equal(shown(peers), n.trace.lastPeers) {
		return
	}
	n.traceEmitState(r, conns, peers)
}

func (n *Node) traceEmitState(r TraceRecord, conns []TraceConn, peers []TracePeer) {
	t := &n.trace
	r.Incarnation, r.Conns, r.Peers = n.cfg.Incarnation, conns, peers
	t.fn(&r)
	t.lastConns, t.lastPeers = slices.Clone(conns), shown(peers)
	t.emitted++
}
