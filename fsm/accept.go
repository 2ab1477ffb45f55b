package fsm

import (
	"fmt"
	"unicode/utf8"

	"github.com/masterless-go/masterless/wire"
)

// incoming registers accepted connection ev.Conn, from ev.Source, whose protocol
// is not known yet, evicting a silent one if the slots are full (slots.go).
// It reports whether the node took it.
func (n *Node) incoming(ev Incoming) bool {
	id := ev.Conn
	if n.shutdown {
		n.emit(Action{Kind: ActClose, Conn: id, Err: ErrClosed})
		return false
	}
	if id == 0 || n.conns[id] != nil {
		n.broken("connection id c%d is zero or reused", id)
	}
	if err := n.makeRoom(); err != nil {
		n.emit(Action{Kind: ActClose, Conn: id, Err: err})
		return false
	}
	c := &conn{id: id, state: StateDetect, openedAt: n.now, lastRecv: n.now, source: sourceOf(ev)}
	n.conns[id] = c
	n.takeSlot(c)
	n.armConn(c, c.openedAt+n.cfg.HandshakeTimeout)
	return true
}

// accepted starts the handshake on an accepted connection once its protocol
// is known: v1 sends HELLO at once, a 0.4.1 acceptor waits for the dialer's.
func (n *Node) accepted(id ConnID, legacy bool, authID string) {
	c := n.conns[id]
	if c == nil {
		if !n.incoming(Incoming{Conn: id}) {
			return
		}
		c = n.conns[id]
	} else if c.state != StateDetect || c.dial != nil {
		n.broken("Accepted for c%d in state %s", id, c.state)
	}
	c.state, c.rules, c.authID = StateHello, rulesFor(legacy), authID
	if !n.admit(c) {
		return
	}
	if legacy && !utf8.ValidString(n.cfg.ID) {
		// Our HELLO could not be written: 0.4.1 carries ids as JSON
		// strings. (It used to be written anyway, and the connection
		// layer's encoder panicked: one line from any 0.4.1 dialer took
		// the process down, a black-box audit.)
		n.closeConn(c, wire.CodeProtocol, fmt.Errorf("%w: this node's id %q is not UTF-8, which a masterless 0.4.1 peer cannot be told", wire.ErrVersionMismatch, n.cfg.ID))
		return
	}
	if c.rules.acceptorHello {
		n.sendHello(c)
	}
}
