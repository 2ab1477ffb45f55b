package spec

import (
	"fmt"
	"slices"
	"strings"

	"github.com/masterless-go/masterless/fsm"
)

// ConnID names a TCP connection globally: one id for both of its ends. The
// simulator assigns them; each node knows only its local [fsm.ConnID].
type ConnID uint64

// Snapshot is the state of every node and of the network at one instant.
type Snapshot struct {
	// Nodes are the node processes, sorted by id. A crashed node that has not
	// restarted is present with Alive false and no connections or peers.
	Nodes []NodeView
	// Conns are the connections that were ever opened and still have an end
	// some node holds, sorted by id.
	Conns []Conn
	// Delivered lists the messages delivered so far, in delivery order, with
	// the connection each came on. Optional: a long-running observer (the
	// simulator) checks deliveries incrementally with a [DeliveryChecker]
	// instead and leaves it empty; a trace checker can fill it.
	Delivered []Delivery
	// Unchanged, if set, marks the nodes whose views are exactly as they
	// were at the previous CheckSafety of this snapshot, which found
	// nothing: CheckSafety skips them in the invariants of one node alone
	// (NoSelfConnection, AtMostOneSession), whose verdict on the same view
	// cannot change. Those invariants called on their own, and the others,
	// check every node. An observer that checks after every step and
	// re-reads only the nodes that stepped (the simulator) sets it; nil
	// checks every node.
	Unchanged []bool

	// Scratch of the checkers, reused from one check to the next: the
	// checkers of one Snapshot must not run concurrently.
	tally   map[string]int // AtMostOneSession's slot of a peer id a search does not find
	tallies []sessionTally // AtMostOneSession's tally of one node's peer ids
	slots   []int          // AtMostOneSession's slot of each of one node's connections
	ix      index
}

// NodeView is one node process as the checkers see it.
type NodeView struct {
	ID          string
	Incarnation uint64
	Alive       bool
	// Handshaking is fsm.Node.Handshaking(): the node's own count of
	// connections not yet established.
	Handshaking int
	Conns       []ConnEnd // from fsm.Node.Conns(), sorted by local id
	Peers       []Peer    // from fsm.Node.Peers(), sorted by peer id

	// Scratch for FillFromFSM, reused from one snapshot to the next.
	connBuf []fsm.ConnStatus
	peerBuf []fsm.PeerStatus
}

// ConnEnd is one end of a connection, as the node holding it reports it.
type ConnEnd struct {
	fsm.ConnStatus
	// Global is the connection this end belongs to.
	Global ConnID
}

// Peer is a node's view of one peer.
type Peer struct {
	fsm.PeerStatus
	// SessionGlobal is the global id of the session connection, 0 if none.
	SessionGlobal ConnID
}

// Dialable reports whether the node knows an address to redial the peer at
// (fsm.PeerStatus.Addr: from the peer's HELLO, the user's Connect,
// discovery, or the address book of forgotten peers). A node that keeps a
// peer it cannot dial can only wait for the peer to come to it. (The
// simulator used to infer it from the HELLOs it fed, which missed the
// addresses discovery teaches: it took a mesh still forming after faults
// for quiescent, 1 join in 60.)
func (p *Peer) Dialable() bool { return p.Addr != "" }

// Conn is one connection as the network sees it.
type Conn struct {
	ID ConnID
	// Ends[0] is the dialer's end, Ends[1] the acceptor's.
	Ends [2]End
}

// End says which node process holds one end of a connection and whether it
// still holds it open (it has not closed it and has not been told it closed).
type End struct {
	Node        string
	Incarnation uint64
	Open        bool
}

// Live reports whether both ends of c are open.
func (c *Conn) Live() bool { return c.Ends[0].Open && c.Ends[1].Open }

// Node returns the node with id, or nil.
func (s *Snapshot) Node(id string) *NodeView {
	for i := range s.Nodes {
		if s.Nodes[i].ID == id {
			return &s.Nodes[i]
		}
	}
	return nil
}

// Conn returns the connection with id, or nil.
func (s *Snapshot) Conn(id ConnID) *Conn {
	// Conns is sorted: binary search keeps per-step checks cheap.
	lo, hi := 0, len(s.Conns)
	for lo < hi {
		m := (lo + hi) / 2
		switch {
		case s.Conns[m].ID == id:
			return &s.Conns[m]
		case s.Conns[m].ID < id:
			lo = m + 1
		default:
			hi = m
		}
	}
	return nil
}

// Peer returns n's view of peer id, or nil.
func (n *NodeView) Peer(id string) *Peer {
	for i := range n.Peers {
		if n.Peers[i].ID == id {
			return &n.Peers[i]
		}
	}
	return nil
}

// End returns n's end of global connection g, or nil.
func (n *NodeView) End(g ConnID) *ConnEnd {
	for i := range n.Conns {
		if n.Conns[i].Global == g {
			return &n.Conns[i]
		}
	}
	return nil
}

// String renders a node compactly for error messages.
func (n *NodeView) String() string {
	s := fmt.Sprintf("%s(inc %d", n.ID, n.Incarnation)
	if !n.Alive {
		s += ", down"
	}
	s += "):"
	for _, c := range n.Conns {
		peer := c.Peer
		if peer == "" {
			peer = "?"
		}
		s += fmt.Sprintf(" g%d->%s/%s", c.Global, peer, c.State)
		if c.Sess != 0 {
			s += fmt.Sprintf("#%d", c.Sess)
		}
	}
	for _, p := range n.Peers {
		s += fmt.Sprintf(" [%s kept=%t dialable=%t sess=g%d]", p.ID, p.Kept, p.Dialable(), p.SessionGlobal)
	}
	return s
}

// index is what the checkers look up in a snapshot: connections by id, nodes
// by id, a node's peer by id. It lives in the snapshot so that its buffers
// are reused, but it is rebuilt for every check: by each invariant called on
// its own, once by CheckSafety for all of its invariants (which do not change
// the snapshot). A caller may change the snapshot between two checks, and
// nothing built for one check is trusted in the next.
//
// The simulator checks the whole snapshot after every step; without the
// index, finding the connection of each end (EndsMatchNetwork) and the other
// end of each session (BothEndsAgree) costs a binary search or a scan per
// end, quadratic per step in a large mesh.
type index struct {
	// held: an aggregate check (CheckSafety) built the index for the
	// invariants it runs; they use it as it is.
	held bool
	// connAt[id-connBase] is 1 + the position of connection id in Conns, 0
	// if there is none; nil when the ids are too sparse for a table (then
	// conn falls back to Snapshot.Conn's binary search).
	connBase ConnID
	connAt   []int32
	// nodeAt is the first position of each id in Nodes; nil for a few nodes,
	// which a scan finds as fast.
	nodeAt map[string]int
	// peers[i] says whether Nodes[i].Peers is sorted by id, so that a binary
	// search finds any peer: peersUnknown until a lookup needs it.
	peers []peerOrder
}

// peerOrder is what index knows of the order of one node's peers.
type peerOrder uint8

const (
	peersUnknown  peerOrder = iota
	peersSorted             // strictly increasing ids
	peersUnsorted           // found by a scan
)

// nodeIndexFrom is the number of nodes from which index keeps a map of them.
const nodeIndexFrom = 12

// index returns s.ix for s as it is now: rebuilt, unless an aggregate check
// holds it.
func (s *Snapshot) index() *index {
	if !s.ix.held {
		s.ix.build(s)
	}
	return &s.ix
}

// holdIndex builds s.ix for the invariants of one aggregate check, which
// calls releaseIndex when they are done.
func (s *Snapshot) holdIndex() {
	s.ix.build(s)
	s.ix.held = true
}

// releaseIndex ends holdIndex: the next check rebuilds the index.
func (s *Snapshot) releaseIndex() { s.ix.held = false }

// skipLocal reports whether an invariant of one node alone may skip node i:
// CheckSafety runs it, and Unchanged marks the node.
func (s *Snapshot) skipLocal(i int) bool {
	return s.ix.held && i < len(s.Unchanged) && s.Unchanged[i]
}

// build rebuilds ix for s.
func (ix *index) build(s *Snapshot) {
	ix.connAt = ix.connAt[:0]
	if n := len(s.Conns); n > 0 {
		lo, hi := s.Conns[0].ID, s.Conns[0].ID
		for i := range s.Conns {
			lo, hi = min(lo, s.Conns[i].ID), max(hi, s.Conns[i].ID)
		}
		if span := uint64(hi - lo); span < uint64(4*n+64) {
			ix.connBase = lo
			ix.connAt = slices.Grow(ix.connAt, int(span)+1)[:span+1]
			clear(ix.connAt)
			for i := range s.Conns {
				if at := &ix.connAt[s.Conns[i].ID-lo]; *at == 0 {
					*at = int32(i + 1)
				}
			}
		} else {
			ix.connAt = nil
		}
	}
	if len(s.Nodes) >= nodeIndexFrom {
		if ix.nodeAt == nil {
			ix.nodeAt = make(map[string]int, len(s.Nodes))
		}
		clear(ix.nodeAt)
		for i := range s.Nodes {
			if _, ok := ix.nodeAt[s.Nodes[i].ID]; !ok {
				ix.nodeAt[s.Nodes[i].ID] = i
			}
		}
	} else {
		ix.nodeAt = nil
	}
	ix.peers = slices.Grow(ix.peers[:0], len(s.Nodes))[:len(s.Nodes)]
	clear(ix.peers)
}

// conn is s.Conn(id).
func (ix *index) conn(s *Snapshot, id ConnID) *Conn {
	if ix.connAt == nil {
		return s.Conn(id)
	}
	if id < ix.connBase || uint64(id-ix.connBase) >= uint64(len(ix.connAt)) {
		return nil
	}
	if at := ix.connAt[id-ix.connBase]; at > 0 {
		return &s.Conns[at-1]
	}
	return nil
}

// node is s.Node(id) and its position in Nodes (-1 if none).
func (ix *index) node(s *Snapshot, id string) (*NodeView, int) {
	if ix.nodeAt == nil {
		for i := range s.Nodes {
			if s.Nodes[i].ID == id {
				return &s.Nodes[i], i
			}
		}
		return nil, -1
	}
	if i, ok := ix.nodeAt[id]; ok {
		return &s.Nodes[i], i
	}
	return nil, -1
}

// sortedPeers reports whether s.Nodes[i].Peers is sorted by strictly
// increasing id (as FillFromFSM leaves it).
func (ix *index) sortedPeers(s *Snapshot, i int) bool {
	if ix.peers[i] == peersUnknown {
		ix.peers[i] = peersUnsorted
		if peersAreSorted(s.Nodes[i].Peers) {
			ix.peers[i] = peersSorted
		}
	}
	return ix.peers[i] == peersSorted
}

// peer is s.Nodes[i].Peer(id): by binary search when the node's peers are
// sorted.
func (ix *index) peer(s *Snapshot, i int, id string) *Peer {
	n := &s.Nodes[i]
	if !ix.sortedPeers(s, i) {
		return n.Peer(id)
	}
	if k := searchPeer(n.Peers, id); k >= 0 {
		return &n.Peers[k]
	}
	return nil
}

// peersAreSorted reports whether ps's ids strictly increase.
func peersAreSorted(ps []Peer) bool {
	for k := 1; k < len(ps); k++ {
		if ps[k-1].ID >= ps[k].ID {
			return false
		}
	}
	return true
}

// searchPeer returns the position of id in ps, sorted by strictly
// increasing id, or -1.
func searchPeer(ps []Peer, id string) int {
	lo, hi := 0, len(ps)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		switch c := strings.Compare(ps[m].ID, id); {
		case c == 0:
			return m
		case c < 0:
			lo = m + 1
		default:
			hi = m
		}
	}
	return -1
}
