package fsm

import (
	"fmt"
	"time"

	"github.com/masterless-go/masterless/wire"
)

// Reliable sessions (spec/PROTOCOL.md, section 4.1): flow control by credit,
// and exactly-once, in-order delivery across the sessions of one pair of
// incarnations. Only v2 sessions have them; a 0.4.1 session writes DATA as
// it comes (legacy.go).
//
// Each direction of a pair is a stream, numbered per incarnation of the
// receiver: the sender numbers its DATA 1, 2, 3, ... implicitly (TCP keeps
// them in order, so no number travels with a message) and keeps every
// message until the receiver acknowledges it. The receiver counts what it
// delivered into its user's queue and grants credit: a byte offset of the
// stream the sender may reach. When a session starts, each end first sends
// ACK with what it delivered of the other's stream and its credit; each
// sender answers with RESUME, the number of the next DATA it sends on this
// session, and sends from there: so a message is never delivered twice,
// never out of order, and none is skipped unless its sender reported it lost.
//
// Why no wait can form a cycle. A wait needs something that waits; here:
//   - Reading a socket never waits: a sender never goes past the credit it
//     was given, and a receiver grants credit only for room it has (its
//     window, Window to MaxWindow bytes, not yet consumed by its user, plus
//     one message), so whatever
//     arrives fits; PING, KEEP, ACK and BYE are never stuck behind data, and
//     a slow user cannot make its healthy peer look dead.
//   - Delivering to the user never waits for anything but the user's own
//     callback, which may Send but never waits in Send: past the queue bound
//     Send fails with ErrQueueFull.
//   - Granting credit depends on the user's consumption alone, never on this
//     node's own queue toward the peer (grantLimit): so credit flows as long
//     as the users' callbacks return.
//   - Only a producer outside the callbacks waits (the adapter's
//     SendContext): for acknowledgements, which come from the peer's
//     connection layer as it delivers, which waits for nothing of ours;
//     and while the peer says its answers to us back up (the backlog flag,
//     below), which clears as our user consumes them. None of these is a callback, and neither credit nor the flag
//     waits for a producer.
// Every chain of waits therefore ends at a user's callback, and a callback
// that returns ends it.
//
// Room for answers. An answer sent from a callback (Send) is never held
// back by this node; only the queue's bounds refuse it. The producers of
// both ends are paced so that the answers never reach those bounds, under
// one assumption about the application:
//
//	(A) a callback answers only requests (messages its peer's producers
//	sent with SendContext), each at most once, to its sender, from the
//	callback itself, with a payload no larger than the request's;
//	answers are not answered.
//
// Echo and request/response are such applications. A fan-out application,
// whose callbacks send to other peers than the sender, is not: it must
// send its fan-out from a producer (SendContext, e.g. handed to a
// goroutine), or treat Send's ErrQueueFull as a signal to do so. This node
// cannot tell an answer from any other Send without Reserve (one from
// outside the callbacks, a fan-out): it counts them all as answers, so
// they may hold the peer's producers for a while (the flag below), never
// wedge anything.
//
// The pacing. Costs count payload plus msgCost per message, as credit
// does; c is the cost of the largest message. W is a node's Window, M its
// MaxWindow: the window it grants a peer is between the two (window.go),
// and the credit it granted is at most M past what its user consumed.
// Node A, toward peer S:
//   - Producers (Send.Reserve) may add to the queue only while it costs at
//     most Π, the room S's credit leaves (at least W, at most
//     min(M, QueueBytes/2)), and holds fewer than QueueMessages/2 messages
//     (producerShare): the producers' messages cost at most
//     Π ≤ min(M, QueueBytes/2).
//     Except into an empty queue, which takes one message of any cost: a
//     message over the share could never go otherwise. Within the bound's
//     domain (payloads up to a window, below) that message's payload is at
//     most Π when QueueBytes >= 2W, as the defaults have it, so the payload
//     bytes below do not grow; its cost passes Π by at most msgCost.
//   - The backlog flag (pace). B = the cost of the answers in A's queue
//     toward S, minus the room S's credit leaves (limit - ackedEnd, at most
//     M(S): S grants at most its window past what it received). A sets the
//     flag when B > W(A) and clears it when B <= W(A)/2, sending an ACK on
//     each flip; every ACK carries it. While the flag S last heard from A
//     is set, S's producers toward A wait (producerWaits); an ACK that
//     clears it wakes them (ActRoom). Nothing else holds a producer: an
//     earlier rule also held it while its own user was more than half a
//     window behind on the peer's messages, which the bound below does not
//     need, and under sustained load (every peer's stream a full window
//     behind at the receiver) it held producers almost all the time while
//     the pair's stream emptied (issue 9).
//
// The bound. Answers leave A's queue only when S acknowledges them. At any
// time t, before A adds an answer: if the flag is clear, the answers cost at
// most M(S) + W(A) (pace runs after every step that changes B). Otherwise
// let t0 be when A last set it: then they cost at most M(S) + W(A) + c
// (the flag was clear before that step, which added at most one answer:
// the other steps that raise B, a resume that shrinks the room or an ACK
// that drops a producer's messages, add none). Answers added since t0
// answer, by (A), S's requests unanswered at t0:
//   - those delivered here and not yet consumed: the user reports a message
//     consumed after its callback returned, so they are among the
//     unconsumed, which cost at most M(A) + c (this node's credit);
//   - those not yet delivered here. Every ACK A sent since t0 sets the
//     flag; S applies each ACK in order (one session's in TCP's order, and
//     a new session's first one before S sends anything on it), keeps the
//     flag it heard last with its count of A's stream (inStream.held, which
//     outlives S's record of A), and its producers add nothing while it is
//     set. (A lease, lease.go, counts as added when it is granted: its room
//     is the producers' and no other Send can take it; none is granted
//     while the flag is set, the step that applies the flag revokes it, and
//     what the adapter staged within it, admitted afterwards, fills room
//     counted here already.) So these requests were added by S's producers
//     before S applied the first ACK A sent since t0; until then S's count
//     of what A acknowledged is at most what A had delivered at t0, so they
//     were all in S's queue, its lease counted as queue, at once (a record
//     of A that S forgot meanwhile held none of them: S forgets a peer only
//     with an empty queue), and cost at most Π(S).
// With the answer being added, the answers cost at most
// M(S) + W(A) + M(A) + Π(S) + 2 c, and the whole queue (the producers' Π(A)
// besides) at most M(S) + W(A) + M(A) + Π(S) + Π(A) + 2 c: 4 M + W + 2 c
// when both ends have the same W and M. A peer of a build before windows
// grew has M = W and, before Π was one window, producers that keep two
// windows: 2 M + 4 W + 2 c. Both are at most 4 M + 3 W + 2 c (7 W + 2 c
// when M = W, the bound before windows grew). As every message costs at
// least msgCost, and the two messages counted by c are one each, no answer
// is refused, whatever the peer's build, as long as
//
//	QueueMessages >= (4 M + 3 W) / msgCost + 5 and QueueBytes >= 4 M + 3 W + 2 L,
//
// L the largest payload. (A lease's room for answers, lease.go, is held
// beside the queue and counted against the same bounds; it is at most what
// they leave past this one, answerSlack, so every answer the bound lets in
// still fits. Answers staged in it are answers added: they join the queue
// at their Admit, and count from then on as the others do.) The defaults
// hold it for payloads up to a window
// (QueueMessages at least (M + W)/8, QueueBytes at least 5 M + 4 W, and a
// default M lowered to what queue bounds set by the user keep room for;
// config.go), if the peers use the same windows and queue bounds (the
// peer's M and Π enter the bound: a peer with a larger window or producer
// share needs a larger queue here). Raising the queue bounds alone could not do it: without the
// flag, each time a slow user catches up a little its producer sends a
// round trip's worth of requests at full speed, faster than the user takes
// in their answers, and the answers toward it grow without bound
// (sim.TestLoadAnswersHaveRoomSmallMessages, and its negative control
// with MutationNoPacing).
//
// Why the flag closes no cycle. S's producer waits for A's answers to
// drain; they drain as S acknowledges them, within S's credit, which grows
// as S's user consumes; S's user waits for nothing (its callbacks never
// wait in Send). New answers stop once the requests already sent are
// answered, since S's producer is held, and A's callbacks wait for nothing
// either. The flag holds producers only: never a callback's Send, and
// never credit, which still depends on the user's consumption alone
// (grantLimit; tying credit to one's own queue made a cycle before).

// msgCost is the credit each message costs beyond its payload, so that
// credit also bounds how many messages may wait, empty ones included.
const msgCost = 32

// inStream is what this node receives from one peer. It outlives the peer
// record (Node.inbound): a peer that neither end keeps is forgotten after a
// while, but if it comes back with messages this node delivered and never
// managed to acknowledge, only this count keeps them from being delivered
// twice.
type inStream struct {
	id        string // the peer
	inc       uint64 // the peer incarnation it comes from
	delivered uint64 // messages delivered into the user's queue
	received  uint64 // their cost: payload bytes plus msgCost each
	consumed  uint64 // the cost of those the user has taken off the queue
	granted   uint64 // the credit limit last sent
	// window is the window granted now (window.go), 0 for Config.Window;
	// checkConsumed and checkAt are consumed, and the time, at its last
	// check.
	window        uint64
	checkConsumed uint64
	checkAt       time.Duration
	ackSent       uint64 // delivered as last sent
	// unconsumed: messages delivered into the user's queue that the user
	// has not taken yet (they come off in order), for the last ACK before
	// this node says goodbye (finalAck).
	unconsumed uint64
	// held: the peer's last ACK said its answers to this node back up there
	// (its backlog flag): this node's producers toward it wait. It lives
	// here, not in the peer record, so that it outlives that record as the
	// count does ("Room for answers").
	held bool
	// stale: the cost of the messages of the peer's earlier incarnations
	// still in the user's queue (delivered, not yet consumed). The credit
	// granted to the current one counts them (grantLimit), so that what a
	// peer id has waiting for the callbacks stays within one window however
	// often its process restarts: each new incarnation used to get a window
	// of its own, and a peer restarting in a loop made a node whose callback
	// was slow hold a window per restart (a black-box audit: 20 restarts,
	// 20 MiB waiting against a window of 1 MiB).
	stale uint64
}

// FlowControl reports whether this node's v2 sessions run flow control:
// their peers send only within the credit granted, so the adapter's reader
// never waits for the user (link.Layer.FlowControlled). Always true, except
// under the negative control MutationNoCredit.
func (n *Node) FlowControl() bool { return !n.cfg.mutation.noCredit() }

// reliable reports whether session c runs flow control and resend (v2).
func reliable(c *conn) bool { return !c.legacy() }

// sendReliable accepts payload for p under the queue bounds; reserve: a
// producer's Send (SendContext), which leaves the rest of the queue to
// answers sent from callbacks and waits while the peer says its answers to
// this node back up (see "Room for answers" above). share: a SendMany's
// shared copy in progress (nil for a Send).
func (n *Node) sendReliable(p *peer, payload []byte, reserve bool, share *sharedPayload) error {
	o := &p.out
	if reserve && !n.admitting && !n.cfg.mutation.noCredit() { // the blocking design had no room for replies: see MutationNoCredit
		if err := n.producerWaits(p, uint64(len(payload))+msgCost); err != nil {
			o.refused = true
			if o.lease.holdsRoom() {
				// The room the lease holds goes back to the producers'
				// share: a message that does not fit in the lane, and not
				// beside it, would otherwise wait for ever with the
				// queue empty (lease.go).
				o.lease.giveBack = true
			}
			n.askForAck(p)
			return err
		}
	}
	l := &o.lease
	if o.count+l.msgs+l.amsgs >= n.cfg.QueueMessages || o.bytes+int(l.cost+l.acost)+len(payload) > n.cfg.QueueBytes {
		o.refused = true
		if l.amsgs > 0 {
			// The answer room goes back to the queue (lease.go, "Room for
			// answers"): a Send that the bounds alone refuse is one the
			// proof's assumption does not cover, or a producer's message
			// of nearly the whole queue, which would otherwise wait for
			// ever beside room that answers hold.
			l.giveBack = true
			if reserve && uint64(len(payload))+msgCost > n.producerShare(p) {
				// Held as producerWaits holds the others for it: no new
				// lease, whose answer room would keep it out again,
				// until it goes.
				o.bigUntil = n.now + n.cfg.HeartbeatInterval
			}
		}
		n.askForAck(p)
		return fmt.Errorf("%w: %q has %d messages, %d bytes not yet acknowledged", ErrQueueFull, p.id, o.count, o.bytes)
	}
	o.queue(payload, reserve, share.of(payload))
	if c := p.session; c != nil && c.resumed {
		n.pump(p, c, payload)
	}
	n.pace(p)
	return nil
}

// askForAck asks p for an ACK, with an empty PING, when a Send was refused
// for want of room and p may not acknowledge soon by itself: fewer than
// ackEvery messages are out on the session, so p's count rule sends none,
// and its credit rule (a quarter of p's window consumed) may not either, as
// the queue here can hold less than that. Without it, a small queue
// (WithSendQueue) or a peer with a larger window held a producer until
// p's next heartbeat: one queue's worth a second. Once per ACK received.
func (n *Node) askForAck(p *peer) {
	c, o := p.session, &p.out
	if c == nil || !reliable(c) || !c.resumed || c.askedAck || o.count == 0 || o.sent >= ackEvery || p.in.held {
		return // (held: the ACK that clears the peer's flag comes at once anyway)
	}
	c.askedAck = true
	n.write(c, wire.Frame{Type: wire.Ping}) // empty: it disturbs no round-trip sample (observe.go)
}

// producerWaits returns why a producer's message of the given cost toward p
// must wait, or nil: the peer says its answers to this node back up there,
// or the producers' share of the queue (producerShare, and half its
// messages) is used. A message that costs more than the whole share, or a
// queue of one message whose half is none, still goes into an empty queue, as
// credit lets it go (a message may start anywhere within the credit): it
// would otherwise wait for ever, with nothing queued that could free room
// (a black-box audit found SendContext of a payload over a window minus
// msgCost waiting until its context ended, the queue empty). While such a
// message waits for the queue to empty, the other producers' messages wait
// too: with producers of smaller messages keeping the queue from ever
// emptying, a 2 MiB SendContext waited 4-10 s (a black-box audit). The
// hold lasts a heartbeat interval past the big message's last refusal, by
// the node's clock (a Send reads none: the time of its latest other step,
// a Tick at least every heartbeat while a session lives): its producer asks
// again each time messages leave the queue (ActRoom), and one that stopped
// asking holds nobody for long.
func (n *Node) producerWaits(p *peer, cost uint64) error {
	o := &p.out
	if n.cfg.mutation.noPacing() { // deliberately wrong: see MutationNoPacing
		return n.oldPacing(p, cost)
	}
	if p.in.held {
		return fmt.Errorf("%w: %q says its answers to this node back up there; a producer waits for them to drain", ErrQueueFull, p.id)
	}
	share := n.producerShare(p)
	big := cost > share
	if o.bigUntil != 0 && n.now >= o.bigUntil {
		o.bigUntil = 0 // its producer stopped asking (gave up, or sent it)
	}
	if (o.count > 0 || o.lease.holdsRoom()) && (o.count+o.lease.msgs >= n.cfg.QueueMessages/2 || o.queued()+o.lease.cost+cost > share) {
		if big {
			o.bigUntil = n.now + n.cfg.HeartbeatInterval
		}
		return fmt.Errorf("%w: %q has %d messages, %d bytes with their overhead not yet acknowledged; producers may keep %d bytes with overhead in fewer than %d messages (or one message of any size)", ErrQueueFull, p.id, o.count, o.queued(), share, n.cfg.QueueMessages/2)
	}
	if big {
		o.bigUntil = 0 // it goes: the others may follow
		return nil
	}
	if o.bigUntil != 0 {
		return fmt.Errorf("%w: a producer's message of more than the producers' %d bytes toward %q waits for the queue to empty; the others wait for it", ErrQueueFull, share, p.id)
	}
	return nil
}

// oldPacing is producerWaits before the backlog flag, for MutationNoPacing:
// the peer's flag ignored, a producer held while its own user is more than
// half a window behind on p's messages, the producers' share counted in
// payload bytes (two windows) and half the queue's messages.
func (n *Node) oldPacing(p *peer, cost uint64) error {
	o := &p.out
	if behind := p.in.received - p.in.consumed; behind > uint64(n.cfg.Window)/2 {
		return fmt.Errorf("%w: this node's user is %d bytes behind on %q's messages; a producer waits for it", ErrQueueFull, behind, p.id)
	}
	if o.count >= n.cfg.QueueMessages/2 || o.bytes+int(cost-msgCost) > min(n.cfg.QueueBytes/2, 2*n.cfg.Window) {
		return fmt.Errorf("%w: %q has %d messages, %d bytes not yet acknowledged", ErrQueueFull, p.id, o.count, o.bytes)
	}
	return nil
}

// queued returns the cost of the messages in the queue.
func (o *outStream) queued() uint64 { return o.tail - o.ackedEnd }

// answersBacklog returns by how much the cost of the answers (messages not
// sent by a producer) queued toward the peer exceeds the room its credit
// leaves: what must wait for the peer's user however the queue is ordered.
func (o *outStream) answersBacklog() uint64 {
	answers := o.queued() - o.reserved
	var room uint64
	if o.limit > o.ackedEnd {
		room = o.limit - o.ackedEnd
	}
	if answers <= room {
		return 0
	}
	return answers - room
}

// pace sets the backlog flag this node shows p once the answers queued
// toward p go past p's credit by more than a window, and clears it once
// they are back within half a window (answersBacklog); each flip goes to p
// at once in an ACK, every other ACK repeats it.
func (n *Node) pace(p *peer) {
	o := &p.out
	b, hi := o.answersBacklog(), uint64(n.cfg.Window)
	switch {
	case !o.backlog && b > hi:
		o.backlog = true
	case o.backlog && b <= hi/2:
		o.backlog = false
	default:
		return
	}
	if c := p.session; c != nil && reliable(c) {
		n.sendAck(p, c)
	}
}

// heardBacklog records the backlog flag of p's ACK: while it is set, this
// node's producers toward p wait; when it clears they may go on.
func (n *Node) heardBacklog(p *peer, f *wire.Frame) {
	in := p.in
	was := in.held
	in.held = f.Backlog
	if was && !in.held {
		n.maybeRoom(p)
	}
}

// pump writes the messages of p's stream that the credit allows on session c:
// a message goes while the stream offset at its start is below the limit.
// A message larger than the peer accepts (it was queued before its limit was
// known) is handed back as lost rather than sent: it would close the session
// and come back on every reconnect. fresh, when a Send just queued its
// message, is the caller's payload: its DATA carries it rather than the
// stream's copy. A run's frames that may all go are written without reading
// them (outqueue.go); only where the credit or the peer's limit may stop
// within a run are they read one by one.
func (n *Node) pump(p *peer, c *conn, fresh []byte) {
	o := &p.out
	var run frameRun // frames of a segment written in one ActWriteData
	for o.sent < o.count && o.cur.end < o.limit {
		r := o.next()
		var m []byte // a message written from its own slice, not from a segment
		switch {
		case fresh != nil && o.sent == o.count-1:
			// The message the Send in progress just queued: the caller's
			// bytes (the same slice for every peer of a SendMany, so the
			// connection layer encodes it once), equal to the copy kept.
			m = fresh
		case r.shared != nil:
			m = (*r.shared)[:r.n:r.n] // a SendMany's shared copy
		}
		if m != nil {
			if n.waitsForConfirm(c, m) {
				break
			}
			if n.tooLarge(p, c, m, &run) {
				continue
			}
			n.writeRun(c, &run)
			n.writeData(c, m)
			o.advance(r, 1, wire.HeaderSize+len(m), len(m))
			continue
		}
		// Frames in the run's segment, from the cursor to the run's end
		// (before the fresh message, which goes as the caller's bytes).
		k, end := r.count-o.cur.in, r.at+r.size()
		if fresh != nil && o.cur.run == len(o.runs)-1 {
			k, end = k-1, end-wire.DataFrameSize(len(fresh))
		}
		fits := r.end <= o.limit || n.cfg.mutation.runPastCredit() // see MutationRunPastCredit
		if k > 1 && fits && c.takes(int(r.maxN)) {
			// All of them may go.
			size := end - o.cur.at
			bytes := size - k*wire.HeaderSize
			run.add(n, c, r.seg, o.cur.at, end)
			n.countData(c, k, bytes)
			o.advance(r, k, size, bytes)
			continue
		}
		m = frameAt(r.seg, o.cur.at)
		if n.waitsForConfirm(c, m) {
			break
		}
		if n.tooLarge(p, c, m, &run) {
			continue
		}
		size := wire.DataFrameSize(len(m))
		run.add(n, c, r.seg, o.cur.at, o.cur.at+size)
		n.countData(c, 1, len(m))
		o.advance(r, 1, size, len(m))
	}
	n.writeRun(c, &run)
}

// waitsForConfirm reports whether m, the next message of p's stream, is
// larger than the peer of session c accepts while c is not yet confirmed:
// pump then stops before it, and confirm pumps again. Its Lost is about
// the process c reaches (its limit), so it comes after that process's
// Connect (and the Disconnect of the one it replaced), not before them: a
// follower resumes its stream on the leader's first ACK, before the
// leader's RESUME confirms the session, and a black-box audit saw such
// Lost events come before the old process's Disconnect.
func (n *Node) waitsForConfirm(c *conn, m []byte) bool {
	return c.unconfirmed && !c.takes(len(m))
}

// tooLarge reports whether m, the next message of p's stream, is larger
// than the peer of session c accepts; if so it hands it back as lost and
// cuts it from the stream (the frames of r before it go out first).
func (n *Node) tooLarge(p *peer, c *conn, m []byte, r *frameRun) bool {
	if c.takes(len(m)) {
		return false
	}
	lost := append([]byte(nil), m...) // the user's to keep (m may be in a segment)
	o := &p.out
	o.cutNext()
	n.writeRun(c, r) // the frames before it go out before its Lost
	n.emit(Action{Kind: ActLost, Peer: p.id, Incarnation: o.inc, Lost: [][]byte{lost},
		Err: fmt.Errorf("%w: %d bytes, %s accepts at most %d: %w", ErrMessagesLost, len(m), p.id, c.peerMax-1, ErrPayloadTooLarge)})
	return true
}

// frameRun is the consecutive DATA frames seg.b[start:end] of a stream's
// segment that pump writes in one ActWriteData; empty when start == end.
type frameRun struct {
	seg        *segment
	start, end int
}

// add adds g.b[start:end], frames of a stream's segment, to r, writing r's
// frames first when they do not end where these start.
func (r *frameRun) add(n *Node, c *conn, g *segment, start, end int) {
	if r.seg != g || r.end != start {
		n.writeRun(c, r)
		r.seg, r.start = g, start
	}
	r.end = end
}

// writeRun writes r's frames on c in one ActWriteData and empties r.
func (n *Node) writeRun(c *conn, r *frameRun) {
	if r.start == r.end {
		return
	}
	a := n.addAction(ActWriteData)
	a.Conn = c.id
	a.Frame.Type, a.Frame.Payload = wire.Data, r.seg.b[r.start:r.end:r.end]
	*r = frameRun{}
}

// streamsStart runs when v2 session c with p is established: the incoming
// stream starts over for a new incarnation of p, and this end tells p what
// it delivered and how much p may send.
func (n *Node) streamsStart(p *peer, c *conn) {
	in := p.in
	if in.inc != c.peerInc {
		*in = inStream{id: p.id, inc: c.peerInc, stale: in.stale + in.received - in.consumed}
	}
	c.resumed, c.peerResumed = false, false
	n.sendAck(p, c)
}

// grantLimit returns the offset of p's stream (in bytes received here) up to
// which p may send now: its window (window.go) past what the user consumed,
// and never less than granted. It depends on nothing else but the user's
// pace, in particular not on this
// node's own queue toward p: two nodes that each waited for room in their
// queue before granting could each wait for the other (a cycle the tests
// found with two echoing nodes).
func (n *Node) grantLimit(p *peer) uint64 {
	in := p.in
	if n.cfg.mutation.noCredit() {
		return max(in.granted, in.received+1<<62) // deliberately wrong: see MutationNoCredit
	}
	limit := in.consumed + n.windowOf(in)
	limit -= min(limit, in.stale) // earlier incarnations' messages still queued (stale)
	return max(limit, in.granted, in.received)
}

// onAck handles the peer's ACK: on a new session the first one resumes the
// stream; later ones acknowledge and grant credit.
func (n *Node) onAck(c *conn, f *wire.Frame) {
	p := c.peer
	o := &p.out
	if !c.resumed {
		n.resume(p, c, f)
		return
	}
	c.askedAck = false
	if c.behind {
		if f.Delivered < o.acked && f.Delivered >= c.behindAt {
			// Sent before our RESUME reached the peer (it still counts
			// what it delivered before the messages this node reported
			// lost): it acknowledges nothing, and its credit counts from
			// the next message, as at resume. Once the peer applies the
			// RESUME its count is acked, and a lower one is a violation
			// again. (A Disconnect and a Connect at once, with the peer's
			// user behind: the ACK that its user's consumption sent before
			// RESUME arrived closed the new session as a protocol error, a
			// black-box audit.)
			o.limit = max(o.limit, addCapped(o.ackedEnd, f.Credit))
			n.pump(p, c, nil)
			n.heardBacklog(p, f)
			n.pace(p)
			return
		}
		c.behind = false
	}
	if f.Delivered < o.acked || f.Delivered > o.acked+uint64(o.sent) {
		n.closeConn(c, wire.CodeProtocol, fmt.Errorf("%w: ACK delivered=%d outside acked %d..%d", ErrProtocol, f.Delivered, o.acked, o.acked+uint64(o.sent)))
		return
	}
	k := int(f.Delivered - o.acked)
	o.drop(k)
	o.limit = max(o.limit, addCapped(o.ackedEnd, f.Credit))
	n.pump(p, c, nil)
	if k > 0 {
		n.maybeRoom(p)
	}
	n.heardBacklog(p, f)
	n.pace(p)
}

// resume starts p's stream on session c from the peer's first ACK: the
// messages p delivered are dropped, the rest are sent again in order, after
// a RESUME saying which number comes next. If p is a new incarnation, the
// messages sent to the old one are reported lost: they may or may not have
// been delivered, and the new process knows nothing of them.
func (n *Node) resume(p *peer, c *conn, f *wire.Frame) {
	o := &p.out
	switch {
	case o.inc != c.peerInc:
		if o.inc != 0 && o.everSent > 0 {
			n.reportLost(p, o.everSent, fmt.Errorf("%w: %s restarted (incarnation %d, now %d)", ErrMessagesLost, p.id, o.inc, c.peerInc))
		}
		// A new stream continues the receiver's count of what it delivered;
		// byte offsets are this node's own, only differences travel.
		o.inc, o.acked, o.everSent = c.peerInc, f.Delivered, 0
	case f.Delivered > o.acked+uint64(o.everSent):
		n.closeConn(c, wire.CodeProtocol, fmt.Errorf("%w: resuming ACK delivered=%d, but only %d were sent", ErrProtocol, f.Delivered, o.acked+uint64(o.everSent)))
		return
	case f.Delivered < o.acked:
		// The peer forgot how much it delivered (it dropped its record of
		// this node while neither kept the other), or this node reported
		// messages lost that the peer never acknowledged (a Disconnect): it
		// had acknowledged up to acked, so nothing is resent below it, and
		// RESUME tells it where the stream is. Its ACKs sent before the
		// RESUME reaches it say the same (onAck, behind).
		c.behind, c.behindAt = true, f.Delivered
	default:
		o.drop(int(f.Delivered - o.acked))
	}
	if n.cfg.mutation.noResend() {
		o.drop(o.everSent) // deliberately wrong: see MutationNoResend
	}
	o.limit = addCapped(o.ackedEnd, f.Credit)
	o.rewind()
	c.resumed = true
	n.write(c, wire.Frame{Type: wire.Resume, Next: o.acked + 1})
	n.viewAfterResume(c)
	n.pump(p, c, nil)
	n.maybeRoom(p)
	n.heardBacklog(p, f)
	n.pace(p)
}

// reportLost hands the first k messages of p's stream back to the user as
// lost, and forgets them; the stream's numbering goes on past them.
func (n *Node) reportLost(p *peer, k int, why error) {
	o := &p.out
	if k <= 0 {
		return
	}
	lost := make([][]byte, 0, k)
	o.each(k, func(m []byte) { lost = append(lost, append([]byte(nil), m...)) })
	o.drop(k)
	// Nothing left to send: the stream's buffers go back now, not at the
	// next heartbeat, which a peer away has none of (a queue of 16 MiB
	// handed back stayed allocated for good, a black-box audit).
	o.release()
	n.emit(Action{Kind: ActLost, Peer: p.id, Incarnation: o.inc, Lost: lost, Err: why})
	n.maybeRoom(p)
	n.pace(p)
}

// maybeRoom tells the user p's queue has room again after a refusal (it
// runs after messages left the queue).
func (n *Node) maybeRoom(p *peer) {
	if p.out.refused {
		p.out.refused = false
		n.emit(Action{Kind: ActRoom, Peer: p.id})
	}
}

// onResume: the peer's next DATA on this session has number f.Next. It may
// skip numbers only past messages the peer reported lost, never go back.
func (n *Node) onResume(c *conn, f *wire.Frame) {
	in := c.peer.in
	if c.peerResumed || f.Next < in.delivered+1 {
		n.closeConn(c, wire.CodeProtocol, fmt.Errorf("%w: RESUME next=%d, delivered %d (resumed before: %t)", ErrProtocol, f.Next, in.delivered, c.peerResumed))
		return
	}
	in.delivered = f.Next - 1
	c.peerResumed = true
}

// onReliableData delivers one message of the peer's stream, within the
// credit this node granted, and acknowledges when enough has arrived.
func (n *Node) onReliableData(c *conn, f *wire.Frame) {
	// DATA before the peer's RESUME never gets here: frameOn refuses it by
	// its type (refusal), as the connection layer does at its header.
	n.deliverData(c, f.Payload)
}

// steadyData reports whether every DATA frame on c would be taken by
// onReliableData alone: a v2 session, established, confirmed and resumed
// by the peer. A DATA frame changes none of that (deliverData at most
// closes c), so dataReceived checks it once for a whole run.
func (n *Node) steadyData(c *conn) bool {
	return c.rules == &v1Rules && c.state == StateEstablished && !c.unconfirmed && c.peerResumed
}

// deliverData is onReliableData's rule past its check of the session:
// payload is delivered within the credit this node granted, and
// acknowledged when enough has arrived.
func (n *Node) deliverData(c *conn, payload []byte) {
	p := c.peer
	in := p.in
	if in.received >= in.granted {
		n.closeConn(c, wire.CodeProtocol, errPastCredit(in))
		return
	}
	in.delivered++
	in.unconsumed++
	in.received += uint64(len(payload)) + msgCost
	n.countIn(p, 1, len(payload))
	n.emitMessage(c, p, in.inc, payload)
	switch {
	case in.delivered-in.ackSent >= ackEvery:
		n.sendAck(p, c)
	case c.ackBy == 0:
		c.ackBy = n.now + ackDelay
		n.armConn(c, c.ackBy)
	}
}

// ackEvery is how many messages may be delivered before an ACK must go,
// without waiting for credit to be worth granting or for the heartbeat.
const ackEvery = 64

// ackDelay is how long after a delivery an ACK must go at the latest: the
// messages the peer sends fewer than ackEvery at a time are acknowledged
// this soon, not at the next heartbeat. The sender keeps a message until
// it is acknowledged and hands it back as lost if the session ends for
// good first (a Disconnect): with acknowledgements only every 64 messages
// or every heartbeat, a Disconnect a second after the peer's user had
// handled ten messages handed all ten back, and a user who resent them had
// them handled twice (a black-box audit). Now only those delivered within
// ackDelay plus a one-way trip before the session ended can be. At rates of
// 64 messages per ackDelay or more the count rule sends the ACKs and this
// adds none.
const ackDelay = 20 * time.Millisecond

// consumed records that the user took msgs messages of incarnation inc,
// with bytes of payload, off its queue; credit follows once it is worth an
// ACK.
func (n *Node) consumed(id string, inc uint64, msgs, bytes int) {
	in := n.inbound[id]
	if in == nil || msgs <= 0 || bytes < 0 {
		return
	}
	cost := uint64(bytes) + uint64(msgs)*msgCost
	switch {
	case in.inc != inc && inc != 0:
		// An earlier incarnation's messages: the room they leave is the
		// current stream's credit (stale). (Incarnation 0: a 0.4.1
		// session's, which has no credit and counted in no stream.)
		in.stale -= min(in.stale, cost)
	case in.inc != inc:
	default:
		in.consumed = min(in.consumed+cost, in.received)
		in.unconsumed -= min(in.unconsumed, uint64(msgs))
	}
	p := n.peers[id]
	if p == nil {
		return
	}
	if in.inc == inc {
		n.tuneWindow(in)
	}
	if p.session != nil && reliable(p.session) && n.grantLimit(p) >= in.granted+uint64(n.cfg.Window)/4 {
		n.sendAck(p, p.session)
	}
	if n.cfg.mutation.noPacing() && in.received-in.consumed <= uint64(n.cfg.Window)/2 {
		n.maybeRoom(p) // oldPacing held a producer until its user caught up
	}
}

// finalAck runs before this node ends its session with p for its user
// (Disconnect, Close): it acknowledges what the user has taken off the
// queue since the last ACK, so that p reports none of it lost. Without it a
// Close after a whole exchange had the peer report up to 63 messages lost
// that its user had answered (an ACK goes every 64 messages, or with the
// heartbeat; the counter example printed "messages lost" on every run, a
// black-box audit). What is still in the queue is not acknowledged: Close
// drops it, so p reports it lost, as the README says. The ACK grants no
// credit (Credit 0 changes no limit: onAck keeps the greater).
func (n *Node) finalAck(p *peer) {
	c, in := p.session, p.in
	if c == nil || !reliable(c) || in == nil || in.inc != c.peerInc {
		return
	}
	if d := in.delivered - min(in.unconsumed, in.delivered); d > in.ackSent {
		in.ackSent = d
		n.write(c, wire.Frame{Type: wire.Ack, Delivered: d, Backlog: p.out.backlog})
	}
}

// sendAck tells p what was delivered and grants what credit there is room
// for: the bytes it may send past the last message delivered.
func (n *Node) sendAck(p *peer, c *conn) {
	in := p.in
	in.granted = n.grantLimit(p)
	in.ackSent = in.delivered
	c.ackBy = 0
	n.write(c, wire.Frame{Type: wire.Ack, Delivered: in.delivered, Credit: in.granted - in.received, Backlog: p.out.backlog})
}

// ackDue reports whether p should hear an ACK with the heartbeat: messages
// delivered or credit available since the last one.
func (n *Node) ackDue(p *peer) bool {
	in := p.in
	return in.delivered != in.ackSent || n.grantLimit(p) > in.granted
}

// maxInbound bounds the incoming streams a node remembers. Past it the
// oldest one of a peer it no longer knows is forgotten: that peer, if it
// comes back from the same incarnation with messages delivered but never
// acknowledged, would have them delivered again.
const maxInbound = 1 << 16

// inboundFor returns the incoming stream of peer id, remembered or new.
func (n *Node) inboundFor(id string) *inStream {
	if in := n.inbound[id]; in != nil {
		return in
	}
	// One pass at most: when every remembered stream belongs to a peer still
	// known, none is forgotten (their number is bounded by the peers).
	for tries := len(n.inboundOrder); len(n.inbound) >= maxInbound && tries > 0; tries-- {
		old := n.inboundOrder[0]
		n.inboundOrder = n.inboundOrder[1:]
		if n.peers[old] == nil {
			delete(n.inbound, old)
		} else {
			n.inboundOrder = append(n.inboundOrder, old) // in use: keep it
		}
	}
	in := &inStream{id: id}
	n.inbound[id] = in
	n.inboundOrder = append(n.inboundOrder, id)
	return in
}

// addCapped is a+b, or the largest uint64 where that would wrap (a credit a
// peer sends is its own business, but must not wrap into a smaller limit).
func addCapped(a, b uint64) uint64 {
	if a+b < a {
		return ^uint64(0)
	}
	return a + b
}
