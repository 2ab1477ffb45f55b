package fsm

// The checks of the node's own bookkeeping: what its fast paths rely on
// without reading it again (the timers' table, the send queue's runs and
// counters, the leases against the queue's bounds). They read the whole
// state, so they cost about as much as what they check; the tests,
// transcripts and fuzz target run them after every step, and the simulator
// after a node's steps (sim/process.go), so that a sweep of the production
// rules also sweeps their bookkeeping. Nothing on a production path calls
// them.

import (
	"fmt"
	"slices"
	"time"

	"github.com/masterless-go/masterless/wire"
)

// CheckTimers verifies what NextDeadline promises, owner by owner: every
// deadline in the node's state (a handshake or peer timeout, a heartbeat, a
// dial's or Connect request's deadline, a peer's redial, reconnect grace or
// linger) has a live entry in the timers no later than it, and NextDeadline
// is no later than any live entry. A Tick visits only armed owners, so a
// deadline this misses would never run: the full scan that Tick replaced
// hid such omissions, this finds them.
func (n *Node) CheckTimers() error {
	if n.shutdown {
		if n.next != never {
			return fmt.Errorf("shut down, but next deadline %v", n.next)
		}
		return nil
	}
	var err error
	// armed checks one owner, named by the caller only when it fails (the
	// simulator runs this after every step: names made for owners that
	// pass were most of its cost): a deadline already past when the step
	// ended (made due by it) may be armed for now.
	armed := func(tm *timer, inHeap bool, due time.Duration) error {
		switch {
		case err != nil:
		case !tm.set || !inHeap:
			return fmt.Errorf("is due at %v but has no timer", due)
		case tm.at > max(due, n.now):
			return fmt.Errorf("is due at %v but its timer is at %v", due, tm.at)
		case n.next > tm.at:
			return fmt.Errorf("has a timer at %v but NextDeadline is %v", tm.at, n.next)
		}
		return nil
	}
	for id, c := range n.conns {
		due := c.openedAt + n.cfg.HandshakeTimeout
		if c.state == StateEstablished {
			due = min(n.heartbeatAt(c), n.peerTimeoutAt(c))
			if c.ackBy != 0 {
				due = min(due, c.ackBy)
			}
		}
		if e := armed(&c.timer, inHeap(&n.timers.conns, c, c.timer.at), due); e != nil {
			err = fmt.Errorf("c%d (%s) %w", id, c.state, e)
		}
	}
	for id, d := range n.dials {
		if d.conn == nil {
			if e := armed(&d.timer, inHeap(&n.timers.dials, d, d.timer.at), d.startedAt+n.cfg.HandshakeTimeout); e != nil {
				err = fmt.Errorf("dial d%d %w", id, e)
			}
		}
	}
	for id, r := range n.reqs {
		if e := armed(&r.timer, inHeap(&n.timers.reqs, r, r.timer.at), r.deadline); e != nil {
			err = fmt.Errorf("request r%d %w", id, e)
		}
	}
	for id, p := range n.peers {
		due := never
		if p.away {
			due = p.awaySince + n.cfg.ReconnectGrace
			if p.session != nil && n.now >= due {
				// The grace ran out while the peer is back on a session
				// not yet confirmed: peerTimers waits for that session,
				// at most a handshake timeout more.
				due += n.cfg.HandshakeTimeout
			}
		}
		if p.kept && p.session == nil && p.dialing == nil && p.handshakes == 0 && p.redialAddr() != "" {
			// Its redial is due, unless a dial to the same address holds it
			// back and will wake it when it ends.
			if d := n.dialsByAddr[p.redialAddr()]; d == nil || !slices.Contains(d.blocked, p) {
				due = min(due, n.redialDue(p))
			}
		}
		if !p.kept && !p.away && p.session == nil && p.handshakes == 0 && p.dialing == nil && len(p.waiters) == 0 && p.out.count == 0 {
			due = min(due, p.lingerUntil)
		}
		if p.disc.byDiscovery && p.session == nil {
			if m := n.disc.members[p.id]; m != nil && !m.left && !m.forgotten {
				due = min(due, m.heardAt+n.cfg.MemberTimeout)
			}
		}
		if due != never {
			if e := armed(&p.timer, inHeap(&n.timers.peers, p, p.timer.at), due); e != nil {
				err = fmt.Errorf("peer %s %w", id, e)
			}
		}
	}
	if err == nil {
		err = n.checkRedialTurn()
	}
	if g := min(n.discoveryDeadline(), n.seedDeadline()); err == nil && n.next > g {
		err = fmt.Errorf("the gossip or kept-address timer is at %v but NextDeadline is %v", g, n.next)
	}
	return err
}

// redialDue is when kept peer p's redial is due: its backoff, and for a
// peer kept by discovery also the leader's delay and its turn in the queue
// (a queued peer other than the head is woken by the queue, never by a timer
// of its own; the head is armed for its turn while a dial slot is free).
func (n *Node) redialDue(p *peer) time.Duration {
	if !p.disc.byDiscovery {
		if p.redialQueued {
			return never // it waits for its turn: checkRedialTurn
		}
		return p.nextDialAt
	}
	q := &n.disc
	if p.disc.queued {
		if q.queue[0] != p || q.inFlight >= n.cfg.DiscoveryDials {
			return never
		}
		return max(p.nextDialAt, q.nextAt)
	}
	due := p.nextDialAt
	if n.cfg.ID > p.id {
		due = max(due, p.disc.since+n.cfg.LeaderDelay)
	}
	return due
}

// checkRedialTurn checks that the automatic dials waiting for a turn
// (redials.go) cannot wait for ever: while the bound leaves room, the first
// of them that still needs its dial is about to get it (its timer or retry
// is due, or a dial to its address holds it back and wakes it when it
// ends), or those ahead of it go at the Tick that is due. The head of the
// slow line is held to it when nothing else waits and the slow dials leave
// room.
func (n *Node) checkRedialTurn() error {
	slow := 0
	for _, d := range n.dials {
		if d.slow {
			slow++
		}
	}
	if slow != n.slowDials || slow > n.slowShare() {
		return fmt.Errorf("%d slow dials in flight, counted %d, at most %d allowed", slow, n.slowDials, n.slowShare())
	}
	if len(n.dials) >= n.cfg.MaxRedials {
		return nil
	}
	if live(n, n.redials) || n.slowDials >= n.slowShare() {
		return checkLine(n, n.redials, "")
	}
	if len(n.redials) > 0 && live(n, n.redialsSlow) {
		// The other line holds only waits that no longer need a dial: the
		// Tick that is due skips them and wakes the slow line's head.
		if n.next > n.now {
			return fmt.Errorf("%d slow redials wait behind %d others that no longer need one, with room for a dial, but no Tick is due (next %v)", len(n.redialsSlow), len(n.redials), n.next)
		}
		return nil
	}
	return checkLine(n, n.redialsSlow, "slow ")
}

// live reports whether some wait of line q still needs its dial.
func live(n *Node, q []redialWait) bool {
	for _, w := range q {
		if !n.redialStale(w) {
			return true
		}
	}
	return false
}

// checkLine is checkRedialTurn's check of line q, which has room to go.
func checkLine(n *Node, q []redialWait, name string) error {
	i := 0
	for i < len(q) && n.redialStale(q[i]) {
		i++
	}
	switch {
	case i == len(q):
		return nil // nothing waits: they go at the next turn asked for
	case i > 0 && n.next > n.now:
		return fmt.Errorf("%d %sredials wait behind %d that no longer need one, with room for a dial, but no Tick is due (next %v)", len(q)-i, name, i, n.next)
	case i > 0:
		return nil
	}
	if p := q[0].peer; p != nil {
		due := max(n.now, p.nextDialAt)
		if !p.timer.set || p.timer.at > due || n.next > p.timer.at {
			return fmt.Errorf("peer %s heads the %sredial queue with room for a dial, but its timer (set %t, at %v; next %v) is not due by %v", p.id, name, p.timer.set, p.timer.at, n.next, due)
		}
		return nil
	}
	if s := q[0].seed; s.nextAt == 0 || s.nextAt > n.now || n.next > s.nextAt {
		return fmt.Errorf("kept address %s heads the %sredial queue with room for a dial, but its retry is at %v (next %v)", s.addr, name, s.nextAt, n.next)
	}
	return nil
}

func inHeap[T comparable](h *deadlineHeap[T], v T, at time.Duration) bool {
	for _, e := range h.es {
		if e.v == v && e.at == at {
			return true
		}
	}
	return false
}

// CheckStreams verifies the bookkeeping the send queue relies on without
// reading its frames on the way (outqueue.go): every outgoing stream's
// tail is the end offset of its last run (or of the last message
// acknowledged, when none waits), each run's end is the one before it plus
// its cost, its frames in the buffer carry its messages and payload bytes,
// the counters match the runs, and the send cursor stands where the sent
// count says, at the buffer offset and stream offset of its message; and
// the peer a Send remembers (sendPeer) is the record the node holds for
// that id, not a forgotten one, and so is each peer a SendMany remembers
// (manyPeer) that is not marked forgotten; and each incoming stream's credit
// is within MaxWindow (checkWindow).
func (n *Node) CheckStreams() error {
	if p := n.sentTo; p != nil && n.peers[p.id] != p {
		return fmt.Errorf("the peer of the latest Send, %s, is not the node's record for that id", p.id)
	}
	for i, p := range n.manyTo {
		if p != nil && !p.forgotten && n.peers[p.id] != p {
			return fmt.Errorf("peer %d of the latest SendMany, %s, is neither forgotten nor the node's record for that id", i, p.id)
		}
	}
	for id, p := range n.peers {
		if err := p.out.check(); err != nil {
			return fmt.Errorf("stream to %s: %w", id, err)
		}
		if err := n.checkLease(p); err != nil {
			return fmt.Errorf("lease toward %s: %w", id, err)
		}
	}
	for id, in := range n.inbound {
		if err := n.checkWindow(in); err != nil {
			return fmt.Errorf("stream from %s: %w", id, err)
		}
	}
	return nil
}

// checkWindow checks the credit granted to in's peer against MaxWindow
// (window.go): at most MaxWindow past what the user consumed, unless it
// only covers what already arrived. (A window past MaxWindow shows there at
// the next grant.)
func (n *Node) checkWindow(in *inStream) error {
	if n.cfg.mutation.noCredit() {
		return nil // unlimited credit on purpose: that control is the load checker's (MutationNoCredit)
	}
	if in.granted > in.received && in.granted > in.consumed+uint64(n.cfg.MaxWindow) {
		return fmt.Errorf("credit granted past MaxWindow %d: to %d, with %d consumed", n.cfg.MaxWindow, in.granted, in.consumed)
	}
	return nil
}

// checkLease checks p's lease against the queue's bounds: its room of both
// kinds and the queue's messages within QueueMessages and QueueBytes, the
// answer room within the slack, and no producers' room on a lease that
// never gave the producers any.
func (n *Node) checkLease(p *peer) error {
	o, l := &p.out, &p.out.lease
	if l.gen == 0 {
		if l.msgs != 0 || l.cost != 0 || l.amsgs != 0 || l.acost != 0 {
			return fmt.Errorf("no lease, yet %d/%d messages and %d/%d cost held", l.msgs, l.amsgs, l.cost, l.acost)
		}
		return nil
	}
	if k := o.count + l.msgs + l.amsgs; k > n.cfg.QueueMessages {
		return fmt.Errorf("%d messages queued and %d+%d held, past the bound of %d", o.count, l.msgs, l.amsgs, n.cfg.QueueMessages)
	}
	if b := uint64(o.bytes) + l.cost + l.acost; b > uint64(n.cfg.QueueBytes) {
		return fmt.Errorf("%d bytes queued and %d+%d cost held, past the bound of %d", o.bytes, l.cost, l.acost, n.cfg.QueueBytes)
	}
	if l.amsgs > n.answerMsgs || l.acost > n.answerCost {
		return fmt.Errorf("answer room %d messages, %d cost, past the slack of %d, %d", l.amsgs, l.acost, n.answerMsgs, n.answerCost)
	}
	if !l.producers && (l.msgs != 0 || l.cost != 0) {
		return fmt.Errorf("room for producers (%d messages) on a lease that answers asked for", l.msgs)
	}
	return nil
}

// check is CheckStreams for one stream.
func (o *outStream) check() error {
	if len(o.spares) > maxSpares {
		return fmt.Errorf("%d spare segments, more than %d", len(o.spares), maxSpares)
	}
	for _, g := range o.spares {
		if len(g.b) != 0 || slices.Contains(o.segs, g) {
			return fmt.Errorf("a spare segment holds %d bytes or is in use", len(g.b))
		}
	}
	end, count, bytes, reserved, sent := o.ackedEnd, 0, 0, uint64(0), -1
	seg := 0 // the segment of the last run of frames
	for i := range o.runs {
		r := &o.runs[i]
		if r.count < 1 {
			return fmt.Errorf("run %d holds %d messages", i, r.count)
		}
		if r.shared != nil && r.count != 1 {
			return fmt.Errorf("run %d of a shared copy holds %d messages", i, r.count)
		}
		if i == o.cur.run {
			sent = count + o.cur.in
			if o.cur.in > r.count {
				return fmt.Errorf("cursor at message %d of run %d of %d", o.cur.in, i, r.count)
			}
			size, n := 0, 0
			if r.shared == nil {
				size, n = skipFrames(r.seg, r.at, o.cur.in)
			} else if o.cur.in == 1 {
				n = r.n
			}
			if o.cur.in > 0 && r.shared == nil && o.cur.at != r.at+size {
				return fmt.Errorf("cursor at segment offset %d, its message at %d", o.cur.at, r.at+size)
			}
			if want := end + uint64(n) + uint64(o.cur.in)*msgCost; o.cur.end != want {
				return fmt.Errorf("cursor says the last message sent ends at %d, it ends at %d", o.cur.end, want)
			}
		}
		if r.shared == nil {
			// Runs are in their segments' order: look from the last one's on.
			for seg < len(o.segs) && o.segs[seg] != r.seg {
				seg++
			}
			if seg == len(o.segs) {
				return fmt.Errorf("run %d: its segment is not one of the stream's, or comes before the last run's", i)
			}
			if r.at+r.size() > len(r.seg.b) {
				return fmt.Errorf("run %d: frames to %d, past its segment's %d bytes", i, r.at+r.size(), len(r.seg.b))
			}
			size, n := skipFrames(r.seg, r.at, r.count)
			if n != r.n || size != r.size() {
				return fmt.Errorf("run %d: %d payload bytes counted, %d in its frames (%d bytes of segment)", i, r.n, n, size)
			}
			for j, at := 0, r.at; j < r.count; j++ {
				m := frameAt(r.seg, at)
				if len(m) > int(r.maxN) {
					return fmt.Errorf("run %d: message %d has %d payload bytes, more than the run's largest, %d", i, j, len(m), r.maxN)
				}
				at += wire.HeaderSize + len(m)
			}
		} else if r.n > int(r.maxN) {
			return fmt.Errorf("run %d: a shared copy of %d bytes, more than the run's largest, %d", i, r.n, r.maxN)
		}
		end += r.cost()
		if r.end != end {
			return fmt.Errorf("run %d ends at %d, its messages at %d", i, r.end, end)
		}
		count += r.count
		bytes += r.n
		if r.reserve {
			reserved += r.cost()
		}
	}
	if len(o.runs) == 0 && (o.cur.run != 0 || o.cur.in != 0 || o.cur.end != o.ackedEnd) {
		return fmt.Errorf("no message, cursor %+v (acknowledged up to %d)", o.cur, o.ackedEnd)
	}
	if len(o.runs) == 0 {
		sent = 0
	}
	switch {
	case o.tail != end:
		return fmt.Errorf("tail %d, but its last message ends at %d", o.tail, end)
	case count != o.count:
		return fmt.Errorf("%d messages counted, %d in its runs", o.count, count)
	case bytes != o.bytes:
		return fmt.Errorf("%d payload bytes counted, %d in its messages", o.bytes, bytes)
	case reserved != o.reserved:
		return fmt.Errorf("%d reserved counted, %d in its producers' runs", o.reserved, reserved)
	case sent != o.sent:
		return fmt.Errorf("%d sent, the cursor %+v stands at message %d", o.sent, o.cur, sent)
	case o.everSent < o.sent || o.everSent > o.count:
		return fmt.Errorf("%d ever sent, %d sent, %d queued", o.everSent, o.sent, o.count)
	}
	return nil
}
