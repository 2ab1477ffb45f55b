package netio

import (
	"bytes"
	"slices"
	"sync"

	"github.com/masterless-go/masterless/fsm"
)

// A fan stages a SendManyContext's DATA frame once for all the peers of
// its list, where stageMany appends it to each peer's lane under that
// lane's lock. For a fan-out to sixteen, those sixteen locks and copies
// were 390 ns of the 1,527 ns of CPU an operation cost (PERFORMANCE.md,
// "Where SendMany's gap is"). With a fan the producer appends the frame
// once, under one lock, within room reserved in bulk from each peer's lease
// (reserve: each lane's lock once the slots' room runs out, about once a
// lease, not at every message). Each peer's writer admits the frames from
// its own place in the buffer (lane.take, takeFan), so each peer's stream
// still gets an fsm.Admit of its own under its own lease: the state machine
// decides as before, and knows nothing of fans. A list gets a fan once a
// producer has sent to it fanAfter times in a row (manyLanes.fanOf).
//
// Order. A lane joins a fan only while nothing waits in it. While in one,
// nothing is staged in it directly: stageFrame first takes it out of the
// fan (leaveFan), which it can only once every frame staged for it was
// admitted, and otherwise fails, as stageAnswer does, so that the sender
// takes the core lock, whose step admits the fan's frames first
// (admitPeer, stagedFor: take). So a peer's messages are admitted in the
// order they were staged, whichever way each went; TestFanKeepsEachProducersOrder
// checks it, and fails with lanes that join while busy
// (mutationFanJoinsBusyLane, TestFanCatchesBusyLaneJoining).
//
// Room. When a slot's room runs out before its writer renewed the lease,
// the producer admits and renews every lane of the fan itself, in one hold
// of the core lock (renewFan), and tries once more; then it stages lane by
// lane, the way that waits for credit. A revoked lease takes its lane out
// (revokeFan: its frames not yet admitted are copied into the revoked
// batch, which settle admits; leased drops the lane's lease before, so
// that no other fan joins it meanwhile) and ends the fan: stageMany stages lane by
// lane and makes a new manyLanes, and a new fan, for the new lanes.
//
// Memory. The buffer holds the frames from the first one a slot has not
// admitted to the last: at most the room of a lease, and twice that while
// it moves. Bytes are written over only once every slot admitted them and
// no admission reads them (makeRoom's reset); otherwise the frames still
// waiting are copied into a new buffer, and an admission reading the old
// one keeps it. An idle writer takes its lane out of its fan (trim), and a
// fan with no lane in it lets go of its buffer (release).
//
// Locks. n.mu, then conn.wmu, then fan.mu, then lane.mu: take, leaveFan
// and revokeFan let go of lane.mu to take fan.mu first; stage wakes the
// writers after it let go of fan.mu; nothing waits for fan.mu holding a
// lane's lock.
type fan struct {
	lanes []*lane // the list's, one a slot; never changed

	mu    sync.Mutex
	slots []fanSlot
	buf   []byte // the frames staged, from the first a slot has not admitted
	count int    // how many frames buf holds
	size  int    // their length when they have one (fsm.AppendFrameSize), else 0
	// room: the least room any slot holds (messages, cost) and the
	// largest payload every lease takes; 0 when a slot left or its room
	// is unknown: stage then reserves again.
	msgs       int
	cost       uint64
	maxPayload int
	broken     bool   // a lane's lease was revoked: stageMany stages lane by lane
	staged     uint64 // frames staged in all (tests)
}

// fanSlot is one peer's place in a fan.
// Its lane is the fan's lanes[i] for slots[i]; "the lane" below.
type fanSlot struct {
	c      *conn // the lane's connection, whose writer admits (l.c, as reserve last saw it)
	joined bool  // the lane is in the fan (l.fan): the slot holds msgs and cost of its lease
	// msgs, cost, maxPayload: the room the slot holds (taken from the
	// lane's lease by reserve), and the largest payload the lease takes.
	msgs       int
	cost       uint64
	maxPayload int
	at         int  // where in buf the first frame the lane has not admitted starts
	idx        int  // its number
	woken      bool // the lane's writer was told of frames since its last admission
	taken      int  // bytes an admission (take to giveBack) reads from at
	takenN     int  // and their number
}

// newFan returns a fan for lanes, which are all different (hasRepeat):
// reserve joins them as it takes room from their leases.
func newFan(lanes []*lane) *fan {
	return &fan{lanes: lanes, slots: make([]fanSlot, len(lanes))}
}

// stage appends frame, payload's DATA frame, for every slot, reserving room
// from the lanes' leases when the slots hold too little. It reports false
// when a lane has no room, is in another fan, or holds messages of its own:
// stageMany then stages lane by lane.
func (f *fan) stage(frame []byte, payload int) fanResult {
	cost := uint64(payload) + fsm.MessageCost
	var wake [16]*conn
	woken := wake[:0]
	f.mu.Lock()
	if f.broken {
		f.mu.Unlock()
		return fanRefused
	}
	if f.msgs < 1 || f.cost < cost || payload > f.maxPayload {
		if r := f.reserve(cost, payload); r != fanStaged {
			f.mu.Unlock()
			return r
		}
	}
	f.msgs--
	f.cost -= cost
	f.makeRoom(len(frame))
	f.buf = append(f.buf, frame...)
	f.size = fsm.AppendFrameSize(f.size, f.count, payload)
	f.count++
	f.staged++
	for i := range f.slots {
		s := &f.slots[i]
		s.msgs--
		s.cost -= cost
		if !s.woken {
			s.woken = true
			woken = append(woken, s.c)
		}
	}
	f.mu.Unlock()
	for _, c := range woken {
		c.wakeForLane()
	}
	return fanStaged
}

// fanResult is what fan.stage did.
type fanResult uint8

const (
	fanStaged  fanResult = iota
	fanFull              // a lease has no room, or a lane messages of its own: admitting makes room (renewFan)
	fanRefused           // a lane is in another fan, or its lease was revoked: stage lane by lane
)

// reserve takes room for one more message of cost from every lane's lease
// into its slot, joining the lanes not yet in the fan (under f.mu). It
// takes all the room a lease has (the writers renew it as they admit), and
// the lane's connection again, whose writer stage wakes.
func (f *fan) reserve(cost uint64, payload int) fanResult {
	r := fanStaged
	for i := range f.slots {
		s := &f.slots[i]
		l := f.lanes[i]
		l.mu.Lock()
		switch {
		case l.gen == 0:
			f.broken = true
			r = fanRefused
		case !s.joined && l.fan != nil:
			r = fanRefused // another fan's
		case !s.joined && l.count > 0 && !mutationFanJoinsBusyLane:
			r = fanFull // messages of its own first
		default:
			if !s.joined {
				s.joined, l.fan, l.slot = true, f, i
				s.at, s.idx = len(f.buf), f.count
				l.big.Store(true) // its idle writer takes it out (trim)
			}
			s.msgs += l.msgs
			s.cost += l.cost
			l.msgs, l.cost = 0, 0
			s.maxPayload, s.c = l.maxPayload, l.c
			if payload > s.maxPayload {
				r = fanRefused
			} else if s.msgs < 1 || s.cost < cost {
				r = fanFull
			}
		}
		l.mu.Unlock()
		if r != fanStaged {
			break
		}
	}
	f.msgs, f.cost, f.maxPayload = 0, 0, 0
	if r != fanStaged {
		return r
	}
	f.msgs, f.cost, f.maxPayload = f.slots[0].msgs, f.slots[0].cost, f.slots[0].maxPayload
	for i := range f.slots[1:] {
		s := &f.slots[i+1]
		f.msgs, f.cost, f.maxPayload = min(f.msgs, s.msgs), min(f.cost, s.cost), min(f.maxPayload, s.maxPayload)
	}
	return fanStaged
}

// makeRoom makes buf take need more bytes without writing over any a slot
// has still to admit or an admission reads (under f.mu).
func (f *fan) makeRoom(need int) {
	at, idx, reading := len(f.buf), f.count, false
	for i := range f.slots {
		s := &f.slots[i]
		if s.joined {
			at, idx = min(at, s.at), min(idx, s.idx)
		}
		reading = reading || s.taken > 0
	}
	if at == len(f.buf) && !reading {
		f.rebase(at, idx, f.buf[:0])
		return
	}
	if len(f.buf)+need <= cap(f.buf) {
		return
	}
	rest := f.buf[at:]
	buf := make([]byte, 0, max(2*(len(rest)+need), stagedKeep))
	f.rebase(at, idx, append(buf, rest...))
}

// rebase makes buf the fan's buffer, whose first frame was the one at at,
// numbered idx, in the one before (under f.mu).
func (f *fan) rebase(at, idx int, buf []byte) {
	for i := range f.slots {
		if s := &f.slots[i]; s.joined {
			s.at -= at
			s.idx -= idx
		}
	}
	if len(buf) == 0 {
		f.size = 0
	}
	f.buf, f.count = buf, f.count-idx
}

// takeFan is take for a lane in fan f: the frames staged for it since its
// last admission, in f's buffer (called with n.mu held, l.mu not).
func (l *lane) takeFan(f *fan) (fsm.Admit, bool) {
	f.mu.Lock()
	l.mu.Lock()
	if l.fan != f {
		l.mu.Unlock()
		f.mu.Unlock()
		return fsm.Admit{}, false
	}
	s := &f.slots[l.slot]
	a := fsm.Admit{Peer: l.peer, Gen: l.gen}
	if k := f.count - s.idx; k > 0 {
		a.Frames, a.Messages, a.FrameSize = f.buf[s.at:len(f.buf):len(f.buf)], k, f.size
		s.taken, s.takenN = len(a.Frames), k
		l.took = f
	}
	s.woken = false
	l.shared = false
	l.mu.Unlock()
	f.mu.Unlock()
	return a, true
}

// admitted moves l's place in f past the frames its admission took
// (giveBack, n.mu held).
func (l *lane) admitted(f *fan) {
	l.took = nil
	f.mu.Lock()
	l.mu.Lock()
	// l's slot in f: l.slot, unless l has been in another fan since (a
	// revoked lane joins none, so this is only care).
	i := l.slot
	if i >= len(f.lanes) || f.lanes[i] != l {
		i = slices.Index(f.lanes, l)
	}
	s := &f.slots[i]
	if l.fan == f {
		s.at += s.taken
		s.idx += s.takenN
	}
	s.taken, s.takenN = 0, 0
	l.mu.Unlock()
	f.mu.Unlock()
}

// leaveFan takes l out of its fan if every frame staged for it was
// admitted, giving back the room its slot held; it reports whether l is in
// no fan (called without l.mu).
func (l *lane) leaveFan(f *fan) bool {
	f.mu.Lock()
	l.mu.Lock()
	defer f.mu.Unlock()
	defer l.mu.Unlock()
	if l.fan != f {
		return l.fan == nil
	}
	s := &f.slots[l.slot]
	if s.idx < f.count || s.taken > 0 {
		return false
	}
	l.msgs += s.msgs
	l.cost += s.cost
	*s = fanSlot{}
	l.fan = nil
	f.msgs = 0 // stage reserves again
	f.release()
	return true
}

// release lets go of f's buffer once no lane is in f and no admission
// reads it (under f.mu): the lanes' idle writers take them out (trim).
func (f *fan) release() {
	for i := range f.slots {
		if s := &f.slots[i]; s.joined || s.taken > 0 {
			return
		}
	}
	f.buf, f.count, f.size = nil, 0, 0
}

// revokeFan takes l, whose lease was revoked, out of its fan, returning
// a copy of the frames staged for it that no admission took, and their
// number (under n.mu, without l.mu). The fan stages no more.
func (l *lane) revokeFan(f *fan) ([]byte, int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	l.mu.Lock()
	defer l.mu.Unlock()
	f.broken = true
	if l.fan != f {
		return nil, 0
	}
	s := &f.slots[l.slot]
	at, idx := s.at+s.taken, s.idx+s.takenN
	var frames []byte
	k := f.count - idx
	if k > 0 {
		frames = bytes.Clone(f.buf[at:])
	}
	*s = fanSlot{taken: s.taken} // an admission may still read: makeRoom keeps its bytes
	l.fan = nil
	return frames, k
}

// renewFan admits what waits in each lane of f, renewing its lease, when f
// could not stage for want of room (not for a revoked lease), and reports
// whether it did.
func (n *Runtime) renewFan(f *fan) bool {
	f.mu.Lock()
	broken := f.broken
	f.mu.Unlock()
	if broken {
		return false
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return false
	}
	for _, l := range f.lanes {
		n.admitLane(l, true)
	}
	n.settle()
	return true
}
