package fsm

import (
	"time"

	"fmt"

	"github.com/masterless-go/masterless/wire"
)

// On a session (spec/PROTOCOL.md, section 4).

// establish makes c the session with p, on either end.
func (n *Node) establish(p *peer, c *conn) {
	if p.session != nil {
		n.broken("establishing c%d with %s while session c%d exists", c.id, p.id, idOf(p.session))
	}
	if c.state == StateEstablished {
		n.broken("c%d established twice", c.id)
	}
	c.state = StateEstablished
	p.handshakes--
	p.session = c
	if c.dial != nil {
		n.dialEnded(c.dial, c, nil)
	}
	c.lastRecv, c.lastPing, c.establishedAt = n.now, n.now, n.now
	if !c.legacy() {
		// The user hears of it once the other end confirms it (confirm);
		// until then it keeps its handshake slot (slots.go) and must be
		// confirmed within the handshake timeout of now: a grant on a
		// bare HELLO must not escape the cap on handshakes. (Counted from
		// the grant, not the connection's opening: on a machine so loaded
		// that a handshake takes seconds, the latter closed sessions a
		// 256-node mesh needed.)
		c.unconfirmed = true
		if c.listed() {
			// A follower's session shows in the user's views from the
			// grant it adopted (conn.listed), so Stats counts it from
			// now too: a peer shown connected again is a reconnect.
			n.countSession(p)
		}
	} else {
		n.freeSlot(c)
		n.peerUp(p, c)
	}
	n.armConn(c, n.sessionDeadline(c))
	c.rules.established(n, c)
}

// confirm runs for each frame on v1 session c until the other end has
// confirmed it; then the user hears of the session (peerUp: Connected,
// Connect returns, the backoff starts over). Until then the session carries
// frames like any other, but may still be refused: a leader grants on the
// follower's HELLO without waiting for its JOIN, and the follower may
// meanwhile have refused our HELLO (as stale, when it still holds a session
// with a newer process of this id) or refuse the WELCOME. Such a session
// ends unconfirmed (sessionEnded): the user never hears of it, a Connect
// waiting for it fails with the reason, and the backoff keeps growing, as
// after any failed handshake.
//
// The leader's session is confirmed by the follower's first frame since the
// grant: the follower answers a WELCOME it adopts with ACK (or KEEP) at once,
// and a refusal is a BYE. The follower's is confirmed by the leader's
// RESUME, which the leader sends in answer to that ACK, so after it
// confirmed: when either end's user hears of the session, the leader's
// already has (a follower's Connect returns only once the leader shows the
// session as connected, as it did when the leader reported it at the grant).
func (n *Node) confirm(c *conn, f *wire.Frame) {
	if c.leader {
		switch f.Type {
		case wire.Bye, wire.Join, wire.Hello:
			return // a refusal, or what the follower sent before the grant
		}
	} else if f.Type != wire.Resume {
		return
	}
	c.unconfirmed = false
	n.freeSlot(c)
	n.peerUp(c.peer, c)
	if c.resumed && c.peer.session == c {
		// A message too large for the peer held the stream back until now
		// (pump, waitsForConfirm): its Lost follows the Connect.
		n.pump(c.peer, c, nil)
	}
	// Discovery learns the peer as a member, and sends it this node's view,
	// only now too: a session refused unconfirmed (a redial answered by
	// another node, a stale restart) made its user hear of a member, which
	// discovery then kept and dialed, merging meshes that never asked to
	// meet (a black-box audit).
	n.discoveryUp(c.peer, c)
}

// v1Established: the leader checks that someone wants the pair; a follower
// whose keep flag changed since its JOIN says so; then the streams resume.
func (n *Node) v1Established(c *conn) {
	p := c.peer
	if c.leader {
		if n.checkWanted(c); p.session != c {
			return
		}
	} else if p.kept != c.sentKeep {
		// The keep flag changed after our JOIN went out: the leader must hear
		// it, or it may keep a pair that neither end wants (sim seed 9052).
		n.write(c, wire.Frame{Type: wire.Keep, Keep: p.kept})
	}
	n.streamsStart(p, c)
}

func idOf(c *conn) ConnID {
	if c == nil {
		return 0
	}
	return c.id
}

// onLegacyData delivers a 0.4.1 message: no numbers, no credit.
func (n *Node) onLegacyData(c *conn, f *wire.Frame) {
	n.countIn(c.peer, 1, len(f.Payload))
	n.emit(Action{Kind: ActMessage, Conn: c.id, Peer: c.peer.id, Incarnation: c.peerInc, Frame: wire.Frame{Type: wire.Data, Payload: f.Payload}})
}

func (n *Node) onKeep(c *conn, f *wire.Frame) {
	c.peerKeep = f.Keep
	if c.leader {
		n.checkWanted(c)
	}
}

func (n *Node) onLateJoin(c *conn, f *wire.Frame) {
	if !c.leader {
		n.closeConn(c, wire.CodeProtocol, fmt.Errorf("%w: JOIN sent to the follower", ErrProtocol))
		return
	}
	n.onKeep(c, f)
}

// checkWanted closes the session when neither end keeps the pair. Only the
// leader decides, so the ends never disagree.
func (n *Node) checkWanted(c *conn) {
	if !c.peer.kept && !c.peerKeep {
		if c.peer.session == c {
			// What this node's user took is acknowledged before the BYE,
			// as for a Disconnect (finalAck): the follower would otherwise
			// hand it back as lost.
			n.finalAck(c.peer)
		}
		n.closeConn(c, wire.CodeUnwanted, ErrUnwanted)
	}
}

// keepChanged tells the peer, or decides, after the local keep flag changed.
func (n *Node) keepChanged(p *peer) {
	if c := p.session; c != nil {
		c.rules.keepChanged(n, c)
	}
}

// v1KeepChanged: the leader decides first, then tells; the follower tells.
func (n *Node) v1KeepChanged(c *conn) {
	p := c.peer
	if c.leader {
		n.checkWanted(c)
		if p.session == nil {
			return
		}
	}
	n.write(c, wire.Frame{Type: wire.Keep, Keep: p.kept})
}

// readPaused records that the adapter stopped or resumed reading c for its
// user's sake (ReadPaused). When reading resumes, the peer gets a full peer
// timeout from now: what it sent meanwhile was waiting in our socket.
func (n *Node) readPaused(e ReadPaused) {
	c := n.conns[e.Conn]
	if c == nil || c.readPaused == e.Paused {
		return
	}
	c.readPaused = e.Paused
	if !e.Paused {
		c.lastRecv = n.now
	}
	if c.state == StateEstablished {
		n.armConn(c, n.sessionDeadline(c))
	}
}

// sessionDeadline is when session c's timers next need a look: its next
// heartbeat, or its peer timeout unless its reading is paused (readPaused).
func (n *Node) sessionDeadline(c *conn) time.Duration {
	at := n.heartbeatAt(c)
	if !c.readPaused {
		at = min(at, n.peerTimeoutAt(c))
	}
	if c.unconfirmed {
		at = min(at, c.establishedAt+n.cfg.HandshakeTimeout)
	}
	if c.ackBy != 0 {
		at = min(at, c.ackBy)
	}
	return at
}

// sessionTimers runs the heartbeat and dead-peer deadline of session c;
// late is how long after the deadline it was due at the Tick came (peerTimeoutAt).
func (n *Node) sessionTimers(c *conn, late time.Duration) {
	if c.unconfirmed && n.now >= c.establishedAt+n.cfg.HandshakeTimeout {
		n.closeConn(c, wire.CodeHandshake, fmt.Errorf("%w: the session with %s on c%d (%s) was not confirmed within %v", ErrHandshakeTimeout, c.peer.id, c.id, c.where(), n.cfg.HandshakeTimeout))
		n.traceTimeout(c)
		return
	}
	if !c.readPaused && n.now >= n.peerTimeoutAt(c) {
		if late > n.cfg.HeartbeatInterval && !c.graced() {
			// This node's own pause (see peerTimeoutAt): not the peer's.
			c.graceFor, c.graceUntil = c.lastRecv, n.now+min(late, n.cfg.PeerTimeout)
			n.counters.pauseGraces++
		} else {
			n.closeConn(c, wire.CodePeerTimeout, fmt.Errorf("%w: nothing from %s for %v", ErrPeerTimeout, c.peer.id, n.now-c.lastRecv))
			n.traceTimeout(c)
			return
		}
	}
	if c.ackBy != 0 && n.now >= c.ackBy {
		c.ackBy = 0
		if in := c.peer.in; in.delivered != in.ackSent {
			n.sendAck(c.peer, c) // the messages delivered since the last ACK (ackDelay)
		}
	}
	if n.now >= n.heartbeatAt(c) {
		c.lastPing = n.now
		c.peer.out.release() // idle since the last heartbeat? then give its buffers back
		f := wire.Frame{Type: wire.Ping}
		if reliable(c) {
			if n.ackDue(c.peer) {
				n.sendAck(c.peer, c) // acknowledges and grants what the heartbeat finds due
			}
			// The PING goes even after an ACK: it carries the clock stamps of
			// the round-trip time, which must not depend on the traffic (ends
			// that both acknowledge at every heartbeat would otherwise send
			// no stamp at all). It costs 29 bytes per heartbeat interval.
			n.stampPing(c, &f) // observe.go
		}
		n.write(c, f)
	}
	n.armConn(c, n.sessionDeadline(c))
}

// peerTimeoutAt is when session c's peer times out if nothing more comes
// from it: a peer timeout after the last frame (or byte) it sent, unless a
// late Tick gave this silence a grace.
//
// This node's own pause. A Tick that comes more than a heartbeat interval
// after the deadline it was due at (tick's late), or whose Tick.Lag says the
// adapter's reading of the network lags that much, says that this node was not
// running meanwhile: its process starved of CPU (a 256-node mesh on two
// cores, README), stopped, or suspended. What its peers sent in that time
// may be waiting unread in its sockets, so the silence it sees is partly
// its own. A session that such a Tick would time out gets as long again
// as the Tick was late (at most a peer timeout) for its reader to catch up,
// once per silence: a frame from the peer starts a new silence, and a
// session still silent at the end of its grace is timed out however late
// that Tick is. So a dead peer is still found, at most
// min(late, PeerTimeout) later; and a loaded node does not close the
// healthy sessions its own pause made look silent, which a 256-node mesh
// did by the tens of thousands, each one a new handshake that loaded the
// machine further.
func (n *Node) peerTimeoutAt(c *conn) time.Duration {
	at := c.lastRecv + n.cfg.PeerTimeout
	if c.graced() {
		at = max(at, c.graceUntil)
	}
	return at
}

// graced reports whether c's current silence had its grace (peerTimeoutAt).
func (c *conn) graced() bool { return c.graceUntil != 0 && c.graceFor == c.lastRecv }

// heartbeatSlots is how many heartbeat deadlines an interval holds.
const heartbeatSlots = 16

// heartbeatAt is when session c's next heartbeat is due: a heartbeat
// interval after its last one, rounded up to a grid of 1/heartbeatSlots of
// the interval. Sessions' heartbeats then fall due together, a few slots per
// interval, and one Tick sends each slot's: a node with N idle sessions
// wakes about heartbeatSlots times per interval rather than N times (the
// idle CPU, README). A heartbeat goes at most one slot late, never early.
func (n *Node) heartbeatAt(c *conn) time.Duration {
	t := c.lastPing + n.cfg.HeartbeatInterval
	if slot := n.cfg.HeartbeatInterval / heartbeatSlots; slot > 0 {
		t = (t + slot - 1) / slot * slot
	}
	return t
}
