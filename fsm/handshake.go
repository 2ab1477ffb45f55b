package fsm

import (
	"fmt"

	"github.com/masterless-go/masterless/wire"
)

// The handshake (spec/PROTOCOL.md, section 3). The node with the greater id
// leads the pair and alone decides which connection becomes the session.

// leads reports whether this node leads the pair with peerID over c.
func (n *Node) leads(c *conn, peerID string) bool {
	if n.cfg.mutation.dialerLeads() {
		return c.dial != nil // deliberately wrong: see MutationDialerLeads
	}
	return n.cfg.ID > peerID
}

func (n *Node) onHello(c *conn, f *wire.Frame) {
	if !n.authentic(c, f.ID) {
		return
	}
	if f.ID == n.cfg.ID {
		if f.Incarnation == n.cfg.Incarnation {
			n.closeConn(c, wire.CodeSelfConnect, ErrSelfConnect)
		} else {
			n.closeConn(c, wire.CodeDuplicateID, fmt.Errorf("%w: %q (incarnations %d and %d)", ErrDuplicateID, f.ID, n.cfg.Incarnation, f.Incarnation))
		}
		return
	}
	p := n.peerFor(f.ID)
	p.legacy = false // it speaks v1: redial it in v1 (legacy.go)
	p.authed = p.authed || c.authID != ""
	c.peer, c.peerInc, c.leader, c.peerMax = p, f.Incarnation, n.leads(c, f.ID), int(f.MaxFrame)
	if f.MaxFrame != 0 {
		p.maxFrame = int(f.MaxFrame)
	}
	c.peerKeep = true // until the peer's JOIN or WELCOME says otherwise
	n.helloFeatures(c, f)
	p.handshakes++
	if f.Info != "" && f.Info != p.info {
		p.info, p.atInfo = f.Info, false // a new address: the dialed one first again
	}
	if c.dial != nil {
		if why := n.dialReached(c.dial, p); why != nil {
			n.closeConn(c, wire.CodeUnwanted, why)
			return
		}
	}
	if s := p.session; s != nil && s.peerInc > f.Incarnation {
		n.closeConn(c, wire.CodeStale, fmt.Errorf("%w: %s incarnation %d, session has %d", ErrStaleIncarnation, p.id, f.Incarnation, s.peerInc))
		return
	}
	if !c.leader {
		if f.Incarnation > p.leaderInc {
			p.leaderInc, p.closedSess = f.Incarnation, 0
		}
		closed := uint64(0)
		if f.Incarnation == p.leaderInc {
			closed = p.closedSess
		}
		c.state = StateWelcome
		c.sentKeep = p.kept
		n.write(c, wire.Frame{Type: wire.Join, Closed: closed, Keep: p.kept})
		return
	}
	if s := p.session; s == nil || s.peerInc < f.Incarnation {
		n.grant(c) // no session, or the peer restarted: no need to hear JOIN
		return
	}
	c.state = StateJoin
}

func (n *Node) onJoin(c *conn, f *wire.Frame) {
	c.peerKeep = f.Keep
	p := c.peer
	s := p.session
	switch {
	case s == nil || s.peerInc < c.peerInc:
		n.grant(c)
	case s.peerInc > c.peerInc:
		n.closeConn(c, wire.CodeStale, fmt.Errorf("%w: %s incarnation %d, session has %d", ErrStaleIncarnation, p.id, c.peerInc, s.peerInc))
	case s.sess <= f.Closed:
		// The follower already closed s; we had not noticed yet (its
		// goodbye is still on the way, on s's own connection). s ends as
		// it would have had we read that first: the session-end rules
		// decide (sessionEnded: a peer not kept and owed nothing is
		// reported gone, and the new session is then a new Connect), not
		// a replacement, which tells the user nothing (a black-box audit:
		// 0.5-2.5% of 2,000 Connect, Send, Disconnect cycles got no
		// Disconnect and no Connect at the accepting end).
		n.closeQuietly(s, fmt.Errorf("%w: %s closed session %d (its JOIN on a newer connection says so)", ErrPeerClosed, p.id, s.sess))
		n.grant(c)
	default:
		n.closeConn(c, wire.CodeDuplicate, fmt.Errorf("%w (session %d with %s)", ErrDuplicate, s.sess, p.id))
	}
}

// grant makes c the session (leader side), replacing any previous one.
func (n *Node) grant(c *conn) {
	p := c.peer
	if !c.leader {
		n.broken("grant on c%d, where this node is not the leader", c.id)
	}
	if old := p.session; old != nil {
		n.retire(p, old, fmt.Errorf("%w: connection %d with %s took over the session", ErrReplaced, c.id, p.id))
	}
	n.sessCounter++
	c.sess = n.sessCounter
	n.write(c, wire.Frame{Type: wire.Welcome, Sess: c.sess, Keep: p.kept})
	n.establish(p, c)
}

func (n *Node) onWelcome(c *conn, f *wire.Frame) {
	p := c.peer
	if s := p.session; s != nil && s != c {
		if s.peerInc > c.peerInc || (s.peerInc == c.peerInc && s.sess > f.Sess) {
			n.closeConn(c, wire.CodeStale, fmt.Errorf("%w: grant %d from %s is older than session %d", ErrStaleIncarnation, f.Sess, p.id, s.sess))
			return
		}
	}
	if c.peerInc == p.leaderInc && f.Sess <= p.closedSess {
		n.closeConn(c, wire.CodeStale, fmt.Errorf("%w: grant %d from %s already closed here", ErrStaleIncarnation, f.Sess, p.id))
		return
	}
	if old := p.session; old != nil && old.peerInc == c.peerInc {
		// The leader granted a newer session of the same incarnation: it
		// closed old (its goodbye, or its finding old dead, is still on
		// the way), so old ends by the session-end rules, as it would had
		// we heard that first (see onJoin).
		n.closeQuietly(old, fmt.Errorf("%w: %s granted session %d, so it closed session %d", ErrPeerClosed, p.id, f.Sess, old.sess))
	} else if old != nil {
		n.retire(p, old, fmt.Errorf("%w: connection %d with %s took over the session", ErrReplaced, c.id, p.id))
	}
	c.sess, c.peerKeep = f.Sess, f.Keep
	n.establish(p, c)
}

// retire closes the session old because another connection is about to
// replace it; the peer stays connected, so no user event and no reconnect follow.
func (n *Node) retire(p *peer, old *conn, why error) {
	p.session = nil
	n.noteClosedSession(p, old, why)
	n.closeConn(old, wire.CodeReplaced, why)
}

func (n *Node) onBye(c *conn, f *wire.Frame) {
	n.closeQuietly(c, errForCode(f.Code, f.Text))
}
