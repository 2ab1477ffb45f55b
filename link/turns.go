package link

import "slices"

// Turns is a node's delivery queue: what its user is handed, one item at a
// time, by one dispatcher (netio's; the simulator's model of it, sim/app.go).
// Both use this type, so the order the simulator checks is the order users
// get.
//
// Messages are handed over taking turns among their sources: up to
// TurnQuantum messages of each source with messages queued, then the next
// of each, and so on; each source's messages in the order they were
// pushed. Every other item (a
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
// messages queued waits for at most TurnQuantum messages of each other
// source (and the barriers), whatever the others queued; its credit then
// comes back as steadily as the user consumes.
//
// An item may stand for several messages of its source (a batch): Count
// and Cut, when set, say how many and split one. The queue then counts
// messages, not items, in everything above (Len, the turns' quantum, a
// chunk's size) and cuts a batch where a turn ends, so that it hands the
// messages over in the same order, in the same turns, as it would if each
// had been pushed on its own (netio queues the messages of a read as one
// item: a 64-byte event per message, copied three times and cleared twice,
// was about a fifth of the one-way benchmark's CPU).
//
// The zero value is an empty queue of one message per item. Not safe for
// concurrent use.
type Turns[T any] struct {
	// Count, if set, is how many messages a message item stands for (at
	// least 1); unset, each stands for one.
	Count func(T) int
	// Cut splits v, a message item of more than k messages (k > 0), into
	// its first k messages and the rest. Needed when Count is set.
	Cut func(v T, k int) (head, rest T)

	srcs  map[string]*turnQueue[T]
	ring  []*turnQueue[T] // the sources with messages queued, in turn order
	next  int             // ring index of the source whose turn it is
	segs  []turnSegment[T]
	first uint64          // the number of segs[0]
	n     int             // items queued
	spare []*turnQueue[T] // empty queues, with their buffers
	// spareCap is the capacity of the buffers of spare.
	spareCap int
	last     *turnQueue[T] // the queue pushed to last (the next push is usually the same source's)
	chunks   uint64        // PopChunk calls so far: turnQueue.chunk tells the sources served in this one
}

// turnSegment is the messages pushed between two barriers, and the barrier
// that ends them (none for the last segment, still open).
type turnSegment[T any] struct {
	msgs   int // messages of the segment still queued
	end    T
	hasEnd bool
}

// turnQueue is one source's messages in order: items[head:], pushed in
// segments runs[0], runs[1], ... (a new run starts when a barrier came
// between two pushes of the source, which is rare).
type turnQueue[T any] struct {
	src   string
	items []T
	head  int
	runs  []turnRun
	chunk uint64 // the PopChunk call that last gave it a turn
}

// turnRun is n consecutive messages of a source pushed in segment seg.
type turnRun struct {
	n   int
	seg uint64
}

// keepTurnItems bounds the buffers (in items) kept for the next sources
// once their queues are empty: a queue that empties and fills again (one
// peer sending in bursts) reuses its buffer instead of growing a new one
// for every burst.
const keepTurnItems = 1 << 16

// DeliveryChunk is the most items a dispatcher takes off its Turns at a
// time (PopChunk, under its lock, then hands them over without it); a
// chunk holds at most one turn of each source.
const DeliveryChunk = 64

// TurnQuantum is how many consecutive messages of one source a turn hands
// over at most (in one copy: taking one at a time made the two-node echo
// benchmark spend half as much CPU again per message).
const TurnQuantum = 16

// Len returns how many items are queued: messages (as Count counts them)
// and barriers.
func (t *Turns[T]) Len() int { return t.n }

// count is how many messages item v stands for.
func (t *Turns[T]) count(v T) int {
	if t.Count == nil {
		return 1
	}
	return t.Count(v)
}

func (t *Turns[T]) open() *turnSegment[T] {
	if len(t.segs) == 0 {
		t.segs = append(t.segs, turnSegment[T]{})
	}
	return &t.segs[len(t.segs)-1]
}

// PushMessage queues v, a message from src.
func (t *Turns[T]) PushMessage(src string, v T) {
	q := t.queue(src, t.count(v), 1)
	q.items = append(q.items, v)
}

// PushMessages queues vs, messages from src in order: PushMessage for
// each, in one go.
func (t *Turns[T]) PushMessages(src string, vs []T) {
	if len(vs) > 0 {
		k := len(vs)
		if t.Count != nil {
			k = 0
			for _, v := range vs {
				k += t.Count(v)
			}
		}
		q := t.queue(src, k, len(vs))
		q.items = append(q.items, vs...)
	}
}

// queue returns src's queue, in the turns, counting k messages about to
// be appended to its items, in items items.
func (t *Turns[T]) queue(src string, k, items int) *turnQueue[T] {
	s := t.open()
	s.msgs += k
	t.n += k
	seg := t.first + uint64(len(t.segs)-1)
	q := t.last
	if q == nil || q.src != src {
		q = t.srcs[src]
	}
	if q == nil {
		if t.srcs == nil {
			t.srcs = map[string]*turnQueue[T]{}
		}
		if n := len(t.spare); n > 0 {
			q = t.spare[n-1]
			t.spare = t.spare[:n-1]
			t.spareCap -= cap(q.items)
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
	t.last = q
	if r := len(q.runs) - 1; r >= 0 && q.runs[r].seg == seg {
		q.runs[r].n += k
	} else {
		q.runs = append(q.runs, turnRun{n: k, seg: seg})
	}
	if len(q.items)+items > cap(q.items) && q.head > 0 {
		// Full: move what is left to the front before growing.
		q.items = q.items[:copy(q.items, q.items[q.head:])]
		clear(q.items[len(q.items):cap(q.items)][:q.head])
		q.head = 0
	}
	return q
}

// PushBarrier queues v, which is handed over after everything queued
// before it and before everything queued after it.
func (t *Turns[T]) PushBarrier(v T) {
	s := t.open()
	s.end, s.hasEnd = v, true
	t.segs = append(t.segs, turnSegment[T]{})
	t.n++
}

// Pop takes the next item off the queue; false when it is empty. It is
// PopChunk of one item.
func (t *Turns[T]) Pop() (T, bool) {
	var one [1]T
	if got := t.PopChunk(one[:0], 1); len(got) == 1 {
		return got[0], true
	}
	var zero T
	return zero, false
}

// PopChunk appends up to max messages and barriers (as Len counts them) to
// dst in the order the queue hands them over, taking them off it, and
// returns dst: up to TurnQuantum
// consecutive messages of a source per turn, copied in one go, and at most
// one turn of each source per chunk, so that a source whose messages come
// while a chunk is being handed over waits for at most TurnQuantum
// messages of each other source (a chunk of 64 used to hold four turns of
// the one source queued, and a newcomer waited behind up to 63 of them: a
// black-box audit).
func (t *Turns[T]) PopChunk(dst []T, max int) []T {
	t.chunks++
	for got := 0; got < max && t.n > 0; {
		s := &t.segs[0]
		if s.msgs == 0 {
			// Only the barrier is left of the first segment (a queue with
			// items has one: an open segment with no message would be empty).
			if !s.hasEnd {
				panic("link: Turns lost count of its items")
			}
			dst = append(dst, s.end)
			copy(t.segs, t.segs[1:])
			t.segs[len(t.segs)-1] = turnSegment[T]{}
			t.segs = t.segs[:len(t.segs)-1]
			t.first++
			t.n--
			got++
			continue
		}
		k := min(max-got, TurnQuantum)
		var again bool
		if dst, k, again = t.popTurn(dst, k); again {
			break // the source in turn had its turn in this chunk already
		}
		got += k
	}
	return dst
}

// popTurn appends up to k messages of the next source in turn with
// messages of the first segment (a source whose next message comes after
// a barrier waits for it) to dst, and returns how many. It appends nothing
// and reports again if that source had a turn in the current chunk
// already (PopChunk).
func (t *Turns[T]) popTurn(dst []T, k int) ([]T, int, bool) {
	for range len(t.ring) {
		if t.next >= len(t.ring) {
			t.next = 0
		}
		q := t.ring[t.next]
		if q.runs[0].seg != t.first {
			t.next++
			continue
		}
		if q.chunk == t.chunks {
			return dst, 0, true
		}
		q.chunk = t.chunks
		k = min(k, q.runs[0].n)
		whole, part := k, 0 // items taken whole, messages cut off the next
		if t.Count != nil {
			whole, part = t.fit(q.items[q.head:], k)
		}
		dst = append(dst, q.items[q.head:q.head+whole]...)
		clear(q.items[q.head : q.head+whole])
		q.head += whole
		if part > 0 {
			var head T
			head, q.items[q.head] = t.Cut(q.items[q.head], part)
			dst = append(dst, head)
		}
		if q.runs[0].n -= k; q.runs[0].n == 0 {
			q.runs = q.runs[:copy(q.runs, q.runs[1:])]
		}
		t.segs[0].msgs -= k
		t.n -= k
		if q.head < len(q.items) {
			t.next++
			return dst, k, false
		}
		// Empty: out of the turns (the next source moves into this
		// index), its buffer kept for the next source unless large.
		// The slot the ring gives up is cleared: left in the backing
		// array past the ring's length, it kept an emptied queue, and its
		// buffer, reachable after Trim (a black-box audit found 1.5 MiB
		// held by a node idle after one peer's burst).
		last := len(t.ring) - 1
		copy(t.ring[t.next:], t.ring[t.next+1:])
		t.ring[last] = nil
		t.ring = t.ring[:last]
		delete(t.srcs, q.src)
		if t.last == q {
			t.last = nil
		}
		q.src, q.head = "", 0
		q.items = q.items[:0]
		if t.spareCap+cap(q.items) > keepTurnItems {
			q.items = nil // the buffers kept are large enough
		}
		if len(t.spare) < 64 {
			t.spare = append(t.spare, q)
			t.spareCap += cap(q.items)
		}
		return dst, k, false
	}
	panic("link: Turns lost count of its messages")
}

// fit returns how many of items, taken whole, make up k messages but not
// more, and how many messages of the next item make up the rest of k (0
// when whole items make up k exactly). The items hold k messages or more.
func (t *Turns[T]) fit(items []T, k int) (whole, part int) {
	for ; k > 0; whole++ {
		if whole == len(items) {
			panic("link: Turns lost count of its messages")
		}
		c := t.Count(items[whole])
		if c > k {
			return whole, k
		}
		k -= c
	}
	return whole, 0
}

// Trim gives back the buffers kept for the next sources (spare): a
// dispatcher calls it once its queue has stayed empty for a while, so that
// an idle node holds none of the buffers a burst grew (up to keepTurnItems
// items: 4 MiB of 64-byte events, which a black-box audit found as about 8
// KiB per idle peer of a node with 300 peers, each of which had sent it
// a burst of small messages).
func (t *Turns[T]) Trim() {
	clear(t.spare)
	t.spare, t.spareCap = nil, 0
}

// Reset empties the queue, keeping nothing of what it held.
func (t *Turns[T]) Reset() { *t = Turns[T]{} }
