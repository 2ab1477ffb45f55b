package fsm

// Redials in flight (spec/PROTOCOL.md, section 5, "Redials in flight";
// issue 10, item 4). The dials a node starts by itself, the redials of kept
// peers and the retries of kept addresses, wait for a turn: a node has at
// most Config.MaxRedials dials of any kind in flight when one of them
// starts. A user's Connect dials at once and is counted, so redials wait
// while the user's own dials fill the bound; discovery dials have their own
// bound (discovery.go) and are left to it.
//
// Why. Each dial holds a descriptor at each end until it becomes a session
// or fails, at most a handshake timeout. Without a bound, a node that lost
// its sessions with hundreds of kept peers (a mesh forming on a loaded
// machine, a restart, a partition healing) redialed all of them at once as
// their backoffs passed. In the 256-node example on a loaded two-core
// machine that ran the processes out of descriptors, their listeners could
// not accept, the dials timed out, were retried, and the mesh never formed:
// 570,000 failed handshakes in 9 minutes in one of its five processes.
//
// The waits are first come, first served, and an entry that no longer needs
// its dial when its turn comes is skipped: a peer that got a session, is
// dialing or handshaking, was forgotten, is no longer kept, is now kept by
// discovery, has no address to be redialed at or one being dialed already
// (it waits for that dial instead); an address that was reached, dropped,
// or is being dialed already. A peer waits in the queue at most once, and so does an
// address.

// redialWait is one automatic dial waiting for its turn: a kept peer's
// redial (peer) or a kept address's retry (seed).
type redialWait struct {
	peer *peer
	seed *seedAddr
}

// queued returns w's flag: whether it is in the queue.
func (w redialWait) queued() *bool {
	if w.peer != nil {
		return &w.peer.redialQueued
	}
	return &w.seed.queued
}

// redialTurn reports whether the automatic dial w may start now: fewer
// than MaxRedials dials are in flight and nothing waits before it. If not,
// w waits in the queue, and redialWake gives it its turn.
func (n *Node) redialTurn(w redialWait) bool {
	n.redialSkipStale()
	q := n.redials
	if len(n.dials) >= n.cfg.MaxRedials || (len(q) > 0 && q[0] != w) {
		if f := w.queued(); !*f {
			*f = true
			n.redials = append(n.redials, w)
		}
		return false
	}
	if len(q) > 0 { // w is the head
		n.redialPop()
	}
	return true
}

// redialWake gives the first waiting dial its turn when the bound allows
// one more: a peer's timer is armed for now, an address is due now. It
// runs when a dial ended and after an automatic dial started (the next one
// may go too).
func (n *Node) redialWake() {
	n.redialSkipStale()
	if len(n.redials) == 0 || len(n.dials) >= n.cfg.MaxRedials {
		return
	}
	h := n.redials[0]
	if p := h.peer; p != nil {
		n.armPeer(p, max(n.now, p.nextDialAt))
		return
	}
	h.seed.nextAt = n.now
	n.lowerNext(n.now)
}

// redialSkipStale drops the waits at the head of the queue that no longer
// need a dial (see the top of this file). A kept peer dropped so is handed
// back to its own timer, whose redialIfDue decides anew: one held back by a
// dial to its address waits for that dial (dial.blocked); one that dials or
// handshakes meanwhile is looked at again when that ends.
func (n *Node) redialSkipStale() {
	for len(n.redials) > 0 && n.redialStale(n.redials[0]) {
		p := n.redials[0].peer
		n.redialPop()
		if p != nil && n.peers[p.id] == p && p.kept && p.session == nil && !n.shutdown {
			n.armPeer(p, max(n.now, p.nextDialAt))
		}
	}
}

// redialStale reports whether w no longer needs the dial it waits for.
func (n *Node) redialStale(w redialWait) bool {
	if n.shutdown {
		return true
	}
	if p := w.peer; p != nil {
		// (Each of these makes redialIfDue return before it asks for a
		// turn, without arming the peer's timer: left at the head, the
		// peer would hold up the queue.)
		addr := p.redialAddr()
		return n.peers[p.id] != p || !p.kept || p.session != nil || p.dialing != nil || p.handshakes > 0 ||
			p.disc.byDiscovery || addr == "" || n.dialsByAddr[addr] != nil
	}
	s := w.seed
	return n.seeds[s.addr] != s || n.dialsByAddr[s.addr] != nil
}

// redialPop takes the head off the queue.
func (n *Node) redialPop() {
	*n.redials[0].queued() = false
	n.redials[0] = redialWait{}
	n.redials = n.redials[1:]
	if len(n.redials) == 0 {
		n.redials = nil // let go of the array a burst grew
	}
}
