package spec

import (
	"errors"
	"fmt"

	"github.com/masterless-go/masterless/fsm"
)

// FromFSM snapshots one live fsm node. global maps its local connection ids
// to global ones (the identity when there is no network, as in single-node
// tests).
func FromFSM(n *fsm.Node, global func(fsm.ConnID) ConnID) Node {
	out := Node{ID: n.ID(), Incarnation: n.Incarnation(), Alive: true, Handshaking: n.Handshaking()}
	conns := n.Conns()
	out.Conns = make([]ConnEnd, len(conns))
	for i, c := range conns {
		out.Conns[i] = ConnEnd{ConnStatus: c, Global: global(c.ID)}
	}
	peers := n.Peers()
	out.Peers = make([]Peer, len(peers))
	for i, p := range peers {
		out.Peers[i] = Peer{PeerStatus: p}
		if p.Session != 0 {
			out.Peers[i].SessionGlobal = global(p.Session)
		}
	}
	return out
}

// CheckLocal runs the invariants one node can be held to on its own: no
// connection to itself, at most one session per peer that its peer table
// names, and a handshake count equal to its connections not yet established.
func CheckLocal(n *Node) error {
	s := &Snapshot{Nodes: []Node{*n}}
	return errors.Join(NoSelfConnection(s), AtMostOneSession(s), HandshakeCount(n))
}

// HandshakeCount: the node's count of handshaking connections equals the
// number of its connections that are not established.
func HandshakeCount(n *Node) error {
	k := 0
	for _, c := range n.Conns {
		if c.State != fsm.StateEstablished {
			k++
		}
	}
	if k != n.Handshaking {
		return fmt.Errorf("handshake-count: %s reports %d connections handshaking, but %d are not established", n.ID, n.Handshaking, k)
	}
	return nil
}
