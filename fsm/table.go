package fsm

import (
	"errors"
	"fmt"

	"github.com/masterless-go/masterless/wire"
)

// This file is the protocol's transition table: which frame a connection may
// receive in which state, and who handles it. Everything not in the table is
// a protocol violation that closes the connection (spec/PROTOCOL.md, 4).

type frameHandler func(n *Node, c *conn, f *wire.Frame)

// transitions[state][type] handles frame type in state; nil means forbidden.
var transitions = [StateEstablished + 1][wire.LastType + 1]frameHandler{
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
		wire.Join:    (*Node).onLateJoin, // leader: the grant raced the follower's JOIN
		wire.Keep:    (*Node).onKeep,
		wire.Ping:    (*Node).onPing,
		wire.Data:    (*Node).onReliableData,
		wire.Ack:     (*Node).onAck,
		wire.Resume:  (*Node).onResume,
		wire.Members: (*Node).onMembers,
		wire.Bye:     (*Node).onBye,
	},
}

// Refusal returns why connection id may not receive a frame of type t in
// its state (the transition table), or nil if it may: asked by the
// connection layer once a frame's header is in, so that a frame the state
// forbids is refused before its body is buffered (a DATA header announcing
// megabytes on a connection that has not sent its HELLO would otherwise
// hold that much until its handshake timeout). The layer reports it as
// Malformed, which closes the connection as a protocol error with the same
// words as the frame read whole (frameReceived). Nil for a connection the
// node no longer holds: there is nothing to refuse.
func (n *Node) Refusal(id ConnID, t wire.Type) error {
	c := n.conns[id]
	if c == nil {
		return nil
	}
	return n.refusal(c, t)
}

// refusal is why c may not receive a frame of type t, decided by the type
// alone, or nil: the table forbids the type in c's state, or it is DATA on
// a v1 session the peer has not resumed (spec/PROTOCOL.md 4.1: a stream's
// DATA follows its RESUME). A peer sends DATA only after its RESUME, which
// it sends only after its own ACK, and that ACK confirms the leader's
// session (confirm): so DATA never arrives on an unconfirmed session from
// a node that follows the protocol, and a stranger whose bare HELLO was
// granted a session cannot make this node buffer a frame of up to the max
// frame size in each of its handshake slots (a black-box audit: a 10 MiB
// DATA header after a HELLO was held until the handshake timeout). The other
// large frame, MEMBERS, is refused so on a connection without discovery,
// and before the peer's RESUME too: a node writes MEMBERS on a session only
// after its own RESUME there (sendMembers), so a stranger cannot make a
// node with discovery buffer one either.
func (n *Node) refusal(c *conn, t wire.Type) error {
	if n.handler(c, t) == nil {
		return notAllowed(c, t)
	}
	if c.rules != &v1Rules {
		return nil
	}
	switch {
	case t == wire.Data && !c.peerResumed:
		return errDataBeforeResume
	case t == wire.Members && !c.members:
		return errMembersWithoutDiscovery
	case t == wire.Members && !c.peerResumed:
		return errMembersBeforeResume
	}
	return nil
}

// refusal's reasons beyond the table.
var (
	errDataBeforeResume        = errors.New("DATA before RESUME")
	errMembersWithoutDiscovery = errors.New("MEMBERS on a connection without discovery")
	errMembersBeforeResume     = errors.New("MEMBERS before RESUME")
)

// handler returns what handles a frame of type t on c in its state; nil
// when the table forbids it.
func (n *Node) handler(c *conn, t wire.Type) frameHandler {
	if t > wire.LastType || c.rules == nil {
		return nil
	}
	return c.rules.frames[c.state][t]
}

// notAllowed is why c refuses a frame of type t in its state.
func notAllowed(c *conn, t wire.Type) error {
	return fmt.Errorf("%s not allowed in state %s", t, c.state)
}

// legacyTransitions is the table for connections that speak masterless 0.4.1
// (legacy.go, spec/PROTOCOL.md, appendix): the acceptor leads, there is no
// BYE, and a heartbeat may arrive in any state (0.4.1 ignores it everywhere).
var legacyTransitions = [StateEstablished + 1][wire.LastType + 1]frameHandler{
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
		wire.Data: (*Node).onLegacyData,
	},
}

// rules are the protocol a connection speaks: v1's or masterless 0.4.1's.
// Every place where 0.4.1 differs from v1 is a field here, chosen once per
// connection (conn.rules), so no handler asks which protocol it serves.
type rules struct {
	// legacy: these are masterless 0.4.1's rules.
	legacy bool
	// frames is the transition table.
	frames *[StateEstablished + 1][wire.LastType + 1]frameHandler
	// acceptorHello: the acceptor sends HELLO as soon as it knows the
	// protocol (v1); else only after the dialer's HELLO (0.4.1).
	acceptorHello bool
	// established runs when c has just become the session.
	established func(n *Node, c *conn)
	// keepChanged tells the peer, or decides, after the local keep flag of
	// session c changed.
	keepChanged func(n *Node, c *conn)
	// closedByPeer turns the reason the peer closed c into the one reported.
	closedByPeer func(n *Node, c *conn, why error) error
}

var v1Rules = rules{
	frames:        &transitions,
	acceptorHello: true,
	established:   (*Node).v1Established,
	keepChanged:   (*Node).v1KeepChanged,
	closedByPeer:  func(_ *Node, _ *conn, why error) error { return why },
}

var legacyRules = rules{
	legacy:        true,
	frames:        &legacyTransitions, // 0.4.1's handshake: the acceptor leads
	acceptorHello: false,
	established:   (*Node).legacyEstablished,
	keepChanged:   (*Node).legacyKeepChanged,
	closedByPeer:  (*Node).legacyClosedByPeer, // 0.4.1 refuses with a bare FIN
}

// rulesFor returns the rules of a connection that speaks 0.4.1 (legacy) or v1.
func rulesFor(legacy bool) *rules {
	if legacy {
		return &legacyRules
	}
	return &v1Rules
}

func (n *Node) frameReceived(id ConnID, f *wire.Frame) {
	c := n.conns[id]
	if c == nil {
		return // closed by us while the frame was in flight
	}
	n.frameOn(c, f)
}

// frameOn takes frame f on connection c, which the node holds: the rule of
// its type in c's state (the table above), or a protocol error.
func (n *Node) frameOn(c *conn, f *wire.Frame) {
	c.lastRecv = n.now
	if f.Type == wire.Hello {
		n.heard(c) // the dialer spoke: it may no longer be evicted (slots.go)
	}
	// Refused before anything else, confirm included: what its header
	// alone refuses (Refusal) is refused so here too, with the same words,
	// however its bytes were split into reads.
	if err := n.refusal(c, f.Type); err != nil {
		n.closeConn(c, wire.CodeProtocol, fmt.Errorf("%w: %w", ErrProtocol, err))
		return
	}
	h := n.handler(c, f.Type)
	if c.unconfirmed {
		n.confirm(c, f) // before the frame's own rule: Connected precedes what it carries
	}
	h(n, c, f)
}
