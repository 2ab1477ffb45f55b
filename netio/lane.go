package netio

import (
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/masterless-go/masterless/fsm"
	"github.com/masterless-go/masterless/wire"
)

// A lane is where a producer's messages toward one peer wait, encoded as
// DATA frames, between SendContext (or SendManyContext, for a payload
// below fsm.SharedMin: stageMany) and the step that admits them
// (fsm.Admit), under the lease the state machine granted (fsm/lease.go).
// Answers (Send) wait there too, in the room the lease holds for them,
// while the session's writer is busy (stageAnswer), marked as answers
// (runs) so that the state machine queues them as such.
// SendContext within the lease takes only the lane's lock: no core lock, no
// step, no write into the output buffer. The writer goroutine of the
// peer's session admits what waits in one step when it wakes, then writes
// it with whatever else is due.
//
// The lane decides nothing: the lease says how many messages, of what
// cost, may wait; the state machine admits them, spends credit and keeps
// them until acknowledged. Lock order: n.mu, then conn.wmu, then lane.mu,
// which is innermost: nothing is taken while it is held (a fan's lock
// comes before its lanes', fan.go). SendContext's
// fast path takes lane.mu, then (after releasing it) wmu; an idle writer
// trims the lane under wmu, and an answer's first message in an empty lane
// takes wmu, then lane.mu (stageAnswer).
type lane struct {
	peer string

	mu sync.Mutex
	// gen is the lease (0: none: SendContext takes the core lock); msgs
	// and cost what is left of it; maxPayload the largest payload it takes.
	gen        uint64
	msgs       int
	cost       uint64
	maxPayload int
	// amsgs and acost: what is left of the lease's room for answers
	// (fsm.Lease.Answers), which stageAnswer takes.
	amsgs  int
	acost  uint64
	c      *conn  // the session's connection: its writer admits
	staged []byte // the DATA frames waiting, in order
	count  int    // how many
	size   int    // the length of each when they have one, else 0 (fsm.Admit.FrameSize)
	// shared: a producer found the lock taken while staging these
	// (stageOrYield does not yield then).
	shared bool
	spare  []byte      // the other buffer, swapped with staged by admit
	big    atomic.Bool // a buffer over idleKeep is kept: trim has work
	// runs says which staged messages are answers (fsm.Admit.Runs, kept
	// by fsm.AppendRun): empty while none is, as a producer's stream never
	// has any; else the runs of each kind, in order, covering all count.
	runs      []fsm.AdmitRun
	spareRuns []fsm.AdmitRun // runs' array, back after take
	answers   uint64         // answers staged so far (tests)
	// inAnswerLanes: counted in Runtime.answerLanes, since a lease gave
	// answers room (under n.mu).
	inAnswerLanes bool
	// fan: the fan the lane is in (fan.go), at slots[slot]; nil: none.
	// took: the fan whose frames the admission under way took (take to
	// giveBack, under n.mu).
	fan  *fan
	slot int
	took *fan
}

// stagedKeep bounds the buffers a lane keeps once admitted; the lease
// bounds them anyway (fsm's leaseCost, 64 KiB of cost: a lease larger than
// this made every admission drop its buffer and a one-way stream run at
// less than half its rate), and an idle writer
// gives back any larger than idleKeep (trim).
const stagedKeep = 64 << 10

// stage puts payload in l's lane if its lease has room, and wakes the
// writer of the session when the lane was empty. It reports whether it did.
func (l *lane) stage(payload []byte) bool {
	staged, _ := l.stageFrame(nil, payload)
	return staged
}

// stageOrYield is a producer's stage (SendContext) into l: when the lease
// has run out with messages waiting in the lane, a producer streaming to
// one peer (stream: its previous call went to the same lane, laneOf) that
// has the lane to itself yields the CPU once and tries again. The writer
// the lane's first message woke waits in this CPU's run queue while the
// producer runs; yielding, it runs at once, admits the lane and renews the
// lease (admitForWriter), and the producer goes on staging. Without the
// yield a producer on two CPUs used up its lease before its writer ran and
// admitted the lane itself under the core lock (nine in ten of a one-way
// stream's admissions), and the writer wrote mostly when the producer
// stopped to wait for credit (one-way 1.27 of its rate with the yield,
// PERFORMANCE.md, "A producer that yields to its writer").
//
// It does not yield where that cost more than it gained, each measured:
// for a producer sending to many peers in turn, or a fan-out (stageMany),
// whose producer is CPU-bound and what limits them (16 peers in turn: 0.93
// of the rate; a fan-out: 0.90); nor in a lane that several producers
// share (one found its lock taken since the last admission, lane.shared),
// where the others keep the CPU busy and the yield only queued the
// yielder behind them (four producers to one peer: about 0.9).
func (n *Runtime) stageOrYield(l *lane, payload []byte, stream bool) bool {
	staged, waiting := l.stageFrame(nil, payload)
	if staged {
		return true
	}
	if !stream || !waiting {
		return false // no lease, nothing for the writer to admit, or other producers
	}
	n.yields.Add(1)
	runtime.Gosched()
	if !l.stage(payload) {
		return false
	}
	n.yieldsStaged.Add(1)
	return true
}

// stageFrame is stage for a payload encoded already: frame, when not nil,
// is payload's DATA frame (wire.AppendData), which SendManyContext encodes
// once for all its peers' lanes. When it does not stage payload, waiting
// says whether the lane has a lease and messages staged under it, and no
// other producer was found holding its lock since its last admission
// (stageOrYield's reason to yield).
func (l *lane) stageFrame(frame, payload []byte) (staged, waiting bool) {
	cost := uint64(len(payload)) + fsm.MessageCost
	if !l.mu.TryLock() {
		l.mu.Lock()
		l.shared = true
	}
	if f := l.fan; f != nil {
		l.mu.Unlock()
		if !l.leaveFan(f) {
			return false, false
		}
		l.mu.Lock()
		if l.fan != nil {
			l.mu.Unlock()
			return false, false
		}
	}
	if l.gen == 0 || l.msgs < 1 || l.cost < cost || len(payload) > l.maxPayload {
		waiting = l.gen != 0 && l.count > 0 && !l.shared
		l.mu.Unlock()
		return false, waiting
	}
	l.msgs--
	l.cost -= cost
	if frame != nil {
		l.staged = append(l.staged, frame...)
	} else {
		l.staged = wire.AppendData(l.staged, payload)
	}
	l.size = fsm.AppendFrameSize(l.size, l.count, len(payload))
	l.runs = fsm.AppendRun(l.runs, l.count, false)
	l.count++
	first := l.count == 1
	c := l.c
	l.mu.Unlock()
	if first {
		c.wakeForLane()
	}
	return true, false
}

// stageAnswer puts payload, an answer (Send), in l's lane if the lease has
// room for answers and the session's writer is busy, and reports whether it
// did. A busy writer admits the lane before it parks, so the answer goes
// out with what it writes next, and nothing is woken for it. With the
// writer parked (or none) the answer takes the step: its write may go
// inline (inline.go), and otherwise the writer it wakes finds the bytes
// ready. Staged there, the writer would first have to admit them, a step
// on the round trip's path: a ping-pong ran at 0.90 of its rate, 0.77 over
// TLS, when a parked writer was woken to admit an answer.
func (l *lane) stageAnswer(payload []byte) bool {
	cost := uint64(len(payload)) + fsm.MessageCost
	l.mu.Lock()
	if l.fan != nil || !l.answerFits(cost, len(payload)) {
		l.mu.Unlock()
		return false
	}
	if l.count > 0 { // the writer was told of the first
		l.putAnswer(payload, cost)
		l.mu.Unlock()
		return true
	}
	c := l.c
	l.mu.Unlock()
	// The lane's first message tells the writer, if it is busy. wmu
	// before lane.mu, the order trim takes them in (the writer holds wmu
	// when it trims); so the lane is checked again under both.
	c.wmu.Lock()
	if c.idle {
		c.wmu.Unlock()
		return false
	}
	l.mu.Lock()
	if l.c != c || l.fan != nil || !l.answerFits(cost, len(payload)) {
		l.mu.Unlock()
		c.wmu.Unlock()
		return false
	}
	l.putAnswer(payload, cost)
	l.mu.Unlock()
	c.laneWork = true // not idle: it looks before it parks
	c.wmu.Unlock()
	return true
}

// answerFits reports whether l's lease has room for an answer of n bytes
// costing cost (under l.mu).
func (l *lane) answerFits(cost uint64, n int) bool {
	return l.gen != 0 && l.amsgs >= 1 && l.acost >= cost && n <= l.maxPayload
}

// putAnswer stages payload as an answer within the room answerFits found
// (under l.mu).
func (l *lane) putAnswer(payload []byte, cost uint64) {
	l.amsgs--
	l.acost -= cost
	l.answers++
	l.staged = wire.AppendData(l.staged, payload)
	l.size = fsm.AppendFrameSize(l.size, l.count, len(payload))
	if l.runs == nil {
		l.runs, l.spareRuns = l.spareRuns, nil
	}
	l.runs = fsm.AppendRun(l.runs, l.count, true)
	l.count++
}

// take empties the lane, returning what waited as the Admit of it: the
// frames and their number, which of them are answers (Runs, empty: none),
// their length when they have one, and the lease they were staged under
// (called with n.mu held); giveBack returns the two buffers.
func (l *lane) take() fsm.Admit {
	l.mu.Lock()
	for l.fan != nil {
		f := l.fan
		l.mu.Unlock()
		if a, ok := l.takeFan(f); ok {
			return a
		}
		l.mu.Lock()
	}
	a := fsm.Admit{Peer: l.peer, Gen: l.gen, Frames: l.staged, Messages: l.count, Runs: l.runs, FrameSize: l.size}
	l.shared = false
	if a.Messages > 0 {
		l.staged, l.count, l.spare = l.spare[:0], 0, nil
	} else {
		a.FrameSize = 0
	}
	l.runs = nil
	l.mu.Unlock()
	return a
}

// giveBack returns the buffers of an admitted batch for reuse (n.mu held).
func (l *lane) giveBack(frames []byte, runs []fsm.AdmitRun) {
	if f := l.took; f != nil {
		l.admitted(f)
		return
	}
	if cap(frames) > stagedKeep {
		return
	}
	l.mu.Lock()
	if cap(runs) > 0 && l.spareRuns == nil {
		l.spareRuns = runs[:0]
	}
	if l.spare == nil {
		l.spare = frames[:0]
		if cap(frames) > idleKeep {
			l.big.Store(true)
		}
	}
	l.mu.Unlock()
}

// trim gives back the lane's buffers once a burst is over (called by its
// idle writer, with c.wmu held: the lane's lock is innermost, never held
// while taking wmu, so this order is safe; TestAnswerStagingAgainstTrim).
func (l *lane) trim() {
	l.mu.Lock()
	if f := l.fan; f != nil {
		l.mu.Unlock()
		l.leaveFan(f)
		l.mu.Lock()
	}
	if l.count == 0 {
		l.staged = nil
	}
	l.spare = nil
	l.big.Store(l.fan != nil) // still in its fan: the next idle turn tries again
	l.mu.Unlock()
}

// laneIn returns the lane toward peer, or nil: the one in the map, which
// every change of lanes goes through (under n.mu). The lane found last is
// kept (heldLast, while in the map): a stream's Sends, and a callback's
// replies to one peer, look up the same lane over and over, and comparing
// an id that is the same string is cheaper than hashing it.
func (n *Runtime) laneIn(peer string) *lane {
	if l := n.heldLast; l != nil && l.peer == peer {
		return l
	}
	l := n.lanesHeld[peer]
	if l != nil {
		n.heldLast = l
	}
	return l
}

// laneOf returns a lane toward peer for SendContext's fast path, or nil:
// the lane of the latest call if it is peer's (a producer sends to one
// peer over and over), else the map's; again reports the former (the
// latest call, of any goroutine, went to the same peer: stageOrYield's
// stream). A lane revoked since has no lease, so staging in it fails and
// the caller takes the core lock.
func (n *Runtime) laneOf(peer string) (l *lane, again bool) {
	if l := n.lastLane.Load(); l != nil && l.peer == peer {
		return l, true
	}
	if v, ok := n.lanes.Load(peer); ok {
		l := v.(*lane)
		n.lastLane.Store(l)
		return l, false
	}
	return nil, false
}

// admitLane steps what waits in l (under n.mu), and asks for more room on
// its lease when renew is set.
func (n *Runtime) admitLane(l *lane, renew bool) {
	a := l.take()
	if a.Messages == 0 && !renew {
		return
	}
	a.Renew = renew && a.Gen != 0
	_ = n.link.Step(n.sendTime(), a)
	if a.Messages > 0 {
		l.giveBack(a.Frames, a.Runs)
	}
}

// stagedFor returns what waits in the lane toward peer as an Admit to
// step before (or with) a Send, and the lane, or nil if nothing waits
// (under n.mu).
func (n *Runtime) stagedFor(peer string) (*fsm.Admit, *lane) {
	if len(n.lanesHeld) == 0 {
		return nil, nil
	}
	l := n.laneIn(peer)
	if l == nil {
		return nil, nil
	}
	if n.after = l.take(); n.after.Messages == 0 {
		n.after = fsm.Admit{} // nothing of the lane's buffer kept
		return nil, nil
	}
	return &n.after, l
}

// admitPeer admits what waits toward peer (under n.mu): every step that
// sends to it, or ends its session, comes after the messages its producers
// staged before.
func (n *Runtime) admitPeer(peer string) {
	if len(n.lanesHeld) == 0 {
		return
	}
	if l := n.laneIn(peer); l != nil {
		n.admitLane(l, false)
	}
}

// admitAll admits what waits in every lane (under n.mu).
func (n *Runtime) admitAll() {
	if len(n.lanesHeld) == 0 {
		return
	}
	for _, l := range n.lanesHeld {
		n.admitLane(l, false)
	}
}

// leased carries out an fsm.ActLease (under n.mu, from Notify): a grant
// adds room to the peer's lane (a new lane for a new lease); a revocation
// stops the lane and keeps what waits in it for settle to admit.
func (n *Runtime) leased(a *fsm.Action) {
	l := n.laneIn(a.Peer)
	if a.Lease.Revoked() {
		// Even with no lane of that lease (its grant came in a step that
		// closed the session, so none was made), an empty Admit follows:
		// the state machine may wait for it (fsm/lease.go,
		// settleLeaseAway).
		empty := stagedBatch{peer: a.Peer, gen: a.Lease.Gen}
		if l == nil {
			n.revoked = append(n.revoked, empty)
			return
		}
		l.mu.Lock()
		if l.gen != a.Lease.Gen {
			l.mu.Unlock()
			n.revoked = append(n.revoked, empty)
			return
		}
		var fanFrames []byte
		fanCount := 0
		gen := l.gen
		if f := l.fan; f != nil {
			// No lease from here on, before l.mu is let go: a lane that
			// looked free meanwhile (out of f, a lease, nothing waiting)
			// was joined by another fan, whose frames for it then waited
			// for a writer that never came, neither delivered nor
			// reported lost (TestRevokedLaneJoinsNoOtherFan).
			l.gen = 0
			l.mu.Unlock()
			fanFrames, fanCount = l.revokeFan(f)
			l.mu.Lock()
		}
		frames, count, runs, c := l.staged, l.count, l.runs, l.c
		if fanCount > 0 { // the fan's first: a producer's, not answers
			if len(runs) > 0 {
				runs = append([]fsm.AdmitRun{{Messages: fanCount}}, runs...)
			}
			frames, count = append(fanFrames, frames...), fanCount+count
		}
		l.gen, l.msgs, l.cost, l.amsgs, l.acost, l.c = 0, 0, 0, 0, 0, nil
		l.staged, l.count, l.spare, l.runs, l.spareRuns = nil, 0, nil, nil, nil
		l.mu.Unlock()
		n.lanes.Delete(a.Peer) // a producer holding it finds no lease, and takes the core lock
		delete(n.lanesHeld, a.Peer)
		if l.inAnswerLanes {
			l.inAnswerLanes = false
			n.answerLanes.Add(-1)
		}
		if n.heldLast == l {
			n.heldLast = nil
		}
		n.lastLane.CompareAndSwap(l, nil)
		if c != nil {
			c.wmu.Lock()
			if c.lane == l {
				c.lane = nil
			}
			c.wmu.Unlock()
		}
		// Even empty: the state machine waits for it (fsm/lease.go,
		// settleLeaseAway).
		n.revoked = append(n.revoked, stagedBatch{peer: a.Peer, frames: frames, count: count, runs: runs, gen: gen})
		return
	}
	c := n.conns[a.Conn]
	if c == nil {
		return // the layer closed it in this step: a revocation follows
	}
	if l == nil {
		l = &lane{peer: a.Peer}
		n.lanes.Store(a.Peer, l)
		if n.lanesHeld == nil {
			n.lanesHeld = map[string]*lane{}
		}
		n.lanesHeld[a.Peer] = l
		n.lastLane.Store(l)
	}
	l.mu.Lock()
	if l.gen != a.Lease.Gen {
		l.gen, l.msgs, l.cost, l.amsgs, l.acost = a.Lease.Gen, 0, 0, 0, 0
	}
	l.msgs += a.Lease.Messages
	l.cost += a.Lease.Cost
	l.amsgs += a.Lease.Answers
	l.acost += a.Lease.AnswerCost
	l.maxPayload = a.Lease.MaxPayload
	l.c = c
	l.mu.Unlock()
	if a.Lease.Answers > 0 && !l.inAnswerLanes {
		l.inAnswerLanes = true
		n.answerLanes.Add(1)
	}
	// A producer (or a fan) may have staged in a new lane already (it is
	// in n.lanes, with its lease): the wake-up found c.lane nil, and the
	// writer let it go. So the writer is told again once it has its lane.
	// (wmu, then lane.mu: the order stageAnswer takes them in.)
	c.wmu.Lock()
	first := c.lane != l
	c.lane = l
	w := wakeNone
	if first {
		l.mu.Lock()
		waiting := l.count > 0 || l.fan != nil
		l.mu.Unlock()
		if waiting && !c.laneWork {
			c.laneWork = true
			w = c.kick()
		}
	}
	c.wmu.Unlock()
	c.wake(w)
}

// stagedBatch is what a revoked lane held, admitted by settle.
type stagedBatch struct {
	peer   string
	frames []byte
	count  int
	runs   []fsm.AdmitRun
	gen    uint64
}

// admitRevoked admits the batches of the lanes revoked in the steps just
// taken (under n.mu, from settle): before any other step, as the lease
// requires.
func (n *Runtime) admitRevoked() {
	for len(n.revoked) > 0 {
		b := n.revoked[0]
		n.revoked = n.revoked[1:]
		_ = n.link.Step(n.sendTime(), fsm.Admit{Peer: b.peer, Gen: b.gen, Frames: b.frames, Messages: b.count, Runs: b.runs})
	}
	n.revoked = nil
}

// wakeForLane tells c's writer that its lane has messages to admit.
func (c *conn) wakeForLane() {
	c.wmu.Lock()
	c.laneWork = true
	w := c.kick()
	c.wmu.Unlock()
	c.wake(w)
}

// admitForWriter is the writer's turn at its lane: it admits what waits,
// renewing the lease, so that the DATA frames are in the output buffer
// when it writes (called without any lock).
func (c *conn) admitForWriter(l *lane) {
	n := c.n
	n.mu.Lock()
	if !n.closed {
		n.admitLane(l, true)
		n.settle()
	}
	n.mu.Unlock()
}
