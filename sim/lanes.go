package sim

import (
	"fmt"
	"maps"
	"slices"

	"github.com/masterless-go/masterless/fsm"
	"github.com/masterless-go/masterless/wire"
)

// Producers' lanes (Knobs.Leases): the simulated adapter does what netio's
// lanes do (netio/lane.go) around the fsm's leases (fsm/lease.go). A
// producer's message toward a peer whose lease has room is staged, with no
// step, and counts as accepted at once; an evAdmit a little later (netio:
// the session's writer, woken by the first message staged) admits what
// waits in one Admit step and asks for more room. Any other step that
// sends to the peer, or disconnects it, first admits what waits, and a
// revoked lease's messages are admitted right after the step that revoked
// it, before any other (netio's settle). A producer's message that finds
// no room takes the step (Send with Reserve) and, accepted, asks for a
// lease. Half the answers (Send without Reserve) are staged too, in the
// lease's room for answers, when it has some (answerSend; netio stages an
// answer when the session's writer is busy), and marked as answers in the
// Admit (fsm.Admit.Runs).

// simLane is a producer's lane toward one peer.
type simLane struct {
	gen        uint64
	msgs       int
	cost       uint64
	maxPayload int
	amsgs      int    // the answer room left (fsm.Lease.Answers)
	acost      uint64 // and its cost
	frames     []byte // the staged DATA frames
	count      int
	size       int            // the length of each when they have one, else 0 (fsm.Admit.FrameSize)
	runs       []fsm.AdmitRun // which are answers (fsm.Admit.Runs, fsm.AppendRun); empty: none
	due        bool           // an evAdmit is scheduled
}

// revokedBatch is what a revoked lane held.
type revokedBatch struct {
	peer   string
	gen    uint64
	frames []byte
	count  int
	runs   []fsm.AdmitRun
}

// leased carries out an ActLease of n's fsm (from Notify).
func (w *World) leased(n *process, a *fsm.Action) {
	l := n.lanes[a.Peer]
	if a.Lease.Revoked() {
		if l == nil || l.gen != a.Lease.Gen {
			// No lane of that lease: an empty Admit all the same, as
			// netio sends (the fsm may wait for it, settleLeaseAway).
			n.revoked = append(n.revoked, revokedBatch{peer: a.Peer, gen: a.Lease.Gen})
			return
		}
		delete(n.lanes, a.Peer)
		// Even empty: the fsm waits for it (fsm/lease.go, settleLeaseAway).
		n.revoked = append(n.revoked, revokedBatch{peer: a.Peer, gen: l.gen, frames: l.frames, count: l.count, runs: l.runs})
		if l.count > 0 {
			w.stats.RevokedBatches++
			w.stats.RevokedStaged += l.count
		}
		return
	}
	if l == nil {
		l = &simLane{}
		n.lanes[a.Peer] = l
	}
	if l.gen != a.Lease.Gen {
		if l.count > 0 {
			w.fail(fmt.Errorf("lease: %s's fsm granted lease %d toward %s while %d messages of lease %d wait unadmitted", n.id, a.Lease.Gen, a.Peer, l.count, l.gen))
			return
		}
		l.gen, l.msgs, l.cost, l.amsgs, l.acost = a.Lease.Gen, 0, 0, 0, 0
	}
	l.msgs += a.Lease.Messages
	l.cost += a.Lease.Cost
	l.amsgs += a.Lease.Answers
	l.acost += a.Lease.AnswerCost
	l.maxPayload = a.Lease.MaxPayload
}

// stage puts payload in n's lane toward peer if its lease has room, and
// schedules its admission when the lane was empty.
func (w *World) stage(n *process, peer string, payload []byte) bool {
	return w.stageAs(n, peer, payload, false)
}

// stageAnswer puts payload, an answer, in n's lane toward peer if its
// lease has room for answers, as netio's Send does while the session's
// writer is busy (fsm/lease.go, "Room for answers").
func (w *World) stageAnswer(n *process, peer string, payload []byte) bool {
	return w.stageAs(n, peer, payload, true)
}

// stageAs is stage (answer false) and stageAnswer: each kind spends its
// own room of the lease, and the runs say which kind each message is.
func (w *World) stageAs(n *process, peer string, payload []byte, answer bool) bool {
	l := n.lanes[peer]
	if l == nil || l.gen == 0 || len(payload) > l.maxPayload {
		return false
	}
	left, room := &l.msgs, &l.cost
	if answer {
		left, room = &l.amsgs, &l.acost
	}
	cost := uint64(len(payload)) + fsm.MessageCost
	if *left < 1 || *room < cost {
		return false
	}
	*left--
	*room -= cost
	l.frames = wire.AppendData(l.frames, payload)
	l.size = fsm.AppendFrameSize(l.size, l.count, len(payload))
	l.runs = fsm.AppendRun(l.runs, l.count, answer)
	l.count++
	if answer {
		w.stats.AnswersStaged++
	} else {
		w.stats.Staged++
	}
	w.admitSoon(n, peer, l)
	return true
}

// answerSend is an answer's Send (no Reserve) of payload from n to peer:
// under Knobs.Leases, half the time staged if the lane has room for
// answers; otherwise the step, after what the lane holds.
func (w *World) answerSend(n *process, peer string, payload []byte) error {
	if w.k.Leases && w.c.Intn(2) == 0 && w.stageAnswer(n, peer, payload) {
		return nil
	}
	return w.step(n, fsm.Send{Peer: peer, Payload: payload, After: w.stagedFor(n, peer)})
}

// admitSoon schedules the admission of l, n's lane toward peer, unless one
// is scheduled: netio's writer, woken by the first message staged.
func (w *World) admitSoon(n *process, peer string, l *simLane) {
	if !l.due {
		l.due = true
		w.schedule(event{at: w.now + between(w.c, 0, 2*w.k.Latency+1), kind: evAdmit, node: n.idx, inc: n.inc, peer: peer})
	}
}

// admitLane admits what waits in n's lane toward peer; renew asks for more
// room on its lease.
func (w *World) admitLane(n *process, peer string, renew bool) {
	l := n.lanes[peer]
	if l == nil || !n.alive {
		return
	}
	a := w.take(l, peer)
	if a.Messages == 0 && !renew {
		return
	}
	a.Renew = renew
	w.step(n, a)
}

// take empties l, the lane toward peer, returning what waited as the Admit
// of it, as netio's lane does: its frames of one length, when they are,
// said so (FrameSize), so that the sweeps run both ways of admitting.
func (w *World) take(l *simLane, peer string) fsm.Admit {
	a := fsm.Admit{Peer: peer, Gen: l.gen, Frames: l.frames, Messages: l.count, Runs: l.runs}
	if l.count > 0 {
		a.FrameSize = l.size
		w.stats.Admits++
		if a.FrameSize != 0 {
			w.stats.SizedAdmits++
		}
	}
	l.frames, l.count, l.runs, l.due, l.size = nil, 0, nil, false, 0
	return a
}

// stagedFor returns what waits in n's lane toward peer, emptied, as the
// Admit a Send carries (fsm.Send.After, netio's Send), or nil.
func (w *World) stagedFor(n *process, peer string) *fsm.Admit {
	l := n.lanes[peer]
	if l == nil || l.count == 0 {
		return nil
	}
	a := w.take(l, peer)
	return &a
}

// admitAll admits what waits in every lane of n (before its Shutdown).
func (w *World) admitAll(n *process) {
	for _, peer := range sortedKeys(n.lanes) {
		w.admitLane(n, peer, false)
	}
}

// admitRevoked admits the batches of n's lanes revoked by the step just
// observed, before any other step of n.
func (w *World) admitRevoked(n *process) {
	if n.admittingRevoked {
		return // the loop below, further up the stack, takes them
	}
	n.admittingRevoked = true
	for len(n.revoked) > 0 && n.alive && w.err == nil {
		b := n.revoked[0]
		n.revoked = n.revoked[1:]
		w.step(n, fsm.Admit{Peer: b.peer, Gen: b.gen, Frames: b.frames, Messages: b.count, Runs: b.runs})
	}
	n.revoked = nil
	n.admittingRevoked = false
}

// producerSend is a producer's Send of payload from n to peer under
// Knobs.Leases: staged if the lane has room, else the step, after what
// waits, and a request for a lease once it is taken. staged reports the
// first; err is the step's answer.
func (w *World) producerSend(n *process, peer string, payload []byte) (staged bool, err error) {
	if w.stage(n, peer, payload) {
		return true, nil
	}
	w.admitLane(n, peer, false)
	err = w.step(n, fsm.Send{Peer: peer, Payload: payload, Reserve: true}) // it may grant a lease
	return false, err
}

// producerSendMany is a producer's SendMany of payload from n to peers
// under Knobs.Leases, as netio's SendManyContext tries it once: a payload
// below fsm.SharedMin is staged in each peer's lane with room (no step);
// the other peers take one SendMany step with Reserve, after what their
// lanes hold, which may grant them leases (fsm/lease.go). It sets errs[k]
// to the answer for peers[k] (nil: staged or accepted).
func (w *World) producerSendMany(n *process, peers []string, payload []byte, errs []error) {
	w.stats.ProducerSendManys++
	rest, at := peers, []int(nil)
	if len(payload) < fsm.SharedMin {
		rest = nil
		for k, p := range peers {
			if w.stage(n, p, payload) {
				w.stats.SendManyStaged++
				continue
			}
			rest, at = append(rest, p), append(at, k)
		}
		if len(rest) == 0 {
			return
		}
	}
	for _, p := range rest {
		w.admitLane(n, p, false)
	}
	sub := errs
	if at != nil {
		sub = make([]error, len(rest))
	}
	_ = w.step(n, fsm.SendMany{Peers: rest, Payload: payload, Reserve: true, Errs: sub})
	for j, k := range at {
		errs[k] = sub[j]
	}
}

// sortedKeys returns m's keys in order.
func sortedKeys[V any](m map[string]V) []string {
	return slices.Sorted(maps.Keys(m))
}
