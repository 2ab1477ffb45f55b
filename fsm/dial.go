package fsm

import (
	"errors"
	"fmt"
	"slices"
	"time"
)

// Dials and Connect requests. Dials are deduplicated locally: at most one in
// flight per address, and at most one redial per kept peer.

// dial is one outgoing connection attempt, from ActDial until its connection
// is established or closed.
type dial struct {
	id        DialID
	addr      string
	startedAt time.Duration
	conn      *conn      // set once Dialed
	reqs      []*request // Connect requests not yet bound to a peer
	forPeer   *peer      // the kept peer this dial reconnects, if any
	reached   *peer      // the peer that answered, once its HELLO arrived
	legacy    bool       // speaks masterless 0.4.1 (legacy.go)
	timer     timer      // its entry in the node's deadlines (deadlines.go)
	// blocked: kept peers whose redial waits for this dial to end, because it
	// goes to the address they are redialed at (redialIfDue).
	blocked []*peer
	// discovery: a dial of a peer kept by discovery, counted against the
	// discovery dials in flight (discovery.go).
	discovery bool
	// slow: an automatic dial toward a target that did not answer last
	// time, counted in Node.slowDials (redials.go).
	slow bool
}

// request is a user's Connect, pending until the session with the node at
// its address is up, or it fails, or its deadline passes.
type request struct {
	id       ReqID
	addr     string
	deadline time.Duration
	dial     *dial
	peer     *peer // set once the node at addr said who it is
	timer    timer // its entry in the node's deadlines (deadlines.go)
}

func (n *Node) connect(id ReqID, addr string) error {
	if n.reqs[id] != nil || id == 0 {
		return fmt.Errorf("fsm: Connect request id r%d is zero or in use", id)
	}
	r := &request{id: id, addr: addr, deadline: n.now + n.cfg.HandshakeTimeout}
	n.reqs[id] = r
	switch {
	case n.shutdown:
		n.finishRequest(r, "", ErrClosed)
		return nil
	case addr == n.info && addr != "":
		n.finishRequest(r, "", fmt.Errorf("%w: %s is this node's own address", ErrSelfConnect, addr))
		return nil
	}
	if p := n.peerAt(addr); p != nil {
		n.bindRequest(r, p)
		return nil
	}
	n.keepAddr(addr) // unless ConnectOnce: tried again until a node answers (seeds.go)
	d := n.dialsByAddr[addr]
	if d == nil {
		d = n.startDial(addr, nil)
	}
	r.dial = d
	if d.reached != nil {
		n.bindRequest(r, d.reached)
		return nil
	}
	d.reqs = append(d.reqs, r)
	n.armRequest(r, r.deadline)
	return nil
}

// peerAt returns the peer known at addr with which this node has a session
// (at the address the user dialed it or the one it advertises), or a
// connection past its HELLO that advertised addr: a Connect to addr binds to
// that peer instead of dialing (spec/PROTOCOL.md 5.1). So when two nodes
// Connect to each other one after the other, the second finds the first's
// connection handshaking and opens no second one. This only removes dials:
// which connection becomes the session is decided as always (handshake.go),
// and a kept peer is redialed if that handshake fails.
func (n *Node) peerAt(addr string) *peer {
	if addr == "" {
		return nil
	}
	// The smallest id among the matches, so that the choice does not depend
	// on map order (two peers at one address: a misconfiguration).
	var found, handshaking *peer
	for _, p := range n.peers {
		switch {
		case p.session != nil && (p.addr == addr || p.info == addr):
			if found == nil || p.id < found.id {
				found = p
			}
		case p.handshakes > 0 && p.info == addr:
			if handshaking == nil || p.id < handshaking.id {
				handshaking = p
			}
		}
	}
	if found != nil || n.cfg.mutation.dialWhileHandshaking() {
		return found // the mutation dials anyway: see MutationDialWhileHandshaking
	}
	return handshaking
}

// bindRequest ties r to the peer that answered at r.addr: the peer becomes
// kept (Connect keeps what it reaches) and r completes when its session is up.
func (n *Node) bindRequest(r *request, p *peer) {
	r.peer = p
	p.addr = r.addr
	p.disc.byDiscovery, p.disc.otherAddr = false, false // the user keeps it
	if !p.kept {
		n.markKept(p, true)
		n.traceKeepBound(p)
	}
	if p.session != nil && !p.session.unconfirmed {
		n.finishRequest(r, p.id, nil)
		return
	}
	p.waiters = append(p.waiters, r)
	n.armRequest(r, r.deadline)
}

func (n *Node) finishRequest(r *request, peerID string, err error) {
	if n.reqs[r.id] != r {
		return
	}
	delete(n.reqs, r.id)
	n.emit(Action{Kind: ActConnectDone, Req: r.id, Peer: peerID, Err: err})
}

// detachRequest removes r from whatever list holds it; r stays registered.
func (n *Node) detachRequest(r *request) {
	if d := r.dial; d != nil {
		d.reqs = removeReq(d.reqs, r)
	}
	if p := r.peer; p != nil {
		p.waiters = removeReq(p.waiters, r)
		n.maybeForgetPeer(p)
	}
}

func removeReq(list []*request, r *request) []*request {
	for i, x := range list {
		if x == r {
			return append(list[:i], list[i+1:]...)
		}
	}
	return list
}

func (n *Node) cancelConnect(id ReqID) {
	if r := n.reqs[id]; r != nil {
		n.detachRequest(r)
		delete(n.reqs, id)
	}
}

func (n *Node) startDial(addr string, forPeer *peer) *dial {
	n.nextDial++
	d := &dial{id: n.nextDial, addr: addr, startedAt: n.now, forPeer: forPeer, legacy: n.cfg.LegacyDial}
	if forPeer != nil {
		d.legacy = forPeer.legacy // redial in the protocol the peer last spoke
	}
	n.dials[d.id] = d
	n.dialsByAddr[addr] = d
	if forPeer != nil {
		forPeer.dialing = d
	}
	n.armDial(d, d.startedAt+n.cfg.HandshakeTimeout)
	n.emit(Action{Kind: ActDial, Dial: d.id, Addr: addr, Legacy: d.legacy})
	return d
}

func (n *Node) dialed(id DialID, cid ConnID, authID string) {
	d := n.dials[id]
	if d == nil || d.conn != nil || n.shutdown {
		// Abandoned (timed out, shut down) while the adapter was dialing.
		n.emit(Action{Kind: ActClose, Conn: cid, Err: fmt.Errorf("%w: dial d%d abandoned", ErrClosed, id)})
		return
	}
	n.openConn(cid, d, d.legacy, authID)
	d.conn = n.conns[cid]
}

func (n *Node) dialFailed(id DialID, err error) {
	d := n.dials[id]
	if d == nil || d.conn != nil {
		return
	}
	n.endDial(d, fmt.Errorf("%w: %s: %w", ErrDialFailed, d.addr, err))
}

// dialReached runs when the peer at the other end of d's connection said who
// it is. It returns an error when d was only a redial of another kept peer
// and nothing on this node wants the node that answered: the caller closes
// the connection before it becomes a session (spec/PROTOCOL.md, section 5).
func (n *Node) dialReached(d *dial, p *peer) error {
	d.reached = p
	n.seedReached(d.addr, p)
	reqs := d.reqs
	d.reqs = nil
	for _, r := range reqs {
		n.bindRequest(r, p)
	}
	q := d.forPeer
	if q == nil || q == p {
		return nil
	}
	// The address now hosts another node; q keeps waiting for its turn, with
	// the backoff its redial already doubled (only q's own session resets it),
	// and its next redial goes to its other address, if it has one.
	q.dialing, d.forPeer = nil, nil
	n.redialMissed(q, d.addr)
	n.dialGone(q)
	if len(reqs) > 0 || p.kept || n.cfg.mutation.redialStranger() { // see MutationRedialStranger
		return nil // a Connect, a kept address or this node's user wants p
	}
	return fmt.Errorf("%w: the redial of %s at %s reached %s instead", ErrUnwanted, q.id, d.addr, p.id)
}

// dialEnded runs when d's connection closed (or got established, why == nil).
func (n *Node) dialEnded(d *dial, c *conn, why error) {
	if n.dials[d.id] != d {
		return
	}
	n.endDial(d, why)
	if why == nil || errors.Is(why, ErrDuplicate) || d.reached == nil {
		return
	}
	// Requests bound through this dial fail with its reason, unless the peer
	// got its session some other way.
	p := d.reached
	if p.session != nil {
		return
	}
	for _, r := range append([]*request(nil), p.waiters...) {
		if r.dial == d {
			p.waiters = removeReq(p.waiters, r)
			n.finishRequest(r, "", why)
		}
	}
}

// endDial forgets d and fails the requests still waiting on it.
func (n *Node) endDial(d *dial, why error) {
	delete(n.dials, d.id)
	if n.dialsByAddr[d.addr] == d {
		delete(n.dialsByAddr, d.addr)
	}
	if d.slow {
		n.slowDials--
	}
	n.discoveryDialEnded(d)
	n.seedDialEnded(d, why)
	if q := d.forPeer; q != nil && q.dialing == d {
		q.dialing = nil
		if !q.redialQueued { // a wait keeps its line (redials.go, slow)
			q.redialSlow = n.unanswered(d)
		}
		if d.reached != q {
			n.redialMissed(q, d.addr)
		}
		if seedGivesUp(why) && len(q.waiters) > 0 && q.session == nil {
			n.connectGivesUp(q, why)
		}
		n.dialGone(q)
	}
	for _, q := range d.blocked {
		if n.peers[q.id] == q && q.kept && q.session == nil {
			n.armPeer(q, max(n.now, q.nextDialAt)) // its turn has come
		}
	}
	d.blocked = nil
	n.redialWake() // one more may go
	reqs := d.reqs
	d.reqs = nil
	if why == nil {
		if len(reqs) != 0 {
			n.broken("dial d%d ended well with %d unbound requests", d.id, len(reqs))
		}
	}
	for _, r := range reqs {
		n.finishRequest(r, "", why)
	}
}

// connectGivesUp runs when a redial of q ended for a reason retrying cannot
// mend (seedGivesUp) while a Connect still waits for q's session: the case
// of a Connect that reached q over 0.4.1, where both turned out to be Go
// nodes and switched to v1 (legacyUpgrade), whose v1 attempt then failed
// its authentication. The Connect fails with that reason and q is no longer
// kept, as when a Connect's first attempt fails so (seeds.go); before, the
// Connect waited for its deadline and q was redialed on, even under
// WithConnectOnce (a black-box audit).
func (n *Node) connectGivesUp(q *peer, why error) {
	n.failWaiters(q, why) // their dials are over: the 0.4.1 one and this redial
	if q.kept {
		n.markKept(q, false)
		n.traceKeepSet(q, false)
	}
}

// dialGone runs when peer q's redial ended or was given up: a kept peer
// without a session is due for its next one (at once, if its backoff has
// passed), and one no longer kept may be forgotten. (Nothing else would look
// at q again: its timer only runs when armed.)
func (n *Node) dialGone(q *peer) {
	if q.kept && q.session == nil {
		n.armPeer(q, max(n.now, q.nextDialAt))
		return
	}
	n.maybeForgetPeer(q)
}

// scheduleRedial sets when kept peer p is next dialed, after a jittered
// backoff drawn from the node's seeded generator.
func (n *Node) scheduleRedial(p *peer) {
	p.nextDialAt = n.now + n.jitter(p.backoff)
	n.armPeer(p, p.nextDialAt)
}

// jitter returns a duration drawn uniformly from [d/2, d).
func (n *Node) jitter(d time.Duration) time.Duration {
	half := d / 2
	if half <= 0 {
		return d
	}
	return half + time.Duration(n.rng.below(uint64(half)))
}

// redialIfDue dials kept peer p if it has no session, nothing under way and
// its backoff has passed.
func (n *Node) redialIfDue(p *peer) {
	if p.dialing != nil || p.handshakes > 0 || n.shutdown {
		return
	}
	addr := p.redialAddr()
	if addr == "" {
		return // it dialed us and advertised nothing: wait for it to come back
	}
	if n.now < p.nextDialAt {
		n.armPeer(p, p.nextDialAt)
		return
	}
	if d := n.dialsByAddr[addr]; d != nil {
		// A Connect to the same address is under way: try again when it ends.
		if !slices.Contains(d.blocked, p) {
			d.blocked = append(d.blocked, p)
		}
		return
	}
	switch {
	case p.disc.byDiscovery && !n.discoveryTurn(p):
		return // the follower dials first, and discovery dials are paced (discovery.go)
	case !p.disc.byDiscovery && !n.redialTurn(redialWait{peer: p}):
		return // it waits for a turn (redials.go)
	}
	d := n.startDial(addr, p)
	if p.disc.byDiscovery {
		n.discoveryDialed(d)
	} else {
		n.redialStarted(d, redialWait{peer: p})
		n.redialWake()
	}
	p.backoff = min(2*p.backoff, n.cfg.BackoffMax)
	n.scheduleRedial(p)
}
