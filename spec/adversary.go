package spec

import (
	"errors"
	"fmt"
)

// Invariants of a network with an adversary (spec/PROTOCOL.md, 7.1): the
// processes in Snapshot.Nodes are the honest members; a connection end held
// by a process that is not among them (End.Node naming no node) is an
// adversary's. An adversary may open connections to honest nodes, say
// anything on them (forged ids and incarnations, frames replayed from honest
// connections) and may even hold a trusted key of its own (an insider). What
// it must never achieve is stated here, in two parts:
//
//   - it never holds a session of an honest pair, nor any connection an
//     honest node takes for an honest node's ([NoImpersonation], on every
//     snapshot);
//   - it never evicts one: no session of an honest pair is closed because
//     of something that arrived on an adversary's connection ([NoEviction],
//     on every session close the observer sees).
//
// The simulator checks both after every step of its adversary worlds
// (sim.Knobs.Adversaries), with authentication on; its negative control runs
// the same adversary against nodes without authentication, which the
// invariants must catch.

// CheckAdversary runs the snapshot invariant of a network with adversaries.
// Session closes are checked one by one with [NoEviction].
func CheckAdversary(s *Snapshot) error { return NoImpersonation(s) }

// honest reports whether id is an honest process's: one of s.Nodes.
func (s *Snapshot) honest(id string) bool { return s.Node(id) != nil }

// NoImpersonation: every connection an honest node holds whose peer is an
// honest id (the node took its HELLO: handshaking past HELLO, or
// established) has that id's process at its other end. In particular every
// session an honest node holds with an honest id X runs over a connection
// whose other end is X's process: an adversary never holds a session of an
// honest pair, nor is it ever on the way to one.
//
// Connections whose peer is not an honest id (an insider's own id) and
// connections unknown to the network (EndsMatchNetwork's concern) are not
// its business.
func NoImpersonation(s *Snapshot) error {
	var errs []error
	ix := s.index()
	for i := range s.Nodes {
		n := &s.Nodes[i]
		for j := range n.Conns {
			e := &n.Conns[j]
			if e.Peer == "" {
				continue
			}
			if m, _ := ix.node(s, e.Peer); m == nil { // not honest
				continue
			}
			c := ix.conn(s, e.Global)
			if c == nil {
				continue
			}
			side := 1
			if e.Dialed {
				side = 0
			}
			if other := c.Ends[1-side].Node; other != e.Peer {
				what := "connection"
				if p := n.Peer(e.Peer); p != nil && p.SessionGlobal == e.Global {
					what = "session"
				}
				errs = append(errs, fmt.Errorf("no-impersonation: %s holds g%d (%s, %s) as its %s with %s, but the other end is held by %s",
					n.ID, e.Global, e.State, adversaryOrNot(s, other), what, e.Peer, other))
			}
		}
	}
	return errors.Join(errs...)
}

func adversaryOrNot(s *Snapshot, id string) string {
	if s.honest(id) {
		return "an honest process"
	}
	return "an adversary"
}

// SessionClosed is one close of a session by a node holding it, as an
// observer of the whole network sees it.
type SessionClosed struct {
	Node    string // the node that closed its session
	Peer    string // the peer id the session was with
	Conn    ConnID // the session's connection
	PeerEnd string // the process holding Conn's other end
	// Cause is the connection whose event the node was handling when it
	// closed the session (a frame, its close); 0 for a timer or a user
	// command. CauseEnd is the process holding Cause's other end.
	Cause    ConnID
	CauseEnd string
	Err      error // why the node closed it
}

// NoEviction: no session of an honest pair is closed because of an
// adversary's connection. A session of an honest pair is one an honest node
// holds with an honest peer over a connection whose other end is that
// peer's process; it is closed because of an adversary's connection when the
// node closes it while handling an event of a connection whose other end is
// not an honest process (a HELLO forging the peer's id with a newer
// incarnation, a replayed WELCOME, JOIN or BYE). s says which processes are
// honest (s.Nodes).
//
// Closes caused by honest connections, timers and commands are the
// protocol's business (section 3) and pass: the adversary's influence can
// only enter a node through its own connections, and NoImpersonation says
// those never stand for an honest node.
func NoEviction(s *Snapshot, c SessionClosed) error {
	if !s.honest(c.Node) || !s.honest(c.Peer) || c.PeerEnd != c.Peer || c.Cause == 0 || s.honest(c.CauseEnd) {
		return nil
	}
	return fmt.Errorf("no-eviction: %s closed its session g%d with %s (%v) while handling g%d, whose other end is held by %s",
		c.Node, c.Conn, c.Peer, c.Err, c.Cause, adversaryOrNot(s, c.CauseEnd)+" "+c.CauseEnd)
}
