package fsm

import (
	"cmp"
	"fmt"
	"slices"
	"time"

	"github.com/masterless-go/masterless/wire"
)

// tick runs every deadline that has passed and arms the next ones. The
// deadlines themselves live in the state (a connection's openedAt, lastRecv
// and lastPing, a dial's startedAt, a peer's nextDialAt), and each owner's
// timer (deadlines.go) only says when to look, so a Tick is safe at any time:
// an owner looked at early finds nothing due and arms again. Only the owners
// due are looked at, kind by kind, each kind in id order.
//
// lag is the adapter's measure of how late its reading of the network is
// (Tick.Lag): it counts as lateness as a late Tick does.
func (n *Node) tick(lag time.Duration) {
	if n.shutdown {
		n.resetTimers()
		return
	}
	if n.cfg.mutation.ignoreLag() {
		lag = 0 // deliberately wrong: see MutationIgnoreLag
	}
	late := max(lag, 0) // how late this Tick is past the deadline it was due at, or the adapter's reading (session.go, peerTimeoutAt)
	if n.next != never && n.now > n.next {
		late = max(late, n.now-n.next)
	}
	for _, c := range n.dueConns() {
		if n.conns[c.id] != c {
			continue // closed by an earlier step of this tick
		}
		if c.state == StateEstablished {
			n.sessionTimers(c, late)
			continue
		}
		deadline := c.openedAt + n.cfg.HandshakeTimeout
		if n.now >= deadline {
			n.closeConn(c, wire.CodeHandshake, fmt.Errorf("%w: c%d %s, in state %s after %v", ErrHandshakeTimeout, c.id, c.where(), c.state, n.now-c.openedAt))
			n.traceTimeout(c)
			continue
		}
		n.armConn(c, deadline)
	}
	for _, d := range n.dueDials() {
		if d.conn != nil || n.dials[d.id] != d {
			continue // its connection's own deadline covers it
		}
		if deadline := d.startedAt + n.cfg.HandshakeTimeout; n.now >= deadline {
			n.endDial(d, fmt.Errorf("%w: dialing %s took longer than %v", ErrHandshakeTimeout, d.addr, n.cfg.HandshakeTimeout))
		} else {
			n.armDial(d, deadline)
		}
	}
	for _, r := range n.dueRequests() {
		if n.now >= r.deadline {
			n.detachRequest(r)
			n.finishRequest(r, "", fmt.Errorf("%w: connecting to %s", ErrHandshakeTimeout, r.addr))
		} else {
			n.armRequest(r, r.deadline)
		}
	}
	for _, p := range n.duePeers() {
		if n.peers[p.id] == p {
			n.inPeerTimers = p
			n.peerTimers(p)
			n.inPeerTimers = nil
		}
	}
	n.discoveryTick()
	n.seedTimers()
	n.redialWake() // a head that stopped needing its dial since its turn came is skipped
	n.settleTimers()
}

func (n *Node) stop() {
	if n.shutdown {
		return
	}
	n.announceLeave() // MEMBERS left, before each BYE (discovery.go)
	n.shutdown = true // first: closing sessions below must not announce or redial
	for _, c := range n.sortedConns() {
		if p := c.peer; p != nil && p.session == c {
			n.finalAck(p)
		}
		n.closeConn(c, wire.CodeShutdown, ErrClosed)
	}
	for _, r := range n.sortedRequests() {
		n.finishRequest(r, "", ErrClosed)
	}
	clear(n.dials)
	clear(n.dialsByAddr)
	n.slowDials = 0
	n.ended, n.peers = n.peers, make(map[string]*peer)
	// The records left peers: so do the lookups that keep them (sendPeer,
	// manyPeer), which hold only the node's records or forgotten ones.
	n.sentTo = nil
	clear(n.manyTo)
	n.resetTimers()
}

// Map iteration order is random in Go; every loop over a table that can emit
// actions goes through sortedValues so the same inputs give the same outputs.
// (Tick does not: it visits only what is due, deadlines.go.)
func sortedValues[K cmp.Ordered, V any](m map[K]V) []V {
	keys := make([]K, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	out := make([]V, len(keys))
	for i, k := range keys {
		out[i] = m[k]
	}
	return out
}

func (n *Node) sortedConns() []*conn       { return sortedValues(n.conns) }
func (n *Node) sortedDials() []*dial       { return sortedValues(n.dials) }
func (n *Node) sortedRequests() []*request { return sortedValues(n.reqs) }
func (n *Node) sortedPeers() []*peer       { return sortedValues(n.peers) }
