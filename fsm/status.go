package fsm

import (
	"cmp"
	"slices"
)

// Read-only views of a Node, for the checkers in package spec, the simulator
// and tests. They copy: holding one never aliases the node's state.

// ConnStatus describes one open connection.
type ConnStatus struct {
	ID              ConnID
	State           ConnState
	Dialed          bool   // this node dialed it
	Peer            string // "" until the peer's HELLO arrived
	PeerIncarnation uint64
	Leader          bool   // this node leads the pair
	Sess            uint64 // session number, once established
}

// PeerStatus describes one peer the node knows.
type PeerStatus struct {
	ID          string
	Kept        bool
	Connected   bool   // the user was told Connected and not since Disconnected
	SessionConn ConnID // the connection that is the session; 0 when there is none
	Sess        uint64
	// Confirmed: the other end confirmed the session (session.go, confirm),
	// so the peer is back. Until then the session may still be refused, and
	// the node counts the peer as away since its last confirmed session
	// ended (the reconnect grace runs on).
	Confirmed   bool
	Incarnation uint64 // of the current or last session
	Queued      int    // messages accepted and not yet acknowledged (or, on a 0.4.1 peer, waiting for the session)
	Unreachable bool   // kept, but away for longer than the reconnect grace
	Addr        string // where the node would redial it; "" if it knows no address
	// The streams (stream.go). SendCredit: bytes the peer still lets this
	// node send (negative: the last message went past); Unconsumed: bytes of
	// its messages delivered here and not yet consumed by the user, those of
	// its earlier incarnations included;
	// Refused: a Send to it was refused since it last had room; Backlog:
	// this node tells it that its answers to it back up here; Held: it
	// tells this node so, and this node's producers wait.
	SendCredit int64
	Unconsumed uint64
	Refused    bool
	Backlog    bool
	Held       bool
}

// Conns returns the node's open connections, sorted by id.
func (n *Node) Conns() []ConnStatus { return n.AppendConns(nil) }

// AppendConns appends the node's open connections, sorted by id, to dst: the
// allocation-free form of Conns for callers that snapshot after every step.
func (n *Node) AppendConns(dst []ConnStatus) []ConnStatus {
	start := len(dst)
	for _, c := range n.conns {
		s := ConnStatus{ID: c.id, State: c.state, Dialed: c.dial != nil, PeerIncarnation: c.peerInc, Leader: c.leader, Sess: c.sess}
		if c.peer != nil {
			s.Peer = c.peer.id
		}
		dst = append(dst, s)
	}
	slices.SortFunc(dst[start:], func(a, b ConnStatus) int { return cmp.Compare(a.ID, b.ID) })
	return dst
}

// Peers returns the peers the node knows, sorted by id.
func (n *Node) Peers() []PeerStatus { return n.AppendPeers(nil) }

// AppendPeers appends the peers the node knows, sorted by id, to dst: the
// allocation-free form of Peers.
func (n *Node) AppendPeers(dst []PeerStatus) []PeerStatus {
	return appendPeers(dst, n.peers)
}

// EndedPeers returns, once the node has shut down, the peers it knew then,
// sorted by id, with what it counted about each, as they ended: for
// monitoring after the node closed. Nothing is under way any more, so each
// shows as idle, not connected and not kept (as IsKept says); the counts
// and the last end (ErrClosed
// for a session the shutdown ended) are as they were. Nil before the
// shutdown.
func (n *Node) EndedPeers() ([]PeerStatus, []PeerCounters) {
	if n.ended == nil {
		return nil, nil
	}
	ps := appendPeers(nil, n.ended)
	ks := make([]PeerCounters, len(ps))
	for i := range ps {
		ps[i].Connected, ps[i].Kept = false, false
		ks[i] = n.peerCounters(n.ended[ps[i].ID])
		ks[i].State = PeerIdle
	}
	return ps, ks
}

// appendPeers is AppendPeers over the peer records peers.
func appendPeers(dst []PeerStatus, peers map[string]*peer) []PeerStatus {
	start := len(dst)
	for _, p := range peers {
		s := PeerStatus{ID: p.id, Kept: p.kept, Connected: p.announced, Incarnation: p.inc, Queued: p.out.count, Unreachable: p.unreachable, Addr: p.redialAddr(),
			SendCredit: int64(p.out.limit) - int64(p.out.sentEnd()), Unconsumed: p.in.received - p.in.consumed + p.in.stale, Refused: p.out.refused,
			Backlog: p.out.backlog, Held: p.in.held}
		if c := p.session; c != nil {
			s.SessionConn, s.Sess, s.Confirmed = c.id, c.sess, !c.unconfirmed
		}
		dst = append(dst, s)
	}
	slices.SortFunc(dst[start:], func(a, b PeerStatus) int { return cmp.Compare(a.ID, b.ID) })
	return dst
}

// SessionConn returns the connection that is the session with peer, if any.
func (n *Node) SessionConn(peer string) (ConnID, bool) {
	if p := n.peers[peer]; p != nil && p.session != nil {
		return p.session.id, true
	}
	return 0, false
}

// IsKept reports whether the node keeps peer.
func (n *Node) IsKept(peer string) bool {
	p := n.peers[peer]
	return p != nil && p.kept
}

// Sessions returns the ids of the peers that have a session, sorted.
func (n *Node) Sessions() []string { return n.sessions(false) }

// ListedSessions is Sessions as the user sees them (the public
// Connections): without a session this node leads and the follower has not
// confirmed yet, which the follower may still refuse (conn.listed).
func (n *Node) ListedSessions() []string { return n.sessions(true) }

func (n *Node) sessions(listedOnly bool) []string {
	var out []string
	for _, p := range n.sortedPeers() {
		if c := p.session; c != nil && (c.listed() || !listedOnly) {
			out = append(out, p.id)
		}
	}
	return out
}

// Handshaking returns the number of connections still handshaking.
func (n *Node) Handshaking() int { return n.handshaking }

// ConnState returns the state of connection id and whether it speaks
// masterless 0.4.1; ok is false for a connection the node does not hold. The
// connection layer (package link) reads it to pick the parser for the next
// frame, as h11 picks its reader by state.
func (n *Node) ConnState(id ConnID) (state ConnState, legacy, ok bool) {
	c := n.conns[id]
	if c == nil {
		return 0, false, false
	}
	return c.state, c.legacy(), true
}
