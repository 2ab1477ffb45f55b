package netio

import (
	"context"
	"fmt"
	"net"

	"github.com/masterless-go/masterless/fsm"
	"github.com/masterless-go/masterless/wire"
)

// Send queues payload for peer. It returns nil once the DATA frame is encoded
// into the session's output buffer (payload may be reused at once), or queued
// by the fsm while a kept peer reconnects; otherwise an error wrapping
// fsm.ErrUnknownPeer, fsm.ErrNotConnected, fsm.ErrQueueFull or fsm.ErrClosed.
//
// Backpressure: when the connection's output buffer holds more than
// Config.SendBuffer bytes, Send waits until the writer has drained it below
// the bound or the connection closes. A peer that reads nothing makes the
// write fail after the peer timeout, which closes the connection, so Send
// never waits much longer than the peer timeout.
func (n *Node) Send(peer string, payload []byte) error {
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return fsm.ErrClosed
	}
	// A send's effect does not depend on the time, so it is stepped at the
	// time of the latest event rather than paying a clock read per message
	// (the fsm only needs times that never go backwards).
	err := n.fsm.Step(n.last, fsm.Send{Peer: peer, Payload: payload})
	n.apply(nil)
	n.settle()
	n.waitFull()
	return err
}

// SendMany sends payload to each of peers, encoding the DATA frame once and
// appending the same bytes to every session's output buffer. It returns how
// many peers accepted it (see Send), with the same backpressure.
func (n *Node) SendMany(peers []string, payload []byte) int {
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return 0
	}
	n.frame = wire.AppendData(n.frame[:0], payload)
	legacyFrame := false // n.lframe holds payload as 0.4.1 encodes it
	now := n.last        // see Send
	sent := 0
	for _, p := range peers {
		if err := n.fsm.Step(now, fsm.Send{Peer: p, Payload: payload}); err != nil {
			n.apply(nil)
			continue
		}
		sent++
		acts := n.fsm.Ready()
		for i := range acts {
			a := &acts[i]
			if a.Kind != fsm.ActWrite || a.Frame.Type != wire.Data {
				n.log.Error("bug: fsm answered Send with an unexpected action", "action", a.String())
				continue
			}
			c := n.conns[a.Conn]
			switch {
			case c == nil:
			case c.legacy != nil:
				// The fsm let it through, so it is a JSON object 0.4.1 carries.
				if !legacyFrame {
					n.lframe, _ = c.legacy.AppendFrame(n.lframe[:0], &a.Frame)
					legacyFrame = true
				}
				c.writeEncoded(n.lframe)
			default:
				c.writeEncoded(n.frame)
			}
		}
	}
	if cap(n.frame) > 64<<10 {
		n.frame = nil // do not keep a big payload's buffer
	}
	if cap(n.lframe) > 64<<10 {
		n.lframe = nil
	}
	n.settle()
	n.waitFull()
	return sent
}

// waitFull drops n.mu and waits on every connection the last step left over
// its send bound.
func (n *Node) waitFull() {
	if len(n.full) == 0 {
		n.mu.Unlock()
		return
	}
	full := append([]*conn(nil), n.full...)
	n.dropFull()
	n.mu.Unlock()
	for _, c := range full {
		c.waitSpace()
	}
}

// Connect dials addr (tcp://host:port), waits for the handshake and returns
// the id of the node there, which is now kept. If a session with that node
// already exists, Connect returns its id at once. A dial that turns out to
// duplicate the pair's session is not an error. Cancelling ctx abandons the
// wait (the node stays kept if it was reached).
func (n *Node) Connect(ctx context.Context, addr string) (string, error) {
	if _, err := ParseAddr(addr); err != nil {
		return "", err
	}
	ch := make(chan connectResult, 1)
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return "", fsm.ErrClosed
	}
	n.nextReq++
	id := n.nextReq
	n.reqs[id] = ch
	if err := n.step(fsm.Connect{Req: id, Addr: addr}, nil); err != nil {
		delete(n.reqs, id)
		n.mu.Unlock()
		return "", err
	}
	n.mu.Unlock()
	select {
	case r := <-ch:
		return r.peer, r.err
	case <-ctx.Done():
		n.mu.Lock()
		if n.reqs[id] != nil {
			delete(n.reqs, id)
			if !n.closed {
				n.step(fsm.CancelConnect{Req: id}, nil)
			}
		}
		n.mu.Unlock()
		select {
		case r := <-ch: // it finished while we were cancelling
			return r.peer, r.err
		default:
		}
		return "", fmt.Errorf("masterless: connecting to %s: %w", addr, ctx.Err())
	}
}

// userStep steps a user command that may be refused.
func (n *Node) userStep(ev fsm.Event) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return fsm.ErrClosed
	}
	return n.step(ev, nil)
}

// Disconnect closes the session with peer (BYE normal) and stops keeping it.
func (n *Node) Disconnect(peer string) error { return n.userStep(fsm.Disconnect{Peer: peer}) }

// SetKeep sets whether the node reconnects to peer when its session ends.
func (n *Node) SetKeep(peer string, keep bool) error {
	return n.userStep(fsm.SetKeep{Peer: peer, Keep: keep})
}

// IsKept reports whether the node keeps peer.
func (n *Node) IsKept(peer string) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.fsm.IsKept(peer)
}

// Sessions returns the sorted ids of the peers that have a session.
func (n *Node) Sessions() []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.fsm.Sessions()
}

// SessionAddrs returns the local and remote addresses of the session's TCP
// connection with peer, so that tests can check both ends chose the same one.
func (n *Node) SessionAddrs(peer string) (local, remote net.Addr, ok bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	id, ok := n.fsm.Session(peer)
	if !ok {
		return nil, nil, false
	}
	c := n.conns[id]
	if c == nil {
		return nil, nil, false
	}
	return c.nc.LocalAddr(), c.nc.RemoteAddr(), true
}

// Status returns the fsm's view of its peers, for diagnostics and tests.
func (n *Node) Status() []fsm.PeerStatus {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.fsm.Peers()
}

// Handshaking returns the number of connections still handshaking.
func (n *Node) Handshaking() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.fsm.Handshaking()
}
