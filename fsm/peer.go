package fsm

import (
	"bytes"
	"errors"
	"fmt"
	"time"

	"github.com/masterless-go/masterless/wire"
)

// peer is everything this node knows about one other node id.
type peer struct {
	id string
	// addr: the address the user dialed (Connect), if any; on an
	// authenticated mesh also the peer's own address once another node
	// named a different one (applyMember: first-hand beats hearsay).
	addr string
	info string // the address the peer advertises in its HELLO, or the one discovery names

	// atInfo: the next redial goes to info rather than addr (redialAddr).
	atInfo bool
	// maxFrame is the largest frame the peer accepts, from its last HELLO
	// (0: not known); Send refuses a payload that would not fit.
	maxFrame int

	kept       bool
	forgotten  bool  // no longer in Node.peers (maybeForgetPeer): a lease on it ends
	authed     bool  // a connection authenticated as this id said HELLO (auth.go)
	legacy     bool  // the protocol it last spoke (or Config.LegacyDial): how it is redialed
	session    *conn // the established connection, if any
	inc        uint64
	handshakes int // connections with this peer still handshaking

	// announced: the user was told Connected and not yet Disconnected.
	announced bool
	// away is set while a kept, announced peer has no session; the user
	// hears Disconnected if it lasts past the reconnect grace.
	away      bool
	awaySince time.Duration
	// awayForLease: away only because a lease was outstanding when its
	// session ended (sessionEnded), which may have held staged messages;
	// the reason it ended, until the lease's last Admit says (lease.go).
	awayForLease error
	// unreachable: the grace ran out; sends are refused until it is back.
	unreachable bool

	// Follower bookkeeping for JOIN: the newest leader incarnation seen and the
	// greatest session of it this node held and closed.
	leaderInc  uint64
	closedSess uint64

	// Reconnect of a kept peer.
	backoff    time.Duration
	nextDialAt time.Duration
	dialing    *dial
	// redialQueued: its redial waits for a turn (redials.go).
	redialQueued bool
	// redialSlow: its last redial reached no node for half a handshake
	// timeout or more (redials.go, unanswered), or its last session ended
	// in silence (sessionEnded).
	redialSlow bool

	// The two streams of the pair (stream.go): what this node sends, kept
	// until acknowledged (it is also the queue while there is no session),
	// and what it receives.
	out     outStream
	in      *inStream  // n.inbound[id]
	waiters []*request // Connect requests that complete when the session is up

	// lingerUntil keeps an otherwise unused entry (and its closedSess) long
	// enough to cover the leader noticing a session this follower closed.
	lingerUntil time.Duration

	counters peerCounters // for Stats (observe.go)

	timer timer // its entry in the node's deadlines (deadlines.go)

	disc peerDisc // discovery (discovery.go)
}

func (n *Node) peerFor(id string) *peer {
	p := n.peers[id]
	if p == nil {
		p = &peer{id: id, backoff: n.cfg.BackoffMin, legacy: n.cfg.LegacyDial, in: n.inboundFor(id)}
		n.book.restore(p) // forgotten earlier: where it was reached (addrbook.go)
		n.peers[id] = p
	}
	return p
}

// peerUp runs when p gets a session c.
func (n *Node) peerUp(p *peer, c *conn) {
	if c.leader || c.legacy() {
		n.countSession(p) // a follower's v2 session was counted when the views began to show it (establish)
	}
	p.counters.since = n.now
	restarted := p.announced && p.inc != c.peerInc
	if restarted {
		n.emit(Action{Kind: ActDisconnected, Peer: p.id, Err: fmt.Errorf("%w: %s restarted (incarnation %d, now %d)", ErrReplaced, p.id, p.inc, c.peerInc)})
	}
	p.inc = c.peerInc
	if !p.announced || restarted {
		p.announced = true
		info := p.info
		if info == "" {
			info = p.addr
		}
		n.emit(Action{Kind: ActConnected, Peer: p.id, Incarnation: p.inc, Addr: info})
	}
	p.away, p.unreachable, p.awayForLease = false, false, nil
	p.backoff = n.cfg.BackoffMin
	for _, r := range p.waiters {
		n.finishRequest(r, p.id, nil)
	}
	p.waiters = nil
}

// countSession counts a session with p in Stats, once the user's views
// show it (conn.listed).
func (n *Node) countSession(p *peer) {
	p.counters.sessions++
	n.counters.handshakes++
}

// sessionEnded runs when p's session c closed for reason why.
func (n *Node) sessionEnded(p *peer, c *conn, why error) {
	p.session = nil
	p.out.rewind() // what was sent on it goes again on the next session, unless acknowledged
	n.noteClosedSession(p, c, why)
	n.discoveryDown(p)
	if c.unconfirmed {
		n.failWaiters(p, why) // the user never heard of it (confirm)
	}
	if n.shutdown {
		return
	}
	mayComeBack := n.peerMayComeBack(c, why) && !n.cfg.mutation.lostAtOnce() // see MutationLostAtOnce
	// A lease outstanding may hold messages staged and not yet admitted
	// (lease.go): they are waited for as the queued ones are.
	held := p.out.count > 0 || p.out.lease.gen != 0 && !n.cfg.mutation.leaseNotHeld() // see MutationLeaseNotHeld
	if p.kept || (mayComeBack && held) {
		if !p.away {
			p.away, p.awaySince = true, n.now
			if !p.kept && p.out.count == 0 {
				// Waited for only on the lease's account: the Admit that
				// follows its revocation settles it (lease.go, settleLeaseAway).
				p.awayForLease = why
			}
		}
		// (Again, when it was away already: its grace may have run out
		// while this session waited to be confirmed, see peerTimers,
		// which goes on to report it when it closed the session itself.)
		if end := p.awaySince + n.cfg.ReconnectGrace; end > n.now || p != n.inPeerTimers {
			n.armPeer(p, end)
		}
		if p.kept {
			if !p.redialQueued { // a wait keeps its line (redials.go, slow)
				// A session that ended in silence (the peer timeout: the
				// host is partitioned away, blackholed or gone, as far as
				// anyone can tell) makes the first redial slow, as an
				// unanswered attempt does: when many sessions end so at
				// once, a peer that comes back is not redialed behind
				// all of their first attempts (redials.go).
				p.redialSlow = errors.Is(why, ErrPeerTimeout)
			}
			n.scheduleRedial(p)
		}
		return
	}
	n.peerDown(p, why)
}

// peerMayComeBack reports whether the peer of session c, which ended for
// why, may come back although this node does not keep it; this node then
// waits for it while it holds messages the peer has not acknowledged (with
// none, nothing is lost, and the peer is reported at once). Unless a user said
// stop (this node's Disconnect, or the peer's BYE normal or shutdown: its
// Disconnect or Close), the peer may keep the pair and redial, whatever flag
// this node last heard from it: a KEEP can be lost with the connection that
// carried it, or cross this node's own "unwanted" as leader, when the
// follower has just started keeping. The peer's BYE unwanted is no
// exception: the leader decided it on the last flag it had heard, and a KEEP
// of this node's may have been on its way, or the leader's user may keep
// the pair again before the BYE arrives (the simulator's no-lost-while-kept
// check found both, sim seed 239 with -keptpairs -fastswitches). Such a peer is waited
// for as a kept one is, for the reconnect grace: the messages it has not
// acknowledged are resent on its next session, not handed back as lost the
// moment a connection breaks (black-box audits found the replies of the
// end that does not keep lost on every reset, and on every change of the
// keeping end). If it does not come back, the grace ends in Disconnect and
// Lost as for a kept peer.
func (n *Node) peerMayComeBack(c *conn, why error) bool {
	if !reliable(c) || errors.Is(why, ErrDisconnected) {
		return false // 0.4.1 resends nothing; the user asked
	}
	bye, isBye := errors.AsType[*ByeError](why)
	if isBye && (bye.Code == wire.CodeNormal || bye.Code == wire.CodeShutdown) {
		return false
	}
	if isBye && bye.Code == wire.CodeUnwanted && n.cfg.mutation.unwantedFinal() {
		return false // see MutationUnwantedFinal
	}
	return true
}

// withLastEnd adds to why how p's last session ended, if one did.
func (p *peer) withLastEnd(why error) error {
	if last := p.counters.lastEnd; last != nil {
		return fmt.Errorf("%w since its session ended: %w", why, last)
	}
	return why
}

// failWaiters fails, with why, the Connect requests waiting for p's session
// that no dial in flight may still answer: the session they waited for
// ended before the other end confirmed it (confirm), or p's redial failed
// for a reason no retry mends (connectGivesUp).
func (n *Node) failWaiters(p *peer, why error) {
	for _, r := range append([]*request(nil), p.waiters...) {
		if d := r.dial; d != nil && n.dials[d.id] == d {
			continue // its own dial is still under way
		}
		p.waiters = removeReq(p.waiters, r)
		n.finishRequest(r, "", why)
	}
}

// peerDown tells the user p is gone and hands back, as lost, what was not
// acknowledged.
func (n *Node) peerDown(p *peer, why error) {
	if p.announced {
		p.announced = false
		n.emit(Action{Kind: ActDisconnected, Peer: p.id, Err: why})
	}
	p.away, p.awayForLease = false, nil
	if k := p.out.count; k > 0 {
		reason := "it is not connected and not kept"
		if why != nil {
			reason = why.Error()
		}
		n.reportLost(p, k, fmt.Errorf("%w: %d messages to %s: %s", ErrMessagesLost, k, p.id, reason))
	}
}

// noteClosedSession records that p's session c ended for why (Stats' last
// end) and, as a follower, that it is closed here.
func (n *Node) noteClosedSession(p *peer, c *conn, why error) {
	p.counters.lastEnd, p.counters.lastEndAt = why, n.now
	if !c.leader && c.peerInc == p.leaderInc && c.sess > p.closedSess {
		p.closedSess = c.sess
	}
	if c.leader && c.unconfirmed {
		// A grant the follower never confirmed: the user never heard of
		// it, and there is no follower's close to remember. Lingering
		// would let a flood of bare HELLOs with fresh ids hold a record
		// each for two peer timeouts, past the handshake slots' cap.
		return
	}
	p.lingerUntil = n.now + 2*n.cfg.PeerTimeout
}

// maybeForgetPeer drops p when nothing refers to it any more, so memory is
// bounded by the peers in use.
func (n *Node) maybeForgetPeer(p *peer) {
	if p.kept || p.away || p.session != nil || p.handshakes > 0 || p.dialing != nil || len(p.waiters) > 0 || p.out.count > 0 {
		return // an away peer is forgotten only once peerTimers reported it gone
	}
	if n.now < p.lingerUntil {
		n.armPeer(p, p.lingerUntil)
		return
	}
	n.book.remember(p)
	delete(n.peers, p.id)
	p.forgotten = true
	// Its stream holds no message (checked above): its buffers go back
	// now, so that the record, which manyTo may hold until the next
	// SendMany, is small.
	p.out.release()
	if n.sentTo == p {
		n.sentTo = nil
	}
}

// sendPeer returns the peer record a Send to id is for, or nil: the peer
// of the previous send when id names it (a stream sends to one peer over
// and over, and comparing an id that is the same string is cheaper than
// hashing it), else the record in peers, remembered for the next send.
// maybeForgetPeer and stop, the two places a record leaves peers, forget
// it here too.
func (n *Node) sendPeer(id string) *peer {
	if p := n.sentTo; p != nil && p.id == id {
		return p
	}
	p := n.peers[id]
	if p != nil {
		n.sentTo = p
	}
	return p
}

// send accepts payload for peer id (Send); share is the SendMany's shared
// copy in progress, nil for a Send.
func (n *Node) send(id string, payload []byte, reserve bool, share *sharedPayload) error {
	return n.sendTo(id, n.sendPeer(id), payload, reserve, share)
}

// sendTo is send with the peer record of id already looked up: p, nil
// when there is none.
func (n *Node) sendTo(id string, p *peer, payload []byte, reserve bool, share *sharedPayload) error {
	if err := n.refuseCommand(id, "send to"); err != nil {
		return err
	}
	if len(payload) >= n.cfg.MaxFrameSize {
		return fmt.Errorf("%w: %d bytes, limit %d", ErrPayloadTooLarge, len(payload), n.cfg.MaxFrameSize-1)
	}
	if p == nil {
		return fmt.Errorf("%w: %q", ErrUnknownPeer, id)
	}
	if p.maxFrame != 0 && len(payload) >= p.maxFrame {
		return fmt.Errorf("%w: %d bytes, %s accepts at most %d", ErrPayloadTooLarge, len(payload), id, p.maxFrame-1)
	}
	if err := n.legacySendCheck(p, payload); err != nil {
		return err // 0.4.1 carries only JSON objects (legacy.go)
	}
	if c := p.session; c != nil && !reliable(c) {
		n.write(c, wire.Frame{Type: wire.Data, Payload: payload})
		return nil // 0.4.1: no acknowledgements, nothing to keep
	}
	if p.session == nil && ((!p.kept && !p.away) || p.unreachable) {
		// (A peer away is waited for: sessionEnded.)
		if p.unreachable {
			return fmt.Errorf("%w: %q has been unreachable for longer than the reconnect grace; sends resume when its session is back (its Connect event)", ErrNotConnected, id)
		}
		return fmt.Errorf("%w: %q has no session and is not kept; Connect to it (or Keep it) first", ErrNotConnected, id)
	}
	if len(payload) > n.cfg.QueueBytes {
		// It could never fit in the queue, however empty: refusing it with
		// ErrQueueFull would have a SendContext wait for ever.
		return fmt.Errorf("%w: %d bytes, larger than the send queue's %d bytes (the queue bound)", ErrPayloadTooLarge, len(payload), n.cfg.QueueBytes)
	}
	return n.sendReliable(p, payload, reserve, share)
}

// sendMany steps a Send of e.Payload to each of e.Peers (SendMany).
func (n *Node) sendMany(e SendMany) error {
	if e.Errs != nil && len(e.Errs) != len(e.Peers) {
		panic(fmt.Sprintf("fsm: node %s: SendMany with %d peers and %d error slots", n.cfg.ID, len(e.Peers), len(e.Errs)))
	}
	var first error
	share := sharedPayload{alias: n.cfg.mutation.sharedNoCopy()} // deliberately wrong: see MutationSharedNoCopy
	if len(n.manyTo) < len(e.Peers) {
		n.manyTo = append(n.manyTo, make([]*peer, len(e.Peers)-len(n.manyTo))...)
	}
	// A producer's SendMany of a payload below SharedMin, which each
	// stream copies anyway, asks each peer that took it for a lease, as a
	// producer's Send does (sendEvent): its adapter may then stage the next
	// ones, encoded once, in the peers' lanes (netio's SendManyContext).
	// After every send, so that a peer named twice takes both messages
	// before a lease holds its room.
	lease := e.Reserve && n.cfg.Leases && len(e.Payload) < sharedMin
	if lease {
		n.manyOK = append(n.manyOK[:0], make([]bool, len(e.Peers))...)
	}
	for i, id := range e.Peers {
		p := n.manyPeer(i, id)
		err := n.sendTo(id, p, e.Payload, e.Reserve, &share)
		if e.Errs != nil {
			e.Errs[i] = err
		}
		if lease {
			n.manyOK[i] = err == nil && p != nil
		}
		if first == nil {
			first = err
		}
	}
	if lease {
		for i, ok := range n.manyOK {
			if ok {
				n.grantLease(n.manyTo[i], true)
			}
		}
	}
	clear(n.manyTo[len(e.Peers):]) // no record kept for longer than it is named
	return first
}

// manyPeer returns the peer record of id, the i-th peer of a SendMany, or
// nil: the record the previous SendMany found i-th when it is id's and
// still in peers (a producer sends to the same peers, in the same order,
// over and over, and comparing an id that is the same string is cheaper
// than hashing it), else the record in peers, kept i-th for the next. A
// record forgotten since stays in manyTo until a SendMany puts another in
// its place; it holds no buffer (maybeForgetPeer), so what manyTo keeps is
// bounded by the length of the latest SendMany.
func (n *Node) manyPeer(i int, id string) *peer {
	if p := n.manyTo[i]; p != nil && !p.forgotten && p.id == id {
		return p
	}
	p := n.peers[id]
	n.manyTo[i] = p
	return p
}

// sharedPayload is the copy of a SendMany's payload that its peers'
// streams share (stream.go, sharedMin), made when the first of them keeps
// the message.
type sharedPayload struct {
	copy  *[]byte
	alias bool // MutationSharedNoCopy: the caller's payload, not a copy
}

// of returns the shared copy of payload, making it on the first call; nil
// for a Send (s nil) and below sharedMin, where each stream keeps its own.
func (s *sharedPayload) of(payload []byte) *[]byte {
	if s == nil || len(payload) < sharedMin {
		return nil
	}
	if s.copy == nil {
		c := payload // MutationSharedNoCopy
		if !s.alias {
			c = bytes.Clone(payload)
		}
		s.copy = &c
	}
	return s.copy
}

// refuseCommand checks what every user command naming a peer needs: a node
// not shut down, and an id other than its own. Its own id is no peer it
// knows, so the refusal wraps ErrUnknownPeer, the error these commands
// document for an id they cannot use, and ErrSelfConnect, which says why.
func (n *Node) refuseCommand(id, verb string) error {
	if n.shutdown {
		return ErrClosed
	}
	if id == n.cfg.ID {
		return fmt.Errorf("%w: %w: cannot %s this node's own id", ErrUnknownPeer, ErrSelfConnect, verb)
	}
	return nil
}

// truncID is id shortened for an error message.
func truncID(id string) string {
	if len(id) > 64 {
		return id[:64] + "..."
	}
	return id
}

func (n *Node) setKeep(id string, keep bool) error {
	if err := n.refuseCommand(id, "keep"); err != nil {
		return err
	}
	p := n.peers[id]
	if p == nil {
		if !keep {
			return nil
		}
		if id == "" || len(id) > wire.MaxIDLen {
			// No node can have it: a record kept for it would wait for
			// a peer that can never come.
			return fmt.Errorf("%w: %q: no node can have this id (1 to %d bytes)", ErrUnknownPeer, truncID(id), wire.MaxIDLen)
		}
		p = n.peerFor(id)
	}
	p.disc.byDiscovery = false // the user decides from now on
	if p.kept == keep {
		return nil
	}
	n.markKept(p, keep)
	n.maybeForgetPeer(p)
	return nil
}

// markKept changes p's keep flag and does what follows from it.
func (n *Node) markKept(p *peer, keep bool) {
	p.kept = keep
	if keep {
		if p.session == nil {
			if !p.away {
				p.away, p.awaySince = true, n.now
				n.armPeer(p, n.now+n.cfg.ReconnectGrace)
			}
			if p.nextDialAt == 0 {
				n.scheduleRedial(p) // never redialed: after a first backoff
			} else {
				// Dialed when its backoff says, at once if that passed
				// while it was not kept: keeping it again never puts its
				// redial off. (A backoff drawn anew from now on every Keep
				// made an end that keeps for less than half a backoff at
				// a time never dial: with the keeping end switching every
				// 1-400 ms after an outage the pair stayed apart until the
				// grace ran out, a black-box audit.) Due now, it is
				// dialed in this step: a timer armed for now inside a
				// Tick would be left due after it.
				if n.now < p.nextDialAt {
					n.armPeer(p, p.nextDialAt)
				} else {
					n.redialIfDue(p)
				}
			}
		}
	} else if p.session == nil && !(p.away && p.out.count > 0) {
		why := error(ErrNotConnected)
		if p.away {
			why = p.withLastEnd(fmt.Errorf("%w: %s no longer kept", ErrNotConnected, p.id))
		}
		n.peerDown(p, why)
	} // (away with messages: it may still come back for them, and is waited for until its grace ends: sessionEnded)
	n.keepChanged(p)
}

func (n *Node) disconnect(id string) error {
	if err := n.refuseCommand(id, "disconnect"); err != nil {
		return err
	}
	p := n.peers[id]
	if p == nil {
		return fmt.Errorf("%w: %q", ErrUnknownPeer, id)
	}
	p.kept, p.disc.byDiscovery = false, false
	for _, r := range p.waiters {
		n.finishRequest(r, "", fmt.Errorf("%w: %q", ErrDisconnected, id))
	}
	p.waiters = nil
	n.finalAck(p)
	n.peerDown(p, nil) // first: the user asked, so the event carries no error
	for _, c := range n.sortedConns() {
		if c.peer == p {
			n.closeConn(c, wire.CodeNormal, fmt.Errorf("%w: %q", ErrDisconnected, id))
		}
	}
	if d := p.dialing; d != nil {
		d.forPeer, p.dialing = nil, nil
	}
	// Connect requests still dialing one of its addresses, not yet answered,
	// are withdrawn too, and so are its addresses kept since a Connect
	// (seeds.go): otherwise the HELLO would make the peer kept again.
	delete(n.seeds, p.addr)
	delete(n.seeds, p.info)
	for _, d := range n.sortedDials() {
		if d.reached == nil && d.addr != "" && (d.addr == p.addr || d.addr == p.info) {
			reqs := d.reqs
			d.reqs = nil
			why := fmt.Errorf("%w: %q", ErrDisconnected, id)
			for _, r := range reqs {
				n.finishRequest(r, "", why)
			}
		}
	}
	n.maybeForgetPeer(p)
	return nil
}

// redialAddr is where kept peer p is redialed (spec/PROTOCOL.md, section 5):
// the address the user dialed, known to route from here (it may be a proxy
// or a NAT the advertised address is not reachable through); after a redial
// there missed (failed, or reached another node), the address p advertised
// in its last HELLO, so that a peer that restarted on another port and said
// so is found there; and so on in turn. "" when neither is known.
func (p *peer) redialAddr() string {
	switch {
	case p.addr == "":
		return p.info
	case p.info == "" || p.info == p.addr || !p.atInfo:
		return p.addr
	default:
		return p.info
	}
}

// redialMissed runs when a redial of kept peer p at addr ended without
// reaching p: the next one goes to p's other address.
func (n *Node) redialMissed(p *peer, addr string) {
	switch addr {
	case p.addr:
		p.atInfo = p.info != ""
	case p.info:
		p.atInfo = false
	}
}

// peerTimers handles p's reconnect and grace deadlines.
func (n *Node) peerTimers(p *peer) {
	n.memberTimers(p)
	if end := p.awaySince + n.cfg.ReconnectGrace; p.away && n.now >= end {
		if c := p.session; c != nil && !n.cfg.mutation.graceIgnoresUnconfirmed() { // see MutationGraceIgnoresUnconfirmed
			// The peer is back on a session the other end has not
			// confirmed yet (it is away until then: confirm, peerUp),
			// and that session may already carry the messages this node
			// resent on it. Reporting them lost now would hand back what
			// is being delivered, and skipping their numbers would make
			// the peer's next ACK, which counts them, look like one that
			// goes back: a protocol error on an honest session (the
			// simulator's no-lost-while-kept sweep, seed 2003858 with
			// -keptpairs -fastswitches). The grace ends with that
			// session instead: when it is confirmed the peer is back; if
			// it ends first, sessionEnded brings the grace's end back
			// here; one left unconfirmed for the handshake timeout past
			// the grace (a peer that never sends its RESUME) is closed.
			if n.now < end+n.cfg.HandshakeTimeout {
				n.armPeer(p, end+n.cfg.HandshakeTimeout)
				return
			}
			n.closeConn(c, wire.CodeHandshake, fmt.Errorf("%w: the session with %s was not confirmed within the handshake timeout", ErrHandshakeTimeout, p.id))
		}
		// A kept peer is unreachable from now on; one waited for only for
		// its messages (sessionEnded) is done with, and idle.
		p.away, p.unreachable = false, p.kept
		n.peerDown(p, p.withLastEnd(fmt.Errorf("%w: %s unreachable for %v", ErrNotConnected, p.id, n.cfg.ReconnectGrace)))
	} else if p.away {
		n.armPeer(p, p.awaySince+n.cfg.ReconnectGrace)
	}
	if p.kept && (p.session == nil || n.cfg.mutation.redialWithSession()) { // see MutationRedialWithSession
		n.redialIfDue(p)
	}
	n.maybeForgetPeer(p)
}
