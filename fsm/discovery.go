package fsm

import (
	"cmp"
	"fmt"
	"slices"
	"time"

	"github.com/masterless-go/masterless/wire"
)

// Discovery (spec/PROTOCOL.md, section 8): nodes that enable it tell each
// other, over their sessions, which members they know, and keep every member
// they learn of, so that a node started with one seed address ends up with a
// session to every member.
//
// Negotiation. A node with Config.Discovery sets wire.FeatureMembers in its
// preamble (the connection layer writes it, and copies the peer's bits into
// the HELLO it hands over as Frame.Features). MEMBERS frames go only over a
// session whose two ends both set the bit (conn.members); a v2 peer without
// discovery never sees one, and a MEMBERS frame on any other connection is a
// protocol error.
//
// What travels. On every new discovery session each end sends its full view:
// itself, every member it has a discovery session with, and the members it
// knows to have left (not yet expired). Afterwards it forwards what was news
// to it (a new member, a newer incarnation, a leave) to its other discovery
// sessions, and every GossipInterval it pushes its full view to one session
// drawn at random (anti-entropy: a node that forgot a member, or missed a
// delta, learns it again). Only members with a live session are advertised
// alive, so a dead member stops being advertised once its sessions time out.
//
// Learning. An entry is news when its member is unknown, or its incarnation
// is greater than the one recorded; an entry for the recorded incarnation is
// news only when it says left and the record does not. A left record stays
// left (a late "alive" for the same incarnation changes nothing). A member
// not heard of (no session, and no entry saying it lives, which only a node
// with a session with it sends) for MemberTimeout is forgotten; a left
// record is dropped after MemberTimeout too; a forgotten one stays as a
// tombstone for another MemberTimeout, so that a late entry about that
// incarnation, or an older one, does not bring it back (TLC found that: a
// node forgot a crashed newer incarnation, then re-learned the older, left
// one as alive from a stale entry); after that an entry saying it lives is
// news again, so a member forgotten while it lived (across a partition
// longer than MemberTimeout) is learned again. The table holds at most
// MaxMembers records.
//
// What a node does with a live member: it keeps it (as Keep(id, true) would,
// marked as kept by discovery), at the address of its newest incarnation. If
// it holds a session with an older incarnation, it closes it at once (BYE
// replaced), without waiting for the peer timeout; on an authenticated mesh
// that news can only come from the member itself (learn: first-hand beats
// hearsay), so a restarted member's HELLO replaces the session instead.
// With a member that left: it stops keeping it, if discovery was what kept
// it, so it is never redialed (a peer its user keeps stays kept).
//
// Who dials. Of a discovered pair only the follower (the smaller id) dials at
// once; the leader dials only if the pair still has no session, and no
// connection handshaking, LeaderDelay after it wanted one (the follower
// cannot reach it, or is slow). So a pair whose follower reaches the leader
// opens one TCP connection, and the dedup rule settles the rare pair where
// both dial. Discovery dials are paced per node: at most DiscoveryDials in
// flight, successive ones at least DiscoveryGap/2 apart (each gap drawn from
// [DiscoveryGap/2, DiscoveryGap) with the node's seeded generator), in the
// order they became due. A user's Connect and the redials of peers the user
// keeps are not paced.

// Discovery defaults (zero values of the Config fields).
const (
	DefaultDiscoveryDials = 8
	DefaultDiscoveryGap   = 20 * time.Millisecond
	DefaultGossipInterval = 2 * time.Second
	DefaultMemberTimeout  = 30 * time.Second
	DefaultMaxMembers     = 4096
	// The default LeaderDelay is the handshake timeout.
)

// member is one record of the member table.
type member struct {
	id   string
	inc  uint64
	addr string
	left bool
	// forgotten: not heard of for MemberTimeout (ActMemberGone). The record
	// stays as a tombstone for another MemberTimeout, neither advertised
	// nor listed, so that a late entry about this incarnation or an older
	// one does not bring it back; a newer incarnation, or a leave, is news.
	forgotten bool
	heardAt   time.Duration // last news of it, the end of its last session, or when it was forgotten
	from      string        // the node whose entry the record holds (otherAddress)
}

// discovery is the node's discovery state.
type discovery struct {
	members  map[string]*member
	inFlight int           // discovery dials not yet ended
	nextAt   time.Duration // no discovery dial before this
	queue    []*peer       // peers waiting for their turn to dial, in order
	gossipAt time.Duration // next push of the full view; never while no discovery session exists
	scratch  []wire.Member
}

// peerDisc is a peer's discovery state.
type peerDisc struct {
	byDiscovery bool          // kept because discovery found it (not by the user)
	since       time.Duration // when its session was last wanted and missing: the leader waits LeaderDelay from here
	queued      bool          // in discovery.queue
	// otherAddr: the peer's addr is an address other members named at an
	// incarnation not newer than its record's (otherAddress), not one the
	// user dialed.
	otherAddr bool
}

func (c *Config) discoveryDefaults() error {
	for _, f := range []struct {
		name string
		v    int64
	}{
		{"DiscoveryDials", int64(c.DiscoveryDials)},
		{"DiscoveryGap", int64(c.DiscoveryGap)},
		{"GossipInterval", int64(c.GossipInterval)},
		{"MemberTimeout", int64(c.MemberTimeout)},
		{"LeaderDelay", int64(c.LeaderDelay)},
		{"MaxMembers", int64(c.MaxMembers)},
	} {
		if f.v < 0 {
			return fmt.Errorf("%w: negative discovery setting %s (0 keeps the default)", ErrBadConfig, f.name)
		}
	}
	if c.DiscoveryDials == 0 {
		c.DiscoveryDials = DefaultDiscoveryDials
	}
	if c.DiscoveryGap == 0 {
		c.DiscoveryGap = DefaultDiscoveryGap
	}
	if c.GossipInterval == 0 {
		c.GossipInterval = DefaultGossipInterval
	}
	if c.MemberTimeout == 0 {
		c.MemberTimeout = DefaultMemberTimeout
	}
	if c.LeaderDelay == 0 {
		c.LeaderDelay = c.HandshakeTimeout
	}
	if c.MaxMembers == 0 {
		c.MaxMembers = DefaultMaxMembers
	}
	return nil
}

// helloFeatures notes whether c carries MEMBERS: both ends announced it.
func (n *Node) helloFeatures(c *conn, f *wire.Frame) {
	c.members = n.cfg.Discovery && f.Features&wire.FeatureMembers != 0
}

// Features returns the preamble feature bits this node announces
// (wire.FeatureMembers with Config.Discovery): the connection layer writes
// them.
func (n *Node) Features() uint16 {
	if n.cfg.Discovery {
		return wire.FeatureMembers
	}
	return 0
}

// discoveryUp runs when session c with p is confirmed (session.go,
// confirm): p is a member (news goes to the other sessions), and p hears
// this node's full view, now if this node's RESUME is out on c (a
// follower's), else right after it (viewAfterResume: a leader's).
func (n *Node) discoveryUp(p *peer, c *conn) {
	if p.disc.queued {
		n.unqueue(p)
	}
	if !c.members {
		return
	}
	if m := n.disc.members[p.id]; m != nil && m.forgotten && m.inc <= c.peerInc {
		delete(n.disc.members, p.id) // a session with it: it is back, whatever the tombstone says
	} else if m != nil && n.cfg.RequireAuth && m.inc > c.peerInc {
		// First-hand beats hearsay (learn): the member proved with its key
		// that this incarnation runs; a greater one recorded came from
		// another node's word (one insider could otherwise leave a made-up
		// incarnation and address on record for a member it is not).
		delete(n.disc.members, p.id)
	}
	news := n.learn(p.id, []wire.Member{{ID: p.id, Incarnation: c.peerInc, Addr: p.info}}, n.disc.scratch[:0])
	n.forward(news, c)
	n.sendMembers(c, n.fullView())
	if n.disc.gossipAt == 0 || n.disc.gossipAt == never {
		n.disc.gossipAt = n.now + n.jitter(n.cfg.GossipInterval)
		n.lowerNext(n.disc.gossipAt)
	}
}

// viewAfterResume sends p its full view right after this node's RESUME on
// c when the session was confirmed before it: the leader's case, whose
// confirm (the follower's first frame) comes before the ACK it answers with
// RESUME, so discoveryUp's full view waited for it (sendMembers). The
// follower's RESUME precedes its confirm (the leader's RESUME), so there
// discoveryUp sends it.
func (n *Node) viewAfterResume(c *conn) {
	if c.members && !c.unconfirmed {
		n.sendMembers(c, n.fullView())
	}
}

// discoveryDown runs when p's session ended (before any redial is scheduled).
func (n *Node) discoveryDown(p *peer) {
	if !n.cfg.Discovery {
		return
	}
	p.disc.since = n.now
	if m := n.disc.members[p.id]; m != nil && !m.left && !m.forgotten {
		m.heardAt = n.now
	}
	if p.disc.byDiscovery {
		n.armPeer(p, n.now+n.cfg.MemberTimeout)
	}
}

func (n *Node) onMembers(c *conn, f *wire.Frame) {
	// MEMBERS on a connection without discovery, or before the peer's
	// RESUME, never gets here: frameOn refuses it by its type (refusal),
	// as the connection layer does at its header.
	from := ""
	if c.peer != nil {
		from = c.peer.id
	}
	news := n.learn(from, f.MemberEntries(), n.disc.scratch[:0])
	n.forward(news, c)
}

// learn applies entries, which node from said, to the member table and
// returns those that were news.
//
// First-hand beats hearsay on an authenticated mesh (Config.RequireAuth):
// an entry about a member this node holds a session with is news only when
// the member says it itself. The session is first-hand evidence of which
// incarnation of the member runs, proved by its key, while an entry from
// another node proves nothing about a third: taken as news, a newer
// incarnation or a leave said by one insider closed the session of an
// honest pair it is not part of, once per MEMBERS frame (a black-box audit;
// spec/PROTOCOL.md 7.1 and 8.6 promise it cannot). A member that did
// restart is then adopted when its new incarnation's HELLO replaces the
// session (the restart rule of section 3.5: the pair's follower dials at
// once, the leader after LeaderDelay), or when the session with the dead
// process times out and the news comes again; a member that left says so
// on its own sessions. Without authentication anyone can claim any id in a
// HELLO anyway, and hearsay closes a stale session at once.
func (n *Node) learn(from string, entries []wire.Member, news []wire.Member) []wire.Member {
	if n.disc.members == nil {
		n.disc.members = make(map[string]*member)
	}
	for _, e := range entries {
		if e.ID == n.cfg.ID {
			continue // about this node: it knows better
		}
		if n.cfg.RequireAuth && e.ID != from {
			if q := n.peers[e.ID]; q != nil && q.session != nil {
				continue // hearsay about a member this node has first-hand (above)
			}
		}
		m := n.disc.members[e.ID]
		if m != nil && m.forgotten && e.State != wire.MemberLeft && n.now >= m.heardAt+n.cfg.MemberTimeout {
			// The tombstone has served its MemberTimeout: a member said
			// alive after it is news, as for a member never known. It was
			// forgotten while it lived (a partition longer than
			// MemberTimeout, or a leader that waited LeaderDelay past it),
			// and the node that says so has a session with it. Ignored,
			// the pair stayed apart until the member restarted (a
			// black-box audit). pruneMembers drops such tombstones only
			// when the table is full.
			delete(n.disc.members, e.ID)
			m = nil
		}
		switch {
		case m == nil && e.State == wire.MemberLeft:
			// No news: this node does not know it (or forgot it once the
			// record expired). Taking it as news re-created a record that a
			// peer with a later expiry sent back, and every node reported
			// the same member left again, once per member timeout, for ever
			// (a black-box audit).
			continue
		case m == nil:
			if len(n.disc.members) >= n.cfg.MaxMembers && !n.pruneMembers() {
				continue // full: the entry comes again with a later view
			}
			m = &member{id: e.ID}
			n.disc.members[e.ID] = m
		case e.Incarnation > m.inc:
		case e.Incarnation == m.inc && e.State == wire.MemberLeft && !m.left:
		case e.Incarnation == m.inc && e.State != wire.MemberLeft && !m.left && !m.forgotten:
			// Not news, but the member is heard of: a node with a session
			// with it says it lives, so its MemberTimeout starts over
			// (memberTimers). Without this a member this node waited for
			// (the leader of the pair waits LeaderDelay) was forgotten
			// while its other peers still talked to it.
			m.heardAt = n.now
			n.otherAddress(m, e, from)
			continue
		default:
			n.otherAddress(m, e, from)
			continue // nothing new
		}
		m.inc, m.left, m.forgotten, m.heardAt, m.from = e.Incarnation, e.State == wire.MemberLeft, false, n.now, from
		if e.Addr != "" || m.left {
			m.addr = e.Addr
		}
		news = append(news, wire.Member{ID: m.id, Incarnation: m.inc, Addr: m.addr, State: e.State})
		n.applyMember(m, e.ID != from)
	}
	n.disc.scratch = news[:0]
	return news
}

// otherAddress takes the address of entry e, which node from said of
// member m and which is no news (an incarnation not newer than m's record),
// as the other address m's redials alternate with (redialMissed), on an
// authenticated mesh while this node has never reached m itself (no session,
// no address its user dialed): the record may hold what an insider made up,
// at the greatest incarnation, which the other members' true word, at a
// smaller one, could never replace. Two nodes that never met, told of each
// other so, never learned each other's address, and the pair stayed apart
// for as long as the insider repeated it (a black-box audit). A made-up
// address costs the redials that miss; the member's own one is tried every
// other time. The node whose entry the record holds cannot name the other
// address too (m.from): one insider alone, saying the greatest incarnation
// and also a smaller one at another made-up address as often as it likes,
// would fill both.
func (n *Node) otherAddress(m *member, e wire.Member, from string) {
	if !n.cfg.RequireAuth || e.ID == from || from == m.from || e.State == wire.MemberLeft || m.left || m.forgotten || e.Addr == "" || e.Addr == m.addr {
		return
	}
	p := n.peers[m.id]
	if p == nil || p.session != nil || !p.disc.byDiscovery || p.counters.sessions > 0 || p.addr == e.Addr {
		return // met: its own address is known (applyMember)
	}
	if p.addr != "" && !p.disc.otherAddr {
		return // the address the user dialed stays
	}
	if p.info == "" {
		p.info = m.addr
	}
	p.addr, p.disc.otherAddr = e.Addr, true
}

// applyMember does what member m's new record asks of this node; hearsay:
// another node said it, not m itself.
func (n *Node) applyMember(m *member, hearsay bool) {
	p := n.peers[m.id]
	if p != nil && p.session != nil && p.session.peerInc < m.inc {
		// A newer incarnation exists (alive or already gone): the session is
		// with a dead process. (TLC found the left case: tla/Discovery.tla.)
		n.closeConn(p.session, wire.CodeReplaced, fmt.Errorf("%w: %s restarted (incarnation %d is known)", ErrReplaced, m.id, m.inc))
		p = n.peers[m.id]
	}
	if m.left {
		n.emit(Action{Kind: ActMemberLeft, Peer: m.id, Incarnation: m.inc, Addr: m.addr})
		if p != nil && p.disc.byDiscovery {
			// It left: never redial it. (A peer the user keeps stays kept:
			// the user asked for it to be redialed whenever it is back.)
			p.disc.byDiscovery = false
			n.markKept(p, false)
			n.maybeForgetPeer(p)
		}
		return
	}
	n.emit(Action{Kind: ActMemberUp, Peer: m.id, Incarnation: m.inc, Addr: m.addr})
	switch {
	case p == nil || m.addr == "":
	case hearsay && n.cfg.RequireAuth && p.redialAddr() != "" && p.redialAddr() != m.addr:
		// First-hand beats hearsay (learn): the address the user dialed,
		// or the one the member itself advertised, stays where redials
		// start, and the one another node names becomes the other address
		// they alternate with (redialMissed). A member that restarted
		// elsewhere is still found there, while an insider's made-up
		// address costs only the redials that miss: it replaced the
		// redial address during an outage of the pair, which then never
		// met again (a black-box audit).
		if p.addr == "" {
			p.addr = p.info
		}
		p.info, p.atInfo = m.addr, false
	default:
		p.info = m.addr
		if p.addr != "" {
			p.addr = m.addr // redial at the address its newest incarnation advertises
		}
	}
	if p == nil {
		p = n.peerFor(m.id)
		p.info = m.addr
	}
	if !p.kept {
		p.disc.byDiscovery = true
		p.disc.since = n.now
		n.markKept(p, true)
	}
	if p.session == nil && p.disc.byDiscovery {
		n.armPeer(p, n.now+n.cfg.MemberTimeout)
	}
}

// forward sends news to every discovery session other than from.
func (n *Node) forward(news []wire.Member, from *conn) {
	if len(news) == 0 {
		return
	}
	for _, p := range n.sortedPeers() {
		if c := p.session; c != nil && c != from && c.members {
			n.sendMembers(c, news)
		}
	}
}

// fullView returns this node, the members it has a discovery session with,
// and the left members not yet expired, sorted by id.
func (n *Node) fullView() []wire.Member {
	n.pruneMembers()
	view := []wire.Member{{ID: n.cfg.ID, Incarnation: n.cfg.Incarnation, Addr: n.info}}
	for _, p := range n.sortedPeers() {
		if c := p.session; c != nil && c.members {
			view = append(view, wire.Member{ID: p.id, Incarnation: c.peerInc, Addr: p.info})
		}
	}
	for _, m := range n.sortedMembers() {
		if m.left {
			view = append(view, wire.Member{ID: m.id, Incarnation: m.inc, Addr: m.addr, State: wire.MemberLeft})
		}
	}
	return view
}

// sendMembers writes ms on c as MEMBERS frames, each within the entry bound
// and the smaller of 64 KiB and the peer's frame limit, once this node's
// RESUME is out on c: the peer refuses MEMBERS before it (refusal), so
// that before a session is under way neither end buffers a large frame.
// What c misses before then is in the full view that follows the RESUME
// (discoveryUp, viewAfterResume).
func (n *Node) sendMembers(c *conn, ms []wire.Member) {
	if !c.resumed {
		return
	}
	limit := 64 << 10
	if c.peerMax > 0 && c.peerMax < limit {
		limit = c.peerMax
	}
	for len(ms) > 0 {
		k, size := 0, wire.MembersSize(nil)
		for k < len(ms) && k < wire.MaxMembersPerFrame && size+wire.MembersSize(ms[k:k+1])-wire.MembersSize(nil) <= limit {
			size += wire.MembersSize(ms[k:k+1]) - wire.MembersSize(nil)
			k++
		}
		if k == 0 {
			ms = ms[1:] // one entry over the peer's limit: it cannot hear of this member
			continue
		}
		n.write(c, wire.MembersFrame(slices.Clone(ms[:k])))
		ms = ms[k:]
	}
}

// announceLeave tells every discovery session that this node leaves
// (Shutdown), before the BYE that closes it.
func (n *Node) announceLeave() {
	if !n.cfg.Discovery {
		return
	}
	leave := []wire.Member{{ID: n.cfg.ID, Incarnation: n.cfg.Incarnation, Addr: n.info, State: wire.MemberLeft}}
	for _, c := range n.sortedConns() {
		if c.state == StateEstablished && c.members {
			n.sendMembers(c, leave)
		}
	}
}

// pruneMembers drops left records past MemberTimeout, and reports whether
// the table has room.
func (n *Node) pruneMembers() bool {
	for id, m := range n.disc.members {
		if (m.left || m.forgotten) && n.now >= m.heardAt+n.cfg.MemberTimeout {
			delete(n.disc.members, id)
		}
	}
	return len(n.disc.members) < n.cfg.MaxMembers
}

// memberTimers forgets p's member record, and stops keeping p, when p was
// kept by discovery and has not been heard of for MemberTimeout.
func (n *Node) memberTimers(p *peer) {
	if !n.cfg.Discovery || !p.disc.byDiscovery || p.session != nil {
		return
	}
	m := n.disc.members[p.id]
	if m != nil && !m.left && !m.forgotten && n.now < m.heardAt+n.cfg.MemberTimeout {
		n.armPeer(p, m.heardAt+n.cfg.MemberTimeout)
		return
	}
	if m != nil && !m.left && !m.forgotten {
		m.forgotten, m.heardAt = true, n.now // a tombstone (pruneMembers drops it)
		n.emit(Action{Kind: ActMemberGone, Peer: m.id, Incarnation: m.inc, Addr: m.addr, Err: fmt.Errorf("%w: %s not heard of for %v", ErrNotConnected, m.id, n.cfg.MemberTimeout)})
	}
	p.disc.byDiscovery = false
	if p.kept {
		n.markKept(p, false)
	}
}

// discoveryTurn reports whether kept-by-discovery peer p may be dialed now:
// the leader of the pair waits LeaderDelay for the follower, and the pacing
// bounds hold. If not, p waits (for its delay, or its turn in the queue).
func (n *Node) discoveryTurn(p *peer) bool {
	if n.cfg.ID > p.id && !n.cfg.mutation.discoveryBothDial() {
		if at := p.disc.since + n.cfg.LeaderDelay; n.now < at {
			n.armPeer(p, at)
			return false
		}
	}
	q := &n.disc
	if q.inFlight >= n.cfg.DiscoveryDials || n.now < q.nextAt || (len(q.queue) > 0 && q.queue[0] != p) {
		if !p.disc.queued {
			p.disc.queued = true
			q.queue = append(q.queue, p)
		}
		n.discWake()
		return false
	}
	if p.disc.queued {
		n.unqueue(p)
	}
	return true
}

// discoveryDialed records that d, a discovery dial for p, started.
func (n *Node) discoveryDialed(d *dial) {
	d.discovery = true
	n.disc.inFlight++
	n.disc.nextAt = n.now + n.jitter(n.cfg.DiscoveryGap)
	n.discWake()
}

// discoveryDialEnded runs when discovery dial d ended.
func (n *Node) discoveryDialEnded(d *dial) {
	if d.discovery {
		d.discovery = false
		n.disc.inFlight--
		if n.disc.inFlight < 0 {
			n.broken("discovery dials in flight below zero after d%d", d.id)
		}
		n.discWake()
	}
}

// discWake arms the first queued peer that can dial for its turn, dropping
// those that no longer need one (they queue again when they do).
func (n *Node) discWake() {
	q := &n.disc
	for len(q.queue) > 0 {
		h := q.queue[0]
		addr := h.redialAddr()
		ready := n.peers[h.id] == h && h.kept && h.disc.byDiscovery && h.session == nil && h.dialing == nil &&
			h.handshakes == 0 && n.now >= h.nextDialAt && addr != "" && n.dialsByAddr[addr] == nil
		if !ready {
			q.queue[0] = nil
			q.queue = q.queue[1:]
			h.disc.queued = false
			if n.peers[h.id] == h && h.kept && h.disc.byDiscovery && h.session == nil && h.dialing == nil && h.handshakes == 0 && addr != "" &&
				!n.cfg.mutation.discoveryDropsWaiting() { // see MutationDiscoveryDropsWaiting
				// Still to be dialed, only not now: its backoff runs,
				// or a dial to its address is under way. redialIfDue
				// arms the one or waits on the other, so that it queues
				// again when it may go (dropped here with neither, it
				// waited for its member timer: the simulator's
				// bookkeeping check, seed 113 of the discovery join with
				// faults, a redial 25 s late).
				n.redialIfDue(h)
			}
			continue
		}
		if q.inFlight < n.cfg.DiscoveryDials {
			n.armPeer(h, max(n.now, q.nextAt))
		}
		return
	}
}

func (n *Node) unqueue(p *peer) {
	q := &n.disc
	if i := slices.Index(q.queue, p); i >= 0 {
		q.queue = slices.Delete(q.queue, i, i+1)
	}
	p.disc.queued = false
	n.discWake()
}

// discoveryTick pushes the full view to one discovery session drawn at
// random, every GossipInterval (jittered).
func (n *Node) discoveryTick() {
	if !n.cfg.Discovery || n.disc.gossipAt == 0 || n.now < n.disc.gossipAt {
		return
	}
	var sessions []*conn
	for _, p := range n.sortedPeers() {
		if c := p.session; c != nil && c.members {
			sessions = append(sessions, c)
		}
	}
	if len(sessions) == 0 {
		n.disc.gossipAt = 0 // off until the next discovery session
		return
	}
	n.sendMembers(sessions[n.rng.below(uint64(len(sessions)))], n.fullView())
	n.disc.gossipAt = n.now + n.jitter(n.cfg.GossipInterval)
}

// discoveryDeadline is the gossip timer, for NextDeadline.
func (n *Node) discoveryDeadline() time.Duration {
	if n.disc.gossipAt == 0 {
		return never
	}
	return n.disc.gossipAt
}

func (n *Node) sortedMembers() []*member {
	out := make([]*member, 0, len(n.disc.members))
	for _, m := range n.disc.members {
		out = append(out, m)
	}
	slices.SortFunc(out, func(a, b *member) int { return cmp.Compare(a.id, b.id) })
	return out
}

// MemberStatus is one record of the member table (discovery).
type MemberStatus struct {
	ID          string
	Incarnation uint64
	Addr        string // where its newest known incarnation can be dialed
	Left        bool   // it left gracefully: it is not redialed
	Connected   bool   // this node has a session with it
	Kept        bool   // this node keeps it (by discovery or by its user)
}

// Members returns the member table as of the node's latest step, sorted by
// id (empty without discovery); see MembersAt.
func (n *Node) Members() []MemberStatus { return n.MembersAt(n.now) }

// MembersAt returns the member table as of now (or the latest step, if
// later), sorted by id (empty without discovery). A member that left stays
// listed, with Left set, until its record expires, MemberTimeout after it
// was heard of: the adapter passes its clock, so a record expires on time
// even on a node that has no step to take (no session, nothing to gossip),
// whose last step may be long past.
func (n *Node) MembersAt(now time.Duration) []MemberStatus {
	now = max(now, n.now)
	var out []MemberStatus
	for _, m := range n.sortedMembers() {
		if m.forgotten || (m.left && now >= m.heardAt+n.cfg.MemberTimeout) {
			continue
		}
		s := MemberStatus{ID: m.id, Incarnation: m.inc, Addr: m.addr, Left: m.left}
		if p := n.peers[m.id]; p != nil {
			s.Connected = p.session != nil && p.session.peerInc == m.inc
			s.Kept = p.kept
		}
		out = append(out, s)
	}
	return out
}
