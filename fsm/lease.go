package fsm

import (
	"fmt"

	"github.com/masterless-go/masterless/wire"
)

// Leases: a producer's messages accepted without a step each.
//
// Every message a producer sends (Send with Reserve: netio's SendContext)
// used to be one step of this machine, under the adapter's lock, on the
// producer's goroutine: most of a one-way producer's CPU (PERFORMANCE.md, "Where
// the time goes": the step, the write into the output buffer and the core
// lock). A lease lets the adapter accept a run of
// them itself and hand them over in one step, as quinn's core hands its
// driver flow-control credit and lets it transmit. The rules stay here:
//
//   - The node grants a lease (ActLease) only while a producer's Send to
//     the peer would be accepted as such: a v2 session that has resumed,
//     the peer's backlog flag clear, no large producer message waiting
//     (producerWaits), not shut down. Its size is the room left in the
//     producers' share (producerShare, and half the queue's messages),
//     at most leaseMessages and leaseCost in all, minus what the lease
//     already holds, which counts as queued: no other Send can take that
//     room. So every message staged within it is one
//     that a Send stepped at the time of the grant would have accepted.
//   - The adapter stages within it: at most Messages messages, each of at
//     most MaxPayload bytes, costing at most Cost in all (payload plus
//     MessageCost each), in the order its producers sent them. It then
//     steps Admit with them, in that order, before any other Send to the
//     peer, which queues them (they fit: their room was held) and writes
//     what credit allows, all in one step.
//   - When a condition of the grant no longer holds after a step (the
//     session ended or was replaced, the flag was set, a large message
//     waits, the node shut down, the peer was forgotten), the node revokes
//     the lease (an ActLease with Messages 0) and forgets it. So does a
//     producer's Send refused while the lease holds room (a message too
//     large for the lane, which would not fit beside the lease's room
//     either): the room goes back to the share, and the refused producer
//     hears of it (ActRoom). The adapter
//     stops staging and admits what it staged before its next other step.
//     A revoked lease's messages are taken as the messages queued when it
//     ended are held (admitLate): a peer kept, or waited for after its
//     session ended (an outstanding lease counts as messages held when a
//     session ends: sessionEnded), gets them with its next session; toward
//     a peer not held, or once shut down, they are handed back in an
//     ActLost saying why, since the producer was told they were accepted.
//
// Room for answers. A lease also holds room for answers (Send without
// Reserve: a callback's reply), so that the adapter may stage those too,
// in the same lane and so in the same order as the producers' messages
// it holds. An answer is refused only by the queue's bounds ("Room for
// answers", stream.go), which the answer room counts as taken, as it counts
// the producers' room; the Admit says which staged messages are answers
// (Runs), and they are queued as answers, so the backlog flag counts them.
// The room is at most the slack the bounds leave past what that proof
// needs (answerSlack): the room held is the one term the proof adds, and
// with it no answer is refused that would have been without, whatever the
// application. With the defaults the slack is far larger than a lease; a
// node whose bounds leave none grants none, and its answers take steps.
// An answer Send refused while the lease holds answer room (an application
// outside the proof's assumption) gives the room back, as a producer's
// refusal does. An answer accepted by a step asks for a lease, or more room
// on the one held, as a producer's Send does, when it joins a stream (more
// than answerStream messages queued): answers in a request/response rhythm
// have nothing to gain from a lane.
//
// A producer's SendMany (Reserve) of a payload below SharedMin asks for a
// lease for each peer that took it, as a producer's Send does: for each
// peer it is a Send of its own, the payload copied into the stream. So the
// adapter may stage such a payload, encoded once, in each peer's lane.
//
// The lease is local: nothing of it travels, and the peer sees the same
// DATA frames it would have seen from single Sends.

// MessageCost is the credit a message costs beyond its payload (msgCost):
// a lease's Cost counts it for each message.
const MessageCost = msgCost

// leaseMessages and leaseCost bound what a lease holds at once: the
// messages a producer may stage before they are admitted. A lease of the
// whole producers' share (a window, thousands of small messages) let a
// producer stage thousands before its writer came to admit them, in
// bursts that the peer's answers then came back in.
const (
	leaseMessages = 1024
	leaseCost     = 64 << 10
)

// LeaseMaxPayload is the largest payload a lease lets the adapter stage
// (Lease.MaxPayload is at most this). A larger message is copied whole
// anyway, so it gains nothing from being staged: it takes a Send step of
// its own. A producer's Send (Reserve) accepted asks for a lease itself
// only for a message a lease could have carried (sendEvent), so that a
// producer of large messages holds no room it cannot use, and its adapter
// needs no rule of its own for when to ask.
const LeaseMaxPayload = 16 << 10

// Lease is what an ActLease grants: more room for Peer's producers, and
// for answers to Peer, on the lease named Gen (a new Gen: a new lease,
// nothing of an older one carried over). A Lease that grants nothing
// (Revoked) revokes lease Gen.
type Lease struct {
	Gen        uint64
	Messages   int    // how many more producers' messages may be staged
	Cost       uint64 // what they may cost in all: payload plus MessageCost each
	MaxPayload int    // the largest payload one message, of either kind, may have
	// Answers and AnswerCost are the same for answers (Send without
	// Reserve): room of their own, which the producers' messages may not
	// take, nor the answers theirs.
	Answers    int
	AnswerCost uint64
}

// Revoked reports whether l revokes its lease rather than grant room.
func (l Lease) Revoked() bool { return l.Messages == 0 && l.Answers == 0 }

// Admit hands the node the messages staged under lease Gen toward Peer
// (see "Leases"): Frames holds Messages v1 DATA frames (wire.AppendData),
// back to back, in the order they were sent. Renew asks for more room on
// the lease (or a new lease) afterwards. Messages 0 with Renew is a request
// for a lease alone. Admit is time-free, as Send.
//
// Runs says which of the messages are answers: runs of consecutive
// messages of one kind, in the order of Frames, whose Messages add up to
// Messages. Empty, all are producers' messages.
//
// FrameSize, when not 0, says that every frame of Frames is FrameSize
// bytes long (the adapter's lane knows it as it stages: a producer's
// records of one size, a fan-out's one frame). The node then takes the
// frames by arithmetic, reading only the first: walking them was a fourth
// of an admission's CPU, on bytes another CPU had just written.
//
// Staging more than the lease granted is the adapter's bug, and so is
// Frames that does not hold Messages frames of FrameSize bytes: the node
// panics rather than break the queue's bounds. Of the latter it checks the
// total length and the first frame, and trusts the others as it trusts
// Messages and Runs (the adapter encoded them all alike). An Admit of a
// lease no longer held takes its messages one by one (they are late: see
// admitLate), FrameSize or not.
type Admit struct {
	Peer      string
	Gen       uint64
	Frames    []byte
	Messages  int
	Runs      []AdmitRun
	Renew     bool
	FrameSize int
}

// AdmitRun is a run of consecutive staged messages of one kind (Admit.Runs).
type AdmitRun struct {
	Messages int
	Answers  bool // sent without Reserve: staged in the lease's answer room
}

// AppendRun is the adapter's bookkeeping of Admit.Runs: it returns runs
// with one more message staged, of the kind answer says, after before
// others. Empty runs mean the before messages are all producers' (the
// common stream, which never pays for runs): they stay empty until an
// answer comes, which opens a producers' run of before and its own.
func AppendRun(runs []AdmitRun, before int, answer bool) []AdmitRun {
	if len(runs) == 0 {
		if !answer {
			return runs
		}
		if before > 0 {
			runs = append(runs, AdmitRun{Messages: before})
		}
	}
	if k := len(runs); k > 0 && runs[k-1].Answers == answer {
		runs[k-1].Messages++
		return runs
	}
	return append(runs, AdmitRun{Messages: 1, Answers: answer})
}

// AppendFrameSize is the adapter's bookkeeping of Admit.FrameSize, as
// AppendRun is of Runs: size says the length of the before messages staged
// so far (0 when they have several; anything when before is 0); it returns
// what it says with one more message of n payload bytes staged after them.
func AppendFrameSize(size, before, n int) int {
	if fl := wire.DataFrameSize(n); before == 0 || size == fl {
		return fl
	}
	return 0
}

func (Admit) isEvent() {}

// leaseState is a peer's lease as the node holds it: what the adapter may
// still stage (msgs, cost) plus what it staged and has not admitted yet.
type leaseState struct {
	gen  uint64
	conn *conn // the session it was granted on
	msgs int
	cost uint64
	// amsgs and acost: the same for answers (Lease.Answers).
	amsgs int
	acost uint64
	// giveBack: a Send was refused while the lease held room of its
	// kind; the lease ends with this step, so that its room is the
	// share's, or the queue's, again (sendReliable).
	giveBack bool
	// producers: the lease holds room for producers, or did (grantLease).
	producers bool
}

// holdsRoom reports whether the lease holds room for a message: one the
// queue counts as taken (producerWaits), and gives back when a producer's
// Send is refused beside it (sendReliable). A lease the lane has used up
// holds less than a message's cost and counts for nothing there, so that
// an empty queue still takes one message of any cost.
func (l *leaseState) holdsRoom() bool {
	return l.gen != 0 && l.msgs > 0 && l.cost >= msgCost
}

// leaseUsable reports whether p's producers may be granted a lease now: a
// producer's Send would pass producerWaits on a resumed v2 session.
func (n *Node) leaseUsable(p *peer) bool {
	c := p.session
	o := &p.out
	return !n.shutdown && !p.forgotten && !o.lease.giveBack && c != nil && reliable(c) && c.resumed &&
		!p.in.held && (o.bigUntil == 0 || n.now >= o.bigUntil) &&
		!n.cfg.mutation.noCredit() && !n.cfg.mutation.noPacing()
}

// grantLease gives p's producers the room left in their share, past what
// the lease already holds, and answers the room the queue's slack leaves
// them (answerSlack), if a lease may be used. producers: a producer's Send
// or SendMany asks, or an Admit that asks for a new lease; otherwise an
// answer does, or the adapter renews the lease it holds, and the producers
// get room only on a lease that already gave them some. So a
// stream of answers never holds room for producers that send nothing: held,
// it would keep a producer's message over the share out of the empty queue
// it may go into (producerWaits), and a refusal that gives it back would
// be followed by the next answer's grant, for ever.
func (n *Node) grantLease(p *peer, producers bool) {
	if !n.leaseUsable(p) {
		return
	}
	o := &p.out
	l := &o.lease
	if l.gen != 0 && l.conn != p.session {
		return // checkLeases revokes it at the end of this step
	}
	producers = producers || l.producers
	var msgs int
	var cost uint64
	if producers {
		m := min(n.cfg.QueueMessages/2-o.count, leaseMessages) - l.msgs
		used := o.queued() + l.cost
		share := n.producerShare(p)
		if m > 0 && used+msgCost <= share && l.cost+msgCost <= leaseCost {
			msgs, cost = m, min(share-used, leaseCost-l.cost)
		}
	}
	var answers int
	var answerCost uint64
	if n.answerMsgs > 0 {
		// Within the queue's bounds, beside the producers' room (the
		// bounds sendReliable checks, every lease's room counted).
		m := min(n.answerMsgs-l.amsgs, n.cfg.QueueMessages-o.count-l.msgs-msgs-l.amsgs)
		taken := uint64(o.bytes) + l.cost + cost + l.acost
		if n.cfg.mutation.answerRoomPastBounds() { // deliberately wrong: see MutationAnswerRoomPastBounds
			m, taken = n.answerMsgs-l.amsgs, 0
		}
		if m > 0 && l.acost+msgCost <= n.answerCost && taken+msgCost <= uint64(n.cfg.QueueBytes) {
			answers, answerCost = m, min(n.answerCost-l.acost, uint64(n.cfg.QueueBytes)-taken)
		}
	}
	if msgs == 0 && answers == 0 {
		return
	}
	maxPayload := min(n.cfg.MaxFrameSize-1, LeaseMaxPayload)
	if p.maxFrame != 0 {
		maxPayload = min(maxPayload, p.maxFrame-1)
	}
	if l.gen == 0 {
		n.leaseGen++
		l.gen, l.conn = n.leaseGen, p.session
		n.leased = append(n.leased, p)
	}
	l.producers = producers
	l.msgs += msgs
	l.cost += cost
	l.amsgs += answers
	l.acost += answerCost
	a := n.addAction(ActLease)
	a.Peer, a.Conn = p.id, l.conn.id
	a.Lease = Lease{Gen: l.gen, Messages: msgs, Cost: cost, MaxPayload: maxPayload, Answers: answers, AnswerCost: answerCost}
}

// answerStream is how many messages an answer's queue must hold before
// the answer asks for room for answers: more than two ACKs' worth (a peer
// acknowledges every ackEvery), so that a request/response rhythm, whose
// queue an ACK empties every ackEvery messages at most, asks for none.
const answerStream = 2 * ackEvery

// answerSlack returns the most answer room a lease may hold (Lease.Answers,
// AnswerCost): what cfg's queue bounds leave past what "Room for answers"
// (stream.go) needs for payloads up to a window, (4 M + 3 W)/msgCost + 5
// messages and 4 M + 3 W + 2 W bytes (W the window, M the most it grows
// to), at most leaseMessages and leaseCost; none when they leave less than
// one message.
func answerSlack(cfg Config) (int, uint64) {
	need := 4*cfg.MaxWindow + 3*cfg.Window
	msgs := cfg.QueueMessages - (need/msgCost + 5)
	bytes := cfg.QueueBytes - (need + 2*cfg.Window)
	if msgs < 1 || bytes < msgCost {
		return 0, 0
	}
	return min(msgs, leaseMessages), uint64(min(bytes, leaseCost))
}

// checkLeases revokes, at the end of a step, every lease whose grant no
// longer holds (see "Leases").
func (n *Node) checkLeases() {
	for _, p := range n.leased {
		if !n.leaseHolds(p) {
			n.revokeLeases()
			return
		}
	}
}

// leaseHolds reports whether p's lease still stands: granted, on the
// session it was granted on, and usable.
func (n *Node) leaseHolds(p *peer) bool {
	l := &p.out.lease
	return l.gen != 0 && l.conn == p.session && n.leaseUsable(p)
}

// revokeLeases revokes the leases whose grant no longer holds, and drops
// them from Node.leased.
func (n *Node) revokeLeases() {
	kept := n.leased[:0]
	for _, p := range n.leased {
		l := &p.out.lease
		if l.gen == 0 {
			continue // revoked already
		}
		if n.leaseHolds(p) {
			kept = append(kept, p)
			continue
		}
		a := n.addAction(ActLease)
		a.Peer, a.Conn = p.id, l.conn.id
		a.Lease = Lease{Gen: l.gen}
		held := l.holdsRoom() || l.amsgs > 0
		*l = leaseState{}
		if held {
			n.maybeRoom(p) // the room it held is free: a producer refused for want of it may go
		}
	}
	clear(n.leased[len(kept):])
	n.leased = kept
}

// admitStaged queues the messages staged under a lease toward e.Peer
// (Admit), each run of them as its kind (Runs), and grants more room when
// asked (Renew).
func (n *Node) admitStaged(e *Admit) error {
	p := n.peers[e.Peer]
	var l *leaseState
	if p != nil && e.Gen != 0 && p.out.lease.gen == e.Gen {
		l = &p.out.lease
	}
	var lost [][]byte
	var why error
	runs := e.Runs
	if len(runs) == 0 {
		n.admitRun[0] = AdmitRun{Messages: e.Messages}
		runs = n.admitRun[:]
	}
	frames, count, queued := e.Frames, 0, false
	bySize := e.FrameSize != 0 && l != nil // frames of one length, taken by arithmetic
	if bySize {
		n.checkFrameSize(e)
	}
	for _, r := range runs {
		at, bytes, largest := frames, 0, 0
		walk := r.Messages // the messages to take one by one
		if bySize {
			frames, bytes, largest = n.admitBySize(e, l, r, frames)
			walk = 0
		}
		for range walk {
			payload, rest, ok := wire.NextData(frames)
			if !ok {
				panic(fmt.Sprintf("fsm: node %s: Admit toward %s with a malformed DATA frame, or fewer than its runs say, at byte %d", n.cfg.ID, e.Peer, len(e.Frames)-len(frames)))
			}
			frames = rest
			bytes += len(payload)
			largest = max(largest, len(payload))
			if l != nil {
				cost := uint64(len(payload)) + msgCost
				left, room := &l.msgs, &l.cost
				if r.Answers {
					left, room = &l.amsgs, &l.acost
				}
				if *left < 1 || *room < cost {
					n.broken("Admit toward %s past its lease: %d messages, %d cost left, a message of %d (answers: %t)", e.Peer, *left, *room, cost, r.Answers)
				}
				*left--
				*room -= cost
				continue
			}
			if err := n.admitLate(e.Peer, payload, !r.Answers); err != nil {
				lost = append(lost, append([]byte(nil), payload...))
				why = err
			}
		}
		count += r.Messages
		if l != nil && r.Messages > 0 {
			p.out.queueFrames(at[:len(at)-len(frames)], r.Messages, bytes, uint32(largest), !r.Answers)
			queued = true
		}
	}
	if count != e.Messages || len(frames) > 0 {
		n.broken("Admit toward %s says %d messages and holds %d (%d bytes left past its runs)", e.Peer, e.Messages, count, len(frames))
	}
	if queued {
		if c := p.session; c != nil && c.resumed {
			n.pump(p, c, nil)
		}
		n.pace(p)
	}
	if len(lost) > 0 {
		var inc uint64
		if p != nil {
			inc = p.out.inc
		}
		n.emit(Action{Kind: ActLost, Peer: e.Peer, Incarnation: inc, Lost: lost,
			Err: fmt.Errorf("%w: accepted while this node could take them, then refused: %w", ErrMessagesLost, why)})
	}
	if l == nil && p != nil && e.Gen != 0 {
		n.settleLeaseAway(p)
	}
	if e.Renew && p != nil {
		// More room of the kinds the lease holds; a request for a new
		// lease (the lease named is not held) asks for the producers'.
		n.grantLease(p, l == nil)
	}
	return nil
}

// checkFrameSize panics unless e's frames are e.Messages frames of
// e.FrameSize bytes: their total length, and the first frame's header (the
// others are the adapter's encoding, trusted as the count is), and unless
// its runs add up to e.Messages, before any is queued.
func (n *Node) checkFrameSize(e *Admit) {
	payload, _, ok := wire.NextData(e.Frames)
	if e.FrameSize < wire.HeaderSize || len(e.Frames) != e.Messages*e.FrameSize || e.Messages > 0 && (!ok || len(payload) != e.FrameSize-wire.HeaderSize) {
		panic(fmt.Sprintf("fsm: node %s: Admit toward %s says %d frames of %d bytes and holds %d bytes (first frame whole: %t, payload %d)", n.cfg.ID, e.Peer, e.Messages, e.FrameSize, len(e.Frames), ok, len(payload)))
	}
	if len(e.Runs) > 0 {
		k := 0
		for _, r := range e.Runs {
			k += r.Messages
		}
		if k != e.Messages {
			panic(fmt.Sprintf("fsm: node %s: Admit toward %s says %d messages and its runs %d", n.cfg.ID, e.Peer, e.Messages, k))
		}
	}
}

// admitBySize takes run r of e's frames, which begin frames, from lease l
// as the walk of admitStaged does, by arithmetic: they are all e.FrameSize
// bytes long (checkFrameSize). It returns the frames past the run, and the
// run's payload bytes and largest payload.
func (n *Node) admitBySize(e *Admit, l *leaseState, r AdmitRun, frames []byte) (rest []byte, bytes, largest int) {
	payload := e.FrameSize - wire.HeaderSize
	cost := (uint64(payload) + msgCost) * uint64(r.Messages)
	left, room := &l.msgs, &l.cost
	if r.Answers {
		left, room = &l.amsgs, &l.acost
	}
	if *left < r.Messages || *room < cost {
		n.broken("Admit toward %s past its lease: %d messages, %d cost left, %d messages of %d (answers: %t)", e.Peer, *left, *room, r.Messages, payload, r.Answers)
	}
	*left -= r.Messages
	*room -= cost
	if r.Messages > 0 {
		bytes, largest = r.Messages*payload, payload
	}
	return frames[r.Messages*e.FrameSize:], bytes, largest // within: checkFrameSize
}

// admitLate takes payload, staged toward id under a lease since revoked:
// a producer's Send (reserve) without the pacing it passed at the grant,
// or an answer. It is taken as a message queued when the lease ended would
// still be held: toward a peer with a session, kept, or waited for after
// its session ended (away; sessionEnded counts an outstanding lease as
// messages held, so a peer that may come back is waited for on their
// account too); otherwise, and once shut down or the peer forgotten, it is
// refused.
func (n *Node) admitLate(id string, payload []byte, reserve bool) error {
	n.admitting = true
	defer func() { n.admitting = false }()
	return n.send(id, payload, reserve, nil)
}

// settleLeaseAway runs when the messages of p's revoked lease are in
// (an Admit of a lease no longer held: the adapter sends one at each
// revocation, empty or not). If p is waited for only on that lease's
// account (awayForLease) and nothing came, it is down now, as it would
// have been when its session ended had no lease been outstanding; if
// messages came, it is waited for on their account, as for any queued.
func (n *Node) settleLeaseAway(p *peer) {
	why := p.awayForLease
	if why == nil {
		return
	}
	p.awayForLease = nil
	if !p.away || p.kept || p.session != nil || p.out.count > 0 || n.shutdown {
		return
	}
	n.peerDown(p, why)
	n.maybeForgetPeer(p)
}
