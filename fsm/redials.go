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
// Targets that do not answer. A dial to an address whose host is gone,
// partitioned away or blackholed hangs until the handshake timeout, while
// a refused one ends at once. Were the waits one line, a node keeping many
// such peers would fill its slots with their dials, a handshake timeout
// each, and a peer that came back would wait behind all of them, up to a
// handshake timeout for each MaxRedials of them queued before it.
// So a wait whose last attempt reached no node for half a handshake
// timeout or more (unanswered), or whose session ended in silence (the
// peer timeout, sessionEnded), is slow: the slow waits have a line of their
// own, their dials hold at most half of the slots (slowShare), and a slow
// wait goes only while no other waits. The others go as before, passing
// the slow line.
//
// The waits of each line are first come, first served, and an entry that
// no longer needs its dial when its turn comes is skipped: a peer that got a session, is
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

// queued returns w's flag: whether it is in a line.
func (w redialWait) queued() *bool {
	if w.peer != nil {
		return &w.peer.redialQueued
	}
	return &w.seed.queued
}

// slow reports whether w waits in the slow line: its target's last
// attempt reached no node for half a handshake timeout or more. The flag
// changes only when a dial toward w's target ends while w is in no line (a
// Connect's dial to a kept address can end while the address's retry
// waits), so a wait stays in the line it joined: one that changed lines
// while queued was woken as the head of one and refused as a wait of the
// other, for ever (TestSeedsRetryKeepsItsLine, sim).
func (w redialWait) slow() bool {
	if w.peer != nil {
		return w.peer.redialSlow
	}
	return w.seed.slow
}

// slowWait reports whether w is slow (redialWait.slow), for this node.
func (n *Node) slowWait(w redialWait) bool {
	return w.slow() && !n.cfg.mutation.oneRedialLine() // deliberately wrong: see MutationOneRedialLine
}

// line returns the line w waits in, or would.
func (n *Node) line(w redialWait) *[]redialWait {
	if n.slowWait(w) {
		return &n.redialsSlow
	}
	return &n.redials
}

// slowShare is how many slow dials may be in flight at once: half of
// MaxRedials, at least one.
func (n *Node) slowShare() int { return max(n.cfg.MaxRedials/2, 1) }

// unanswered reports whether dial d, ending now, held its slot for half a
// handshake timeout or more without reaching a node: the next attempt at
// its target is slow.
func (n *Node) unanswered(d *dial) bool {
	return d.reached == nil && n.now-d.startedAt >= n.cfg.HandshakeTimeout/2
}

// redialTurn reports whether the automatic dial w may start now: fewer
// than MaxRedials dials are in flight and nothing waits before it in its
// line; for a slow wait also fewer than slowShare slow dials are in flight
// and nothing waits in the other line. If not, w waits in its line, and
// redialWake gives it its turn.
func (n *Node) redialTurn(w redialWait) bool {
	n.redialSkipStale()
	q := n.line(w)
	ok := len(n.dials) < n.cfg.MaxRedials && (len(*q) == 0 || (*q)[0] == w)
	if ok && n.slowWait(w) {
		ok = n.slowDials < n.slowShare() && len(n.redials) == 0
	}
	if !ok {
		if f := w.queued(); !*f {
			*f = true
			*q = append(*q, w)
		}
		return false
	}
	if len(*q) > 0 { // w is the head
		n.redialPop(q)
	}
	return true
}

// redialStarted counts d, the dial w's turn started, among the slow dials
// if w is slow.
func (n *Node) redialStarted(d *dial, w redialWait) {
	if n.slowWait(w) {
		d.slow = true
		n.slowDials++
	}
}

// redialWake gives the first waiting dial its turn when the bound allows
// one more: the head of the line of the others first, else the head of the
// slow line if the slow dials leave room. A peer's timer is armed for now,
// an address is due now. It runs when a dial ended and after an automatic
// dial started (the next one may go too).
func (n *Node) redialWake() {
	n.redialSkipStale()
	if len(n.dials) >= n.cfg.MaxRedials {
		return
	}
	var h redialWait
	switch {
	case len(n.redials) > 0:
		h = n.redials[0]
	case len(n.redialsSlow) > 0 && n.slowDials < n.slowShare():
		h = n.redialsSlow[0]
	default:
		return
	}
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
	for _, q := range []*[]redialWait{&n.redials, &n.redialsSlow} {
		for len(*q) > 0 && n.redialStale((*q)[0]) {
			p := (*q)[0].peer
			n.redialPop(q)
			if p != nil && n.peers[p.id] == p && p.kept && p.session == nil && !n.shutdown {
				n.armPeer(p, max(n.now, p.nextDialAt))
			}
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

// redialPop takes the head off line q.
func (n *Node) redialPop(q *[]redialWait) {
	*(*q)[0].queued() = false
	(*q)[0] = redialWait{}
	*q = (*q)[1:]
	if len(*q) == 0 {
		*q = nil // let go of the array a burst grew
	}
}
