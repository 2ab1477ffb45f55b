package link

import "slices"

// Turns is a node's delivery queue: what its user is handed, one item at a
// time, by one dispatcher (netio's; the simulator's model of it, sim/app.go).
// Both use this type, so the order the simulator checks is the order users
// get.
//
// Messages are handed over taking turns among their sources: one message of
// each source with messages queued, then the next of each, and so on; each
// source's messages in the order they were pushed. Every other item (a
// session that starts or ends, messages reported lost, a member's news) is
// a barrier: it is handed over after every item pushed before it and before
// every item pushed after it, so a peer's Connected still comes before its
// messages and its Disconnected after them.
//
// Why turns and not one first-in first-out queue. Credit lets each peer
// have up to a window waiting here (fsm/stream.go), and a peer that got
// credit sends what it was owed at once: its messages arrive as one run.
// In one FIFO the run waits behind the runs of every other peer, and the
// peer's credit comes back only as its own run is consumed, so its next
// run lands again behind everyone's: in the 8-node echo storm of 32-byte
// messages a pair went more than a second without a message while its
// receiver was never idle (storm_test.go). Taking turns, a source with
// messages queued waits for at most one message of each other source (and
// the barriers), whatever the others queued; its credit then comes back as
// steadily as the user consumes.
//
// The zero value is an empty queue. Not safe for concurrent use.
type Turns[T any] struct {
	srcs  map[string]*turnQueue[T]
	ring  []*turnQueue[T] // the sources with messages queued, in turn order
	next  int             // ring index of the source whose turn it is
	segs  []turnSegment[T]
	first uint64 // the number of segs[0]
	n     int    // items queued
	spare []*turnQueue[T]
}

// turnSegment is the messages pushed between two barriers, and the barrier
// that ends them (none for the last segment, still open).
type turnSegment[T any] struct {
	msgs   int // messages of the segment still queued
	end    T
	hasEnd bool
}

type turnItem[T any] struct {
	v   T
	seg uint64 // the segment it was pushed in
}

// turnQueue is one source's messages, a ring buffer.
type turnQueue[T any] struct {
	src  string
	buf  []turnItem[T]
	head int
	n    int
}

// keepTurnBuf bounds the buffer a source keeps once its queue is empty.
const keepTurnBuf = 1 << 10

// DeliveryChunk is how many items a dispatcher takes off its Turns at a
// time (under its lock, then hands them over without it): a source then
// waits for at most DeliveryChunk items more than its turn.
const DeliveryChunk = 64

// Len returns how many items are queued.
func (t *Turns[T]) Len() int { return t.n }

func (t *Turns[T]) open() *turnSegment[T] {
	if len(t.segs) == 0 {
		t.segs = append(t.segs, turnSegment[T]{})
	}
	return &t.segs[len(t.segs)-1]
}

// PushMessage queues v, a message from src.
func (t *Turns[T]) PushMessage(src string, v T) {
	s := t.open()
	s.msgs++
	seg := t.first + uint64(len(t.segs)-1)
	q := t.srcs[src]
	if q == nil {
		if t.srcs == nil {
			t.srcs = map[string]*turnQueue[T]{}
		}
		if k := len(t.spare); k > 0 {
			q = t.spare[k-1]
			t.spare = t.spare[:k-1]
		} else {
			q = &turnQueue[T]{}
		}
		q.src = src
		t.srcs[src] = q
		// Its first turn comes after everyone else's: it goes just
		// before the source whose turn it is.
		t.next = min(t.next, len(t.ring))
		t.ring = slices.Insert(t.ring, t.next, q)
		t.next++
	}
	if q.n == len(q.buf) {
		buf := make([]turnItem[T], max(16, 2*len(q.buf)))
		for i := range q.n {
			buf[i] = q.buf[(q.head+i)%len(q.buf)]
		}
		q.buf, q.head = buf, 0
	}
	q.buf[(q.head+q.n)%len(q.buf)] = turnItem[T]{v: v, seg: seg}
	q.n++
	t.n++
}

// PushBarrier queues v, which is handed over after everything queued
// before it and before everything queued after it.
func (t *Turns[T]) PushBarrier(v T) {
	s := t.open()
	s.end, s.hasEnd = v, true
	t.segs = append(t.segs, turnSegment[T]{})
	t.n++
}

// Pop takes the next item off the queue; false when it is empty.
func (t *Turns[T]) Pop() (T, bool) {
	var zero T
	if t.n == 0 {
		return zero, false
	}
	s := &t.segs[0]
	if s.msgs == 0 {
		// Only the barrier is left of the first segment (a queue with
		// items has one: an open segment with no message would be empty).
		if !s.hasEnd {
			panic("link: Turns lost count of its items")
		}
		v := s.end
		copy(t.segs, t.segs[1:])
		t.segs[len(t.segs)-1] = turnSegment[T]{}
		t.segs = t.segs[:len(t.segs)-1]
		t.first++
		t.n--
		return v, true
	}
	// The next source in turn with a message of the first segment (a
	// source whose next message comes after a barrier waits for it).
	for range len(t.ring) {
		if t.next >= len(t.ring) {
			t.next = 0
		}
		q := t.ring[t.next]
		it := &q.buf[q.head]
		if it.seg != t.first {
			t.next++
			continue
		}
		v := it.v
		*it = turnItem[T]{}
		q.head = (q.head + 1) % len(q.buf)
		q.n--
		s.msgs--
		t.n--
		if q.n > 0 {
			t.next++
			return v, true
		}
		// Empty: out of the turns (the next source moves into this
		// index), its buffer kept for the next source unless large.
		t.ring = append(t.ring[:t.next], t.ring[t.next+1:]...)
		delete(t.srcs, q.src)
		q.src, q.head = "", 0
		if len(q.buf) > keepTurnBuf {
			q.buf = nil
		}
		if len(t.spare) < 64 {
			t.spare = append(t.spare, q)
		}
		return v, true
	}
	panic("link: Turns lost count of its messages")
}

// Reset empties the queue, keeping nothing of what it held.
func (t *Turns[T]) Reset() { *t = Turns[T]{} }
