package netio

import (
	"errors"
	"log/slog"
	"math"

	"github.com/masterless-go/masterless/fsm"
	"github.com/masterless-go/masterless/wire"
)

// The core: the connection layer (package link) and what it asks of the
// sockets. Every function here runs with n.mu held and never blocks.

// transport is the Runtime as the connection layer sees it (link.Transport).
type transport Runtime

// Write appends head and body to connection id's output buffer.
func (t *transport) Write(id fsm.ConnID, head, body []byte) {
	if c := (*Runtime)(t).writing(id); c != nil {
		c.write(head, body)
	}
}

// writing returns connection id, nil once it left conns (a stream writes
// on one connection over and over, a SendMany on the same few: package
// recent). forgetConn empties the slot of a connection it forgets.
func (n *Runtime) writing(id fsm.ConnID) *conn {
	if c := n.recent.Get(id); c != nil {
		return c
	}
	c := n.conns[id]
	if c != nil {
		n.recent.Put(id, c)
	}
	return c
}

// forgetConn takes c out of the connections the layer writes on (under mu).
func (n *Runtime) forgetConn(c *conn) {
	delete(n.conns, c.id)
	if c.gated {
		c.gated = false
		n.gated--
	}
	n.recent.Forget(c.id)
}

// Close carries out the layer's close: flush what was written, half-close,
// and let the connection's goroutines finish.
func (t *transport) Close(id fsm.ConnID, why error) {
	n := (*Runtime)(t)
	c := n.conns[id]
	if c == nil {
		return
	}
	n.forgetConn(c)
	n.logPeer(closeLevel(why), "closing connection", why, "conn", uint64(id), "remote", c.remote)
	c.wmu.Lock()
	wrote := c.wrote
	c.wmu.Unlock()
	if !wrote || (!n.closed && n.lingering >= n.lingerCap) {
		// Nothing of ours is in flight (a connection closed before its
		// protocol was known), or too many closes linger already (a flood
		// whose dialers never close): close at once, and if the peer's
		// unread bytes make that a reset, no BYE of ours is lost to it
		// that mattered more than bounding the sockets a flood holds.
		c.abort()
		return
	}
	c.lingers = true
	n.lingering++
	c.closeGraceful()
}

// maxLingering bounds the connections lingering after a graceful close
// (at most min(handshake timeout, 2 s) each, for our BYE to drain and the
// peer's FIN to come): past it a close is immediate, so that a flood of
// dialers that never close cannot hold more sockets than this beside the
// handshake slots.
const maxLingering = 1024

// Dial starts a goroutine that dials addr and reports back.
func (t *transport) Dial(id fsm.DialID, addr string) {
	n := (*Runtime)(t)
	n.wg.Add(1)
	go n.dial(id, addr)
}

// Notify turns the state machine's news for the user into events for the
// dispatcher, and completes Connect calls. An event other than messages
// that no handler takes is not queued: the dispatcher would wake only to
// find nothing to call (two wake-ups of the four in a churn cycle, Connect,
// one message, Disconnect, with no Connect handler). Messages always are,
// so that what the user takes is counted the same way with a handler or
// without.
func (t *transport) Notify(a *fsm.Action) {
	n := (*Runtime)(t)
	switch a.Kind {
	case fsm.ActConnected:
		if n.logging(slog.LevelDebug) {
			n.log.Debug("peer connected", "peer", a.Peer, "incarnation", a.Incarnation, "info", a.Addr)
		}
		if n.disp.h.Connected != nil {
			n.events = append(n.events, event{kind: evConnected, peer: a.Peer, more: &eventMore{info: a.Addr}})
		}
	case fsm.ActDisconnected:
		if n.logging(slog.LevelDebug) {
			n.log.Debug("peer disconnected", "peer", a.Peer, "reason", errText(a.Err))
		}
		if n.disp.h.Disconnected != nil {
			n.events = append(n.events, event{kind: evDisconnected, peer: a.Peer, more: &eventMore{err: a.Err}})
		}
	case fsm.ActMessage:
		n.events = append(n.events, event{kind: evMessage, peer: a.Peer, inc: a.Incarnation, payload: n.own(a.Frame.Payload)})
	case fsm.ActMessages:
		// One copy of the frames for all their messages, which travel as
		// one event (dispatch.go); the dispatcher hands each payload over
		// capped at its own end (wire.NextData, or the slice of a run of
		// one length, event.size), so a handler's append cannot write over
		// the next.
		if a.Messages > 0 { // Turns counts every message item as one message at least
			ev := event{kind: evMessages, n: uint32(a.Messages), peer: a.Peer, inc: a.Incarnation, payload: n.own(a.Frame.Payload)}
			if a.FrameSize <= math.MaxUint16 {
				ev.size = uint16(a.FrameSize)
			}
			n.events = append(n.events, ev)
		}
	case fsm.ActLost:
		// Through the limiter, as every line a peer can cause: 500 made-up
		// peers that each left one answer unacknowledged logged 500 lines
		// in under a second (a black-box audit).
		if n.logging(slog.LevelInfo) {
			n.logPeer(slog.LevelInfo, "messages lost", a.Err, "peer", a.Peer, "count", len(a.Lost))
		}
		if n.disp.h.Lost != nil {
			n.events = append(n.events, event{kind: evLost, peer: a.Peer, more: &eventMore{lost: a.Lost, err: a.Err}})
		}
	case fsm.ActMemberUp, fsm.ActMemberLeft, fsm.ActMemberGone:
		if n.logging(slog.LevelDebug) {
			n.log.Debug("member "+a.Kind.String()[len("member-"):], "peer", a.Peer, "incarnation", a.Incarnation, "addr", a.Addr)
		}
		if n.disp.h.Member != nil {
			n.events = append(n.events, event{kind: evMember, change: a.Kind, peer: a.Peer, inc: a.Incarnation, more: &eventMore{info: a.Addr, err: a.Err}})
		}
	case fsm.ActLease:
		n.leased(a)
	case fsm.ActRoom:
		close(n.room) // wakes every SendContext waiting for room
		n.room = make(chan struct{})
	case fsm.ActConnectDone:
		if ch := n.reqs[a.Req]; ch != nil {
			delete(n.reqs, a.Req)
			ch <- connectResult{peer: a.Peer, err: a.Err}
		}
	}
}

// consumed steps what the dispatcher reports the user took off its queue,
// so that the peers get credit for it. Called by the dispatcher goroutine.
func (n *Runtime) consumed(used []consumption) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return
	}
	now := n.now()
	for _, u := range used {
		_ = n.link.Step(now, fsm.Consumed{Peer: u.peer, Incarnation: u.inc, Messages: u.msgs, Bytes: u.bytes})
	}
	n.settle()
}

// slabMax bounds the slab that the payloads of one read share.
const slabMax = 64 << 10

// own copies a payload for the handler, who owns it: into the current read's
// slab (one allocation for the messages of a read), or on its own.
func (n *Runtime) own(p []byte) []byte {
	if cap(n.slab)-len(n.slab) < len(p) {
		if n.slabHint <= len(p) {
			return append([]byte(nil), p...)
		}
		n.slab = make([]byte, 0, min(n.slabHint, slabMax))
		n.slabHint = 0
		if cap(n.slab) < len(p) {
			return append([]byte(nil), p...)
		}
	}
	start := len(n.slab)
	n.slab = append(n.slab, p...)
	return n.slab[start:len(n.slab):len(n.slab)]
}

// settle ends a locked section's work: it hands the events collected by
// Notify to the dispatcher in one go (in the state machine's order, since
// all of it happens under the core lock), forgets the connections found over
// their send bound (only Send and SendMany wait on them, see settleAndWait)
// and re-arms the timer.
func (n *Runtime) settle() {
	if len(n.revoked) > 0 {
		n.admitRevoked()
	}
	if len(n.events) > 0 {
		n.disp.push(n.events)
		clear(n.events)
		n.events = n.events[:0]
	}
	n.slab, n.slabHint = nil, 0
	if len(n.full) > 0 {
		clear(n.full)
		n.full = n.full[:0]
	}
	n.rearm()
}

// eventsKeep is the most events whose room the list Notify fills keeps
// past a timer tick (64 bytes each).
const eventsKeep = 256

// trimEvents drops the list Notify fills once a read has grown it past
// eventsKeep: one read of small messages can hand the dispatcher thousands
// (a 64 KiB read of 8-byte messages, 4,000 events, 256 KiB), and the list
// kept that room for good (a black-box audit found it as the heap an idle
// node kept after a burst). The timer calls it at each tick, so a stream
// of large reads grows it again at most once a tick.
func (n *Runtime) trimEvents() {
	if cap(n.events) > eventsKeep {
		n.events = nil
	}
}

// rearm wakes the timer goroutine when the fsm's next deadline moved earlier
// than the one it waits for.
func (n *Runtime) rearm() {
	if d, ok := n.fsm.NextDeadline(); ok && d < n.armed {
		n.armed = d
		select {
		case n.kick <- struct{}{}:
		default:
		}
	}
}

// closeLevel picks how loudly a close is logged: a peer's protocol violation
// is a warning, a failure worth an operator's look is info, and the closes
// the protocol makes in normal operation (duplicates, shutdown) are debug.
func closeLevel(why error) slog.Level {
	switch {
	case errors.Is(why, fsm.ErrProtocol), errors.Is(why, wire.ErrBadMagic),
		errors.Is(why, wire.ErrVersionMismatch), errors.Is(why, wire.ErrFrameTooLarge),
		errors.Is(why, wire.ErrMalformedFrame),
		errors.Is(why, fsm.ErrUnauthenticated), errors.Is(why, fsm.ErrIDMismatch):
		return slog.LevelWarn
	case errors.Is(why, fsm.ErrHandshakeTimeout), errors.Is(why, fsm.ErrPeerTimeout),
		errors.Is(why, fsm.ErrTooManyHandshakes), errors.Is(why, fsm.ErrEvicted), errors.Is(why, fsm.ErrSelfConnect),
		errors.Is(why, fsm.ErrDuplicateID), errors.Is(why, fsm.ErrStaleIncarnation):
		return slog.LevelInfo
	}
	return slog.LevelDebug
}

// errText is the reason logged for err: the error itself (handlers render
// its text; a handler can still test it with errors.Is), or "requested" for
// a close this node asked for.
func errText(err error) any {
	if err == nil {
		return "requested"
	}
	return err
}
