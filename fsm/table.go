package fsm

import (
	"fmt"

	"github.com/masterless-go/masterless/wire"
)

// This file is the protocol's transition table: which frame a connection may
// receive in which state, and who handles it. Everything not in the table is
// a protocol violation that closes the connection (spec/PROTOCOL.md, 4).

type frameHandler func(n *Node, c *conn, f *wire.Frame)

// transitions[state][type] handles frame type in state; nil means forbidden.
var transitions = [StateEstablished + 1][wire.Bye + 1]frameHandler{
	StateHello: {
		wire.Hello: (*Node).onHello,
		wire.Bye:   (*Node).onBye,
	},
	StateJoin: { // leader, deciding
		wire.Join: (*Node).onJoin,
		wire.Bye:  (*Node).onBye,
	},
	StateWelcome: { // follower, waiting for the verdict
		wire.Welcome: (*Node).onWelcome,
		wire.Bye:     (*Node).onBye,
	},
	StateEstablished: {
		wire.Join: (*Node).onLateJoin, // leader: the grant raced the follower's JOIN
		wire.Keep: (*Node).onKeep,
		wire.Ping: (*Node).onPing,
		wire.Data: (*Node).onData,
		wire.Bye:  (*Node).onBye,
	},
}

// legacyTransitions is the table for connections that speak masterless 0.4.1
// (legacy.go, spec/PROTOCOL.md, appendix): the acceptor leads, there is no
// BYE, and a heartbeat may arrive in any state (0.4.1 ignores it everywhere).
var legacyTransitions = [StateEstablished + 1][wire.Bye + 1]frameHandler{
	StateHello: {
		wire.Hello: (*Node).onLegacyHello,
		wire.Ping:  (*Node).onPing,
	},
	StateJoin: { // acceptor: waiting for the dialer's priority
		wire.Join: (*Node).onLegacyJoin,
		wire.Ping: (*Node).onPing,
	},
	StateWelcome: { // dialer: priority sent, waiting for the confirm
		wire.Welcome: (*Node).onLegacyWelcome,
		wire.Ping:    (*Node).onPing,
	},
	StateEstablished: {
		wire.Keep: (*Node).onLegacyKeep,
		wire.Ping: (*Node).onPing,
		wire.Data: (*Node).onData,
	},
}

func (n *Node) frameReceived(id ConnID, f *wire.Frame) {
	c := n.conns[id]
	if c == nil {
		return // closed by us while the frame was in flight
	}
	c.lastRecv = n.now
	table := &transitions
	if c.legacy {
		table = &legacyTransitions // 0.4.1's handshake: the acceptor leads
	}
	var h frameHandler
	if f.Type <= wire.Bye {
		h = table[c.state][f.Type]
	}
	if h == nil {
		n.closeConn(c, wire.CodeProtocol, fmt.Errorf("%w: %s not allowed in state %s", ErrProtocol, f.Type, c.state))
		return
	}
	h(n, c, f)
}
