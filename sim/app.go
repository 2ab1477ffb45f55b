package sim

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/masterless-go/masterless/fsm"
	"github.com/masterless-go/masterless/link"
	"github.com/masterless-go/masterless/spec"
)

// The simulated application of a load run (Knobs.Workload), modelled on
// netio's dispatcher (dispatch.go) and API (api.go):
//
//   - Every message the fsm delivers goes into the node's delivery queue,
//     a link.Turns as netio's: messages are handed over taking turns among
//     their senders (up to link.TurnQuantum of one in a turn). One
//     dispatcher takes up to link.DeliveryChunk messages off it at a time,
//     which wakes the readers waiting for room (sockets.go) once the queue
//     is back to half its bound, and calls the Message callback for each
//     message in turn; a callback takes a random time around AppDelay.
//     What the callbacks took is reported to the fsm (Consumed, which
//     grants the peers credit) every ReportEvery payload bytes and whenever
//     the queue runs empty.
//   - The callback replies (WorkloadEcho: to the sender of every original
//     message; WorkloadFanout: to every other node) with Send, which never
//     waits for the fsm's queue: a refused reply is counted. After it, like
//     netio's Send, it waits on any connection that is not flow controlled
//     and whose output buffer is over SendBuffer, and the dispatcher with it.
//   - A producer per node and peer sends original messages as fast as
//     ProduceGap allows, as SendContext does: when the fsm's queue is full it
//     waits for room (ActRoom), and it waits on output buffers as Send does.

// Workload is what the applications of a load run do.
type Workload uint8

// The workloads.
const (
	WorkloadNone   Workload = iota // no load run: the random commands and faults of Run
	WorkloadEcho                   // every node sends to every other; each original is answered to its sender
	WorkloadFanout                 // every node sends to every other; each original is answered to every other node
	workloadEnd
)

var workloadNames = []string{"none", "echo", "fanout"}

// String names the workload as -workload reads it.
func (l Workload) String() string {
	if int(l) < len(workloadNames) {
		return workloadNames[l]
	}
	return "?"
}

// ReportEvery is how many payload bytes the dispatcher hands to the
// callbacks before it reports them consumed, when its queue does not run
// empty before (netio's reportEvery).
const ReportEvery = 64 << 10

// The adapter's bounds by default (netio's DefaultSendBuffer,
// DefaultDispatchQueue and DefaultDispatchBytes; a test checks they agree).
const (
	DefaultSendBuffer    = 4 << 20
	DefaultDispatchQueue = 4096
	DefaultDispatchBytes = 8 << 20
)

// appMsg is one message in a delivery queue.
type appMsg struct {
	peer  string
	pinc  uint64
	bytes int
	reply bool // an answer: not answered again
}

// app is one node process's dispatcher, callbacks and producers.
type app struct {
	q      link.Turns[appMsg] // the delivery queue
	qBytes int
	chunk  []appMsg // the messages being delivered, taken off q
	i      int      // its next message
	busy   bool     // the dispatcher is delivering
	// scheduled: an evApp is pending.
	scheduled bool
	// The callback in progress: it ends at until, once its replies are sent.
	inCallback bool
	until      time.Duration
	targets    []string // replies still to send
	waits      []endRef // output buffers the current Send waits on
	used       []consumed
	pending    int
	roomWait   []endRef // readers waiting for room in the queue
	rooms      uint64   // the ActRooms so far (a producer's step may see one)
	producers  map[string]*producer
}

type consumed struct {
	peer  string
	inc   uint64
	msgs  int
	bytes int
}

// producer sends original messages to one peer.
type producer struct {
	waits []endRef // output buffers it waits on
	room  bool     // it waits for room in the fsm's queue (ActRoom)
	// refused: its message was refused for want of room since refusedAt
	// (how long producers wait is reported, not bounded).
	refused   bool
	refusedAt time.Duration
}

// app returns n's application in a load run, or nil.
func (w *World) app(n *process) *app {
	if w.k.Workload == WorkloadNone {
		return nil
	}
	if n.app == nil {
		n.app = &app{producers: map[string]*producer{}}
	}
	return n.app
}

// overBound reports whether the delivery queue is over its bound
// (netio's waitRoom condition).
func (a *app) overBound(w *World) bool {
	return a.q.Len() >= w.dispatchQueue() || a.qBytes >= w.dispatchBytes()
}

func (w *World) dispatchQueue() int {
	if w.k.DispatchQueue > 0 {
		return w.k.DispatchQueue
	}
	return DefaultDispatchQueue
}

func (w *World) dispatchBytes() int {
	if w.k.DispatchBytes > 0 {
		return w.k.DispatchBytes
	}
	return DefaultDispatchBytes
}

// push queues a delivered message for n's callbacks.
func (w *World) push(n *process, m appMsg) {
	a := w.app(n)
	a.q.PushMessage(m.peer, m)
	a.qBytes += m.bytes
	if !a.busy && !a.scheduled {
		a.scheduled = true
		w.schedule(event{at: w.now, kind: evApp, node: n.idx, inc: n.inc})
	}
}

// wake runs n's application or one of its producers.
func (w *World) wake(n *process, kind evKind, peer string) {
	switch {
	case kind == evApp:
		n.app.scheduled = false
		w.dispatch(n)
	case peer == "":
		w.dispatch(n)
	default:
		w.produce(n, peer)
	}
}

// stillFull keeps the output buffers a Send of n must still wait on.
func (w *World) stillFull(n *process, rs []endRef) []endRef {
	out := rs[:0]
	for _, r := range rs {
		if w.overSendBuffer(n, r) {
			out = append(out, r)
		}
	}
	return out
}

// dispatch runs n's dispatcher as far as it can go now.
func (w *World) dispatch(n *process) {
	a := n.app
	for w.err == nil && n.alive {
		if a.waits = w.stillFull(n, a.waits); len(a.waits) > 0 {
			e := a.waits[0].end()
			e.waiters = append(e.waiters, waiter{node: n.idx, inc: n.inc})
			return // in a Send, waiting for the writer
		}
		switch {
		case len(a.targets) > 0:
			to := a.targets[0]
			a.targets = a.targets[1:]
			var err error
			a.waits, err = w.loadSend(n, to, false, true)
			if err != nil {
				w.load.refused++
				if w.k.Workload == WorkloadEcho && w.load.firstRefusal == nil {
					w.load.firstRefusal = err
				}
			}
		case a.inCallback:
			if w.now < a.until {
				a.scheduled = true
				w.schedule(event{at: a.until, kind: evApp, node: n.idx, inc: n.inc})
				return
			}
			a.inCallback = false
			m := &a.chunk[a.i]
			a.i++
			a.used = tally(a.used, m)
			if a.pending += m.bytes; a.pending >= ReportEvery {
				w.reportConsumed(n)
			}
		case a.i < len(a.chunk):
			m := &a.chunk[a.i]
			w.handed(n, m)
			a.inCallback = true
			a.until = w.now + between(w.c, 0, 2*w.appDelay(n))
			a.targets = w.replyTargets(n, m, a.targets[:0])
		default:
			clear(a.chunk)
			a.chunk, a.i = a.chunk[:0], 0
			if a.q.Len() == 0 {
				// The queue ran empty: what the callbacks took is reported
				// before the dispatcher waits.
				if len(a.used) > 0 {
					w.reportConsumed(n)
				}
				a.busy = false
				return
			}
			// The next chunk; the readers that waited for room go on once
			// the queue is back to half its bound (netio's dispatcher).
			a.busy = true
			a.chunk = a.q.PopChunk(a.chunk, link.DeliveryChunk)
			for i := range a.chunk {
				a.qBytes -= a.chunk[i].bytes
			}
			if len(a.roomWait) > 0 && a.q.Len() <= w.dispatchQueue()/2 && a.qBytes <= w.dispatchBytes()/2 {
				readers := a.roomWait
				a.roomWait = nil
				for _, r := range readers {
					r.end().blocked = false
					w.readEnd(r.c, r.side)
				}
			}
		}
	}
}

// appDelay is the mean time n's callbacks take: AppDelay, and SlowApp times
// that on the first node (a node whose user is slower than the others').
func (w *World) appDelay(n *process) time.Duration {
	if n.idx == 0 && w.k.SlowApp > 1 {
		return time.Duration(w.k.SlowApp) * w.k.AppDelay
	}
	return w.k.AppDelay
}

// tally adds message m to what was consumed from its sender.
func tally(used []consumed, m *appMsg) []consumed {
	for i := range used {
		if u := &used[i]; u.peer == m.peer && u.inc == m.pinc {
			u.msgs++
			u.bytes += m.bytes
			return used
		}
	}
	return append(used, consumed{peer: m.peer, inc: m.pinc, msgs: 1, bytes: m.bytes})
}

// reportConsumed tells n's fsm what the callbacks took off the queue.
func (w *World) reportConsumed(n *process) {
	a := n.app
	for _, u := range a.used {
		w.step(n, fsm.Consumed{Peer: u.peer, Incarnation: u.inc, Messages: u.msgs, Bytes: u.bytes})
	}
	a.used, a.pending = a.used[:0], 0
}

// replyTargets returns whom the callback answers m to.
func (w *World) replyTargets(n *process, m *appMsg, to []string) []string {
	if m.reply {
		return to
	}
	switch w.k.Workload {
	case WorkloadEcho:
		to = append(to, m.peer)
	case WorkloadFanout:
		for _, o := range w.nodes {
			if o != n {
				to = append(to, o.id)
			}
		}
	}
	return to
}

// produce runs n's producer toward peer: one SendContext at a time.
func (w *World) produce(n *process, peer string) {
	p := n.app.producers[peer]
	if p == nil || w.load == nil || w.load.stopped {
		return
	}
	if p.waits = w.stillFull(n, p.waits); len(p.waits) > 0 {
		e := p.waits[0].end()
		e.waiters = append(e.waiters, waiter{node: n.idx, inc: n.inc, peer: peer})
		return
	}
	rooms := n.app.rooms
	waits, err := w.loadSend(n, peer, true, false)
	switch {
	case errors.Is(err, fsm.ErrQueueFull) && n.app.rooms != rooms:
		// An ActRoom in the refusing step itself (a lease that gave its
		// room back, fsm/lease.go): SendContext takes the channel it waits
		// on before its step, so it tries again at once.
		w.schedule(event{at: w.now, kind: evProduce, node: n.idx, inc: n.inc, peer: peer})
		return
	case errors.Is(err, fsm.ErrQueueFull):
		p.room = true // until ActRoom
		if !p.refused {
			p.refused, p.refusedAt = true, w.now
		}
		return
	case err != nil:
		// Not connected: in a load run without faults that is a session
		// lost, which the checker reports; try again later.
		w.schedule(event{at: w.now + w.heartbeat(), kind: evProduce, node: n.idx, inc: n.inc, peer: peer})
		return
	}
	if p.refused {
		p.refused = false
		if wait := w.now - p.refusedAt; wait > w.load.maxProducerWait {
			w.load.maxProducerWait, w.load.producerWhere = wait, fmt.Sprintf("%s>%s at %v", n.id, peer, w.now)
		}
	}
	p.waits = waits
	if len(waits) > 0 {
		e := waits[0].end()
		e.waiters = append(e.waiters, waiter{node: n.idx, inc: n.inc, peer: peer})
		return
	}
	w.schedule(event{at: w.now + between(w.c, 1, 2*w.k.ProduceGap), kind: evProduce, node: n.idx, inc: n.inc, peer: peer})
}

// roomFor wakes n's producers that wait for room (SendContext wakes on
// every ActRoom).
func (w *World) roomFor(n *process) {
	n.app.rooms++
	for _, peer := range slices.Sorted(maps.Keys(n.app.producers)) {
		if p := n.app.producers[peer]; p.room {
			p.room = false
			w.schedule(event{at: w.now, kind: evProduce, node: n.idx, inc: n.inc, peer: peer})
		}
	}
}

// loadSend steps a Send of n's next message to peer (reserve: SendContext's)
// and returns the fsm's answer and the output buffers the caller must then
// wait on (netio's settleAndWait).
func (w *World) loadSend(n *process, peer string, reserve, reply bool) ([]endRef, error) {
	seq := n.sendSeq[peer] + 1
	w.full = w.full[:0]
	w.scratch = spec.AppendPaddedPayload(w.scratch[:0], n.id, peer, seq, w.k.Payload) // Send copies it
	var err error
	switch {
	case reserve && w.k.Leases:
		_, err = w.producerSend(n, peer, w.scratch)
	case reserve:
		err = w.step(n, fsm.Send{Peer: peer, Payload: w.scratch, Reserve: true, After: w.stagedFor(n, peer)})
	default:
		err = w.answerSend(n, peer, w.scratch)
	}
	if err == nil {
		n.sendSeq[peer] = seq
		w.streams.Accepted(n.id, n.inc, peer, seq)
		w.load.chk.Accepted(w.now, n.id, peer)
		if reply {
			w.load.replies[msgKey{n.id, peer, seq}] = true
		}
	}
	var waits []endRef
	for _, r := range w.full {
		if w.overSendBuffer(n, r) {
			waits = append(waits, r)
		}
	}
	return waits, err
}

// msgKey names one message.
type msgKey struct {
	src, dst string
	seq      uint64
}
