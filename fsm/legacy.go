package fsm

import (
	"errors"
	"fmt"

	"github.com/masterless-go/masterless/wire"
)

// Connections that speak masterless 0.4.1, the npm package
// (spec/LEGACY-0.4.1.md; spec/PROTOCOL.md, appendix). The codec (wire.Legacy)
// maps 0.4.1's messages onto frames; this file holds the handful of rules
// that differ, and legacyTransitions in table.go routes a legacy
// connection's frames here. Everything else (one session per pair at each
// end, keep flags, heartbeats and the peer timeout, queued sends, reconnects)
// is the same code as for v1.
//
// 0.4.1 fixes the roles per connection: the acceptor leads (it alone
// confirms or refuses), the dialer follows (HELLO, then JOIN with a priority,
// then waits for WELCOME). Two connections of a pair that cross are settled
// by the priorities, each at its acceptor: a connection whose priority is
// below the acceptor's own pending dial's is refused. 0.4.1 draws its
// priority at random when it crosses; this node never draws: it sends 1, or,
// when the peer's dial to us waits for its priority, 1 if our id is the
// greater and the smallest positive number if not. Both ends then compare
// the same two numbers and agree, and the id-leader's dial wins whenever this
// node has a say (spec/LEGACY-0.4.1.md, 11.2).
//
// 0.4.1 has no incarnations (HELLO carries 0: a restart looks like a
// duplicate until the old connection closes), no close reasons (BYE encodes
// to nothing, a close is a bare FIN) and each end decides alone to discard a
// pair that neither keeps.

// ErrNotJSONObject: a masterless 0.4.1 peer was sent a payload that is not
// one JSON object in UTF-8, the only kind of message 0.4.1 can carry.
var ErrNotJSONObject = errors.New("masterless: a masterless 0.4.1 peer accepts only JSON objects as payload; send a struct or map with SendJSON")

// legacyRival returns another 0.4.1 connection with c's peer in state st,
// accepted (dialed == false) or dialed by this node.
func (n *Node) legacyRival(c *conn, st ConnState, dialed bool) *conn {
	for _, o := range n.sortedConns() {
		if o != c && o.legacy() && o.peer == c.peer && o.state == st && (o.dial != nil) == dialed {
			return o
		}
	}
	return nil
}

func (n *Node) legacyDuplicate(c *conn, why string) {
	n.closeConn(c, wire.CodeDuplicate, fmt.Errorf("%w (0.4.1 peer %s: %s)", ErrDuplicate, c.peer.id, why))
}

// legacyUpgrade handles a 0.4.1 HELLO that carries an incarnation: only
// masterless-go nodes send one, so the peer speaks v1 too. A 0.4.1 connection
// has its acceptor as leader while v1 has the greater id, and two leaders for
// one pair could each grant a different connection (found by the simulator
// with Go nodes dialing in both protocols). So no 0.4.1 session is ever made
// between two Go nodes: the acceptor answers with its own HELLO (so the
// dialer learns the same), both close the connection as a duplicate, and the
// peer is redialed at once, in v1, if it is kept.
func (n *Node) legacyUpgrade(c *conn, f *wire.Frame) {
	p := n.peerFor(f.ID)
	p.legacy = false
	p.authed = p.authed || c.authID != ""
	c.peer, c.peerInc, c.leader = p, f.Incarnation, false
	p.handshakes++
	if f.Info != "" && f.Info != p.info {
		p.info, p.atInfo = f.Info, false
	}
	if c.dial != nil {
		_ = n.dialReached(c.dial, p) // its Connect requests now wait for the v1 session
	} else {
		n.write(c, wire.Frame{Type: wire.Hello, ID: n.cfg.ID, Incarnation: n.cfg.Incarnation, Info: n.info})
	}
	p.nextDialAt = n.now
	n.armPeer(p, n.now)
	n.closeConn(c, wire.CodeDuplicate, fmt.Errorf("%w: %s is a masterless-go node; switching to protocol v1", ErrDuplicate, p.id))
}

func (n *Node) onLegacyHello(c *conn, f *wire.Frame) {
	if !n.authentic(c, f.ID) {
		return
	}
	if f.ID == n.cfg.ID {
		n.closeConn(c, wire.CodeSelfConnect, ErrSelfConnect)
		return
	}
	if f.Incarnation != 0 && !n.cfg.mutation.noLegacyUpgrade() {
		n.legacyUpgrade(c, f)
		return
	}
	p := n.peerFor(f.ID)
	p.authed = p.authed || c.authID != ""
	c.peer, c.peerInc, c.leader = p, 0, c.dial == nil
	c.peerKeep = true // 0.4.1's default until the peer's [KEEP] arrives
	p.handshakes++
	p.legacy = true
	if f.Info != "" && f.Info != p.info {
		p.info, p.atInfo = f.Info, false
	}
	if d := n.dialsByAddr[f.Info]; c.dial == nil && f.Info != "" && d != nil && d.reached == nil && len(d.reqs) > 0 {
		// Our Connect to the address this peer advertises is still
		// dialing, and the peer dialed us meanwhile: the Connect keeps it
		// now, as a Connect that finds a connection past its HELLO does
		// (seeds.go, PROTOCOL 5), and completes with whichever of the two
		// connections becomes the session. Bound only once our dial heard
		// the peer, it was bound too late when 0.4.1 confirmed its own dial
		// first and refused ours without a word: this node told the peer
		// [false] at the grant, and a 0.4.1 peer that does not keep the
		// pair discards it on that (a black-box audit; the messages sent
		// once the Connect returned went with it).
		reqs := d.reqs
		d.reqs = nil
		for _, r := range reqs {
			n.bindRequest(r, p)
		}
	}
	if c.dial != nil {
		if why := n.dialReached(c.dial, p); why != nil {
			n.closeConn(c, wire.CodeUnwanted, why)
			return
		}
	}
	if c.leader { // we accepted: answer with our id, then wait for the priority
		switch {
		case p.session != nil:
			n.legacyDuplicate(c, "a session exists")
		case n.legacyRival(c, StateJoin, false) != nil:
			n.legacyDuplicate(c, "another of its connections is handshaking")
		case n.legacyRival(c, StateWelcome, true) != nil:
			n.legacyDuplicate(c, "our dial to it sent its priority first")
		default:
			c.state = StateJoin
			n.write(c, wire.Frame{Type: wire.Hello, ID: n.cfg.ID, Incarnation: n.cfg.Incarnation})
		}
		return
	}
	// We dialed: send our priority. Never 0: a refusal is a bare close.
	if p.session != nil {
		n.legacyDuplicate(c, "a session exists")
		return
	}
	c.prio = wire.LegacyPriorityMax
	if n.legacyRival(c, StateJoin, false) != nil && n.cfg.ID < p.id {
		c.prio = wire.LegacyPriorityMin // crossed: let the id-leader's dial win
	}
	c.state = StateWelcome
	c.sentKeep = p.kept
	j := wire.Frame{Type: wire.Join, Keep: p.kept}
	wire.SetLegacyPriority(&j, c.prio)
	n.write(c, j)
}

// onLegacyJoin decides, as 0.4.1's acceptor does, on the dialer's priority.
func (n *Node) onLegacyJoin(c *conn, f *wire.Frame) {
	p := c.peer
	prio := wire.LegacyPriority(f)
	switch x := n.legacyRival(c, StateWelcome, true); {
	case p.session != nil:
		n.legacyDuplicate(c, "a session exists")
	case prio == 0:
		// 0.4.1 sends 0 only to refuse, and closes right after; 0.4.1 itself
		// would confirm the dead connection.
		n.legacyDuplicate(c, "it refused with priority 0")
	case x != nil && prio < x.prio:
		n.legacyDuplicate(c, fmt.Sprintf("its priority %v is below ours %v", prio, x.prio))
	default: // a tie confirms, as in 0.4.1
		c.sess = 1
		n.write(c, wire.Frame{Type: wire.Welcome, Sess: 1, Keep: p.kept})
		n.establish(p, c)
	}
}

func (n *Node) onLegacyWelcome(c *conn, _ *wire.Frame) {
	if c.peer.session != nil { // only after a tie: keep the first
		n.legacyDuplicate(c, "confirmed a second connection")
		return
	}
	c.sess = 1
	n.establish(c.peer, c)
}

// legacyEstablished: right after the handshake a 0.4.1 session carries what
// was queued for the peer, then each end sends its keep flag. 0.4.1 has no
// acknowledgements: what is written is forgotten.
func (n *Node) legacyEstablished(c *conn) {
	o := &c.peer.out
	var refused [][]byte
	o.each(o.count, func(p []byte) {
		if wire.ValidLegacyPayload(p) != nil {
			// Accepted while the peer's protocol was not known (it was
			// away, or not yet seen): 0.4.1 cannot carry it, so it comes
			// back with Lost. (It used to be written, and the connection
			// layer's encoder panicked: anyone dialing in as 0.4.1 with
			// the id of a peer that had binary messages queued took the
			// process down, a black-box audit.)
			refused = append(refused, append([]byte(nil), p...))
			return
		}
		n.write(c, wire.Frame{Type: wire.Data, Payload: p})
	})
	o.drop(o.count)
	o.dropSegments() // the writes above alias them until the adapter copies them: not spares
	if len(refused) > 0 {
		n.emit(Action{Kind: ActLost, Peer: c.peer.id, Incarnation: o.inc, Lost: refused,
			Err: fmt.Errorf("%w: %d messages to %s: %w", ErrMessagesLost, len(refused), c.peer.id, ErrNotJSONObject)})
	}
	// 0.4.1 has no ACK, hence no backlog flag: its producers never wait for one.
	o.backlog, c.peer.in.held = false, false
	n.write(c, wire.Frame{Type: wire.Keep, Keep: c.peer.kept})
}

// onLegacyKeep: each end discards the pair when it reads [false] and does
// not keep the peer itself (0.4.1 L1044).
func (n *Node) onLegacyKeep(c *conn, f *wire.Frame) {
	c.peerKeep = f.Keep
	if !c.peer.kept && !c.peerKeep {
		n.closeConn(c, wire.CodeUnwanted, ErrUnwanted)
	}
}

// legacyKeepChanged tells the peer our new keep flag, then discards the pair
// if neither keeps it (the peer does the same when it reads the flag).
func (n *Node) legacyKeepChanged(c *conn) {
	n.write(c, wire.Frame{Type: wire.Keep, Keep: c.peer.kept})
	if !c.peer.kept && !c.peerKeep {
		n.closeConn(c, wire.CodeUnwanted, ErrUnwanted)
	}
}

// legacyClosedByPeer turns the bare FIN with which a 0.4.1 acceptor refuses
// our dial into ErrDuplicate when another connection with that peer carries
// on, so that Connect requests wait for that one instead of failing.
func (n *Node) legacyClosedByPeer(c *conn, why error) error {
	d := c.dial
	if d == nil {
		return why
	}
	switch {
	case c.state == StateWelcome && (c.peer.session != nil || c.peer.handshakes > 1):
		// Refused at our priority: its own dial to us won, or it has a session.
	case c.state == StateHello:
		// Refused at our HELLO: it is connected or handshaking with us already.
		p := n.legacyPeerAt(d.addr)
		if p == nil {
			return why
		}
		_ = n.dialReached(d, p) // refused as a duplicate: d reached p, closed already
	default:
		return why
	}
	return fmt.Errorf("%w (refused by the 0.4.1 node at %s: %w)", ErrDuplicate, d.addr, why)
}

// legacyPeerAt returns the 0.4.1 peer known at addr that has a session or a
// handshake under way.
func (n *Node) legacyPeerAt(addr string) *peer {
	for _, p := range n.sortedPeers() {
		if p.legacy && (p.info == addr || p.addr == addr) && (p.session != nil || p.handshakes > 0) {
			return p
		}
	}
	return nil
}

// legacySendCheck refuses a payload that a 0.4.1 peer cannot carry.
func (n *Node) legacySendCheck(p *peer, payload []byte) error {
	legacy := p.legacy
	if c := p.session; c != nil {
		legacy = c.legacy()
	}
	if !legacy {
		return nil
	}
	if err := wire.ValidLegacyPayload(payload); err != nil {
		return fmt.Errorf("%w: to %q: %v", ErrNotJSONObject, p.id, err)
	}
	return nil
}
