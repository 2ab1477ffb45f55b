package spec

import (
	"fmt"

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

	// Scratch for AtMostOneSession, reused from one node and one check to
	// the next: the checkers of one Snapshot must not run concurrently.
	tally map[string]sessionTally
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
	// Dialable: the node knows an address to redial the peer at (it heard
	// the peer's HELLO since it last forgot it). The observer infers it
	// from the events it fed; fsm.PeerStatus.Addr now shows the address
	// itself, and reading it instead is a pending simplification. A node
	// that keeps a peer it cannot dial can only wait for the peer to come
	// to it.
	Dialable bool
}

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
		s += fmt.Sprintf(" [%s kept=%t dialable=%t sess=g%d]", p.ID, p.Kept, p.Dialable, p.SessionGlobal)
	}
	return s
}
