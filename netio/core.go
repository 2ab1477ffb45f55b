package netio

import (
	"context"
	"errors"
	"log/slog"

	"github.com/masterless-go/masterless/fsm"
	"github.com/masterless-go/masterless/wire"
)

// The core: stepping the fsm and carrying out its actions. Every function
// here runs with n.mu held and never blocks.

// step feeds ev to the fsm and carries out the actions it returns. slab, when
// not nil, is where message payloads are copied to (see conn.readLoop).
func (n *Node) step(ev fsm.Event, slab *[]byte) error {
	err := n.fsm.Step(n.now(), ev)
	n.apply(slab)
	n.settle()
	n.dropFull()
	return err
}

// apply carries out the fsm's pending actions, in order.
func (n *Node) apply(slab *[]byte) {
	acts := n.fsm.Ready()
	for i := range acts {
		a := &acts[i]
		switch a.Kind {
		case fsm.ActWrite:
			if c := n.conns[a.Conn]; c != nil {
				c.writeFrame(&a.Frame)
			}
		case fsm.ActClose:
			n.closeConn(a.Conn, a.Err)
		case fsm.ActDial:
			n.wg.Add(1)
			go n.dial(a.Dial, a.Addr, a.Legacy)
		case fsm.ActConnected:
			n.log.Debug("peer connected", "peer", a.Peer, "incarnation", a.Incarnation, "info", a.Addr)
			n.events = append(n.events, event{kind: evConnected, peer: a.Peer, info: a.Addr})
		case fsm.ActDisconnected:
			n.log.Debug("peer disconnected", "peer", a.Peer, "reason", errText(a.Err))
			n.events = append(n.events, event{kind: evDisconnected, peer: a.Peer, err: a.Err})
		case fsm.ActMessage:
			n.events = append(n.events, event{kind: evMessage, peer: a.Peer, payload: own(slab, a.Frame.Payload)})
		case fsm.ActConnectDone:
			if ch := n.reqs[a.Req]; ch != nil {
				delete(n.reqs, a.Req)
				ch <- connectResult{peer: a.Peer, err: a.Err}
			}
		}
	}
}

// own copies p into the caller's slab (one allocation per read) or, without
// one, into a fresh slice: the handler owns what it is given.
func own(slab *[]byte, p []byte) []byte {
	if slab == nil || cap(*slab)-len(*slab) < len(p) {
		return append([]byte(nil), p...)
	}
	s := *slab
	start := len(s)
	s = append(s, p...)
	*slab = s
	return s[start:len(s):len(s)]
}

// settle ends a locked section's work: it hands the events collected by
// apply to the dispatcher in one go (in the fsm's order, since all of it
// happens under the core lock) and re-arms the timer.
func (n *Node) settle() {
	if len(n.events) > 0 {
		n.disp.push(n.events)
		clear(n.events)
		n.events = n.events[:0]
	}
	n.rearm()
}

// dropFull forgets the connections found over their send bound by a step
// whose caller does not wait on them (only Send and SendMany do).
func (n *Node) dropFull() {
	if len(n.full) > 0 {
		clear(n.full)
		n.full = n.full[:0]
	}
}

// rearm wakes the timer goroutine when the fsm's next deadline moved earlier
// than the one it waits for.
func (n *Node) rearm() {
	if d, ok := n.fsm.NextDeadline(); ok && d < n.armed {
		n.armed = d
		select {
		case n.kick <- struct{}{}:
		default:
		}
	}
}

// closeConn carries out ActClose: flush what was written, half-close, and let
// the connection's goroutines finish. No ConnClosed follows for it.
func (n *Node) closeConn(id fsm.ConnID, why error) {
	c := n.conns[id]
	if c == nil {
		return
	}
	delete(n.conns, id)
	level := closeLevel(why)
	if n.log.Enabled(context.Background(), level) {
		n.log.Log(context.Background(), level, "closing connection", "conn", uint64(id), "remote", c.remote, "reason", errText(why))
	}
	c.closeGraceful()
}

// closeLevel picks how loudly a close is logged: a peer's protocol violation
// is a warning, a failure worth an operator's look is info, and the closes
// the protocol makes in normal operation (duplicates, shutdown) are debug.
func closeLevel(why error) slog.Level {
	switch {
	case errors.Is(why, fsm.ErrProtocol), errors.Is(why, wire.ErrBadMagic),
		errors.Is(why, wire.ErrVersionMismatch), errors.Is(why, wire.ErrFrameTooLarge),
		errors.Is(why, wire.ErrMalformedFrame):
		return slog.LevelWarn
	case errors.Is(why, fsm.ErrHandshakeTimeout), errors.Is(why, fsm.ErrPeerTimeout),
		errors.Is(why, fsm.ErrTooManyHandshakes), errors.Is(why, fsm.ErrSelfConnect),
		errors.Is(why, fsm.ErrDuplicateID), errors.Is(why, fsm.ErrStaleIncarnation):
		return slog.LevelInfo
	}
	return slog.LevelDebug
}

func errText(err error) string {
	if err == nil {
		return "requested"
	}
	return err.Error()
}
