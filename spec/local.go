package spec

import (
	"errors"
	"fmt"

	"github.com/masterless-go/masterless/fsm"
)

// FromFSM snapshots one live fsm node. global maps its local connection ids
// to global ones (the identity when there is no network, as in single-node
// tests).
func FromFSM(n *fsm.Node, global func(fsm.ConnID) ConnID) NodeView {
	var out NodeView
	FillFromFSM(&out, n, global)
	return out
}

// FillFromFSM is FromFSM into dst, reusing dst's slices: the simulator
// snapshots a node after nearly every step.
func FillFromFSM(dst *NodeView, n *fsm.Node, global func(fsm.ConnID) ConnID) {
	dst.ID, dst.Incarnation, dst.Alive, dst.Handshaking = n.ID(), n.Incarnation(), true, n.Handshaking()
	dst.connBuf = n.AppendConns(dst.connBuf[:0])
	dst.Conns = dst.Conns[:0]
	for _, c := range dst.connBuf {
		dst.Conns = append(dst.Conns, ConnEnd{ConnStatus: c, Global: global(c.ID)})
	}
	dst.peerBuf = n.AppendPeers(dst.peerBuf[:0])
	dst.Peers = dst.Peers[:0]
	for _, p := range dst.peerBuf {
		q := Peer{PeerStatus: p}
		if p.SessionConn != 0 {
			q.SessionGlobal = global(p.SessionConn)
		}
		dst.Peers = append(dst.Peers, q)
	}
}

// CheckLocal runs the invariants one node can be held to on its own: no
// connection to itself, at most one session per peer that its peer table
// names, and a handshake count equal to its connections holding a
// handshake slot.
func CheckLocal(n *NodeView) error {
	s := &Snapshot{Nodes: []NodeView{*n}}
	return errors.Join(NoSelfConnection(s), AtMostOneSession(s), HandshakeCount(n))
}

// HandshakeCount: the node's count of handshaking connections (those
// holding a handshake slot, spec/PROTOCOL.md 3.6) equals the number of its
// connections that are not established plus its sessions the other end has
// not confirmed yet.
func HandshakeCount(n *NodeView) error {
	unconfirmed := map[fsm.ConnID]bool{}
	for _, p := range n.Peers {
		if p.SessionConn != 0 && !p.Confirmed {
			unconfirmed[p.SessionConn] = true
		}
	}
	k := 0
	for _, c := range n.Conns {
		if c.State != fsm.StateEstablished || unconfirmed[c.ID] {
			k++
		}
	}
	if k != n.Handshaking {
		return fmt.Errorf("handshake-count: %s reports %d connections handshaking, but %d are not established or not confirmed", n.ID, n.Handshaking, k)
	}
	return nil
}
