package fsm

import (
	"encoding/binary"
	"slices"
	"time"

	"github.com/masterless-go/masterless/wire"
)

// The send queue of a stream: what this node sent, or will send, to one
// peer and keeps until the peer acknowledges it (stream.go).
//
// The queue keeps runs of messages, not a record per message. Messages
// queued one after the other are consecutive DATA frames in one of the
// stream's segments (below), and a run records them all: its segment,
// where its first frame starts, how many messages, their payload bytes,
// and the stream offset at its end. A lease's batch of staged messages
// (Admit) is one copy into a segment and, usually, no new record at all:
// it extends the run before it. A
// record per message (32 bytes, written when queued and read again when
// acknowledged) was most of a one-way producer's step: the store of each
// record missed the cache, its array being a window's worth of records
// (PERFORMANCE.md, "Runs, not records"). The per-message facts a rule
// needs (a payload's size, a message's end offset) are read from the
// frames' headers where a run must be cut: an acknowledgement that ends
// inside a run, credit that ends inside one, a message too large for the
// peer.
//
// A run holds messages of one kind only: a producer's (Send.Reserve) or an
// answer, and either frames in a segment or one message's copy shared by
// a SendMany's streams (sharedMin). A stream whose producers' messages and
// answers alternate thus holds a run per message (48 bytes, where a record
// was 32): the kind of each message is what drop needs to count the
// producers' share (reserved). Messages are numbered acked+1,
// acked+2, ... in queue order; the cursor says where the next one to send
// on the current session is.

// The frames are kept in segments, not in one buffer: a buffer that grew
// by append copied all it held at each growth, and toward a peer that had
// stopped acknowledging, a Send that found it full took 44-68 ms to copy
// 17 MiB of 1 KiB messages (a black-box audit saw 5-59 ms; the README
// says Send never waits). A segment is never grown once frames are in it:
// the next frame that does not fit starts a new one, as large as what the
// stream holds, up to maxSegment (or as large as the frame), so a Send
// copies at most its own payload, and a stream of a few small messages
// holds a few KiB. A run lies in one segment; segments the
// acknowledgements emptied are kept as spares (up to maxSpares) for the
// next ones, so a stream that keeps sending allocates nothing per message.

// segment is a piece of a stream's queue: DATA frames back to back.
type segment struct{ b []byte }

const (
	minSegment = 4 << 10   // the first segment of a stream, at least
	maxSegment = 256 << 10 // no later one is larger, unless a frame is
	maxSpares  = 4         // emptied segments kept for reuse
)

// outRun is a run of consecutive messages of a stream: count DATA frames
// back to back in segment seg from at, or one message kept in a
// SendMany's shared copy.
type outRun struct {
	seg     *segment // the segment its frames are in (frames only)
	at      int      // where its first DATA frame starts in seg (frames only)
	count   int      // its messages
	n       int      // their payload bytes
	end     uint64   // the stream byte offset at the end of its last message
	shared  *[]byte  // a single message's copy, shared by a SendMany's streams; nil: frames in seg
	maxN    uint32   // no payload of the run is larger (exact when queued; a bound once some left)
	reserve bool     // producers' messages (Send.Reserve), not answers from callbacks
}

// cost returns what r's messages cost in credit: payload plus msgCost each.
func (r *outRun) cost() uint64 { return uint64(r.n) + uint64(r.count)*msgCost }

// size returns the bytes r's frames take in its segment.
func (r *outRun) size() int {
	if r.shared != nil {
		return 0
	}
	return r.n + r.count*wire.HeaderSize
}

// sendCursor is where the next message to send on the current session is:
// in run `run`, of which `in` messages went out; at is the offset of its
// next frame in the run's segment (meaningful while in > 0: a run none of whose messages
// went out starts at its own at); end is the stream offset at the end of
// the last message sent (the stream's ackedEnd when none was). Message
// number acked+sent+1 is the next: sent is the sum of the counts of the
// runs before `run`, plus in.
type sendCursor struct {
	run, in, at int
	end         uint64
}

// sharedMin is the payload size from which a SendMany keeps one copy for
// all its peers' streams (sharedPayload), not one per peer: a fan-out of a 1 MiB payload to
// 16 peers holds 1 MiB until the last of them acknowledges it, not 16.
// Below it, copies into each stream's segments cost less than allocating one.
// The copy is immutable: the streams and the DATA frames written from it
// only read it, and what goes back to the user as lost is copied out.
const sharedMin = SharedMin

// SharedMin is the payload size from which a SendMany's peers' streams
// share one copy of it (sharedMin). Below it each stream copies the
// payload, so that a producer's SendMany of a smaller payload is, for each
// peer, a producer's Send: it is granted a lease (sendMany), and its
// adapter may stage such a payload in the peers' lanes. From SharedMin it
// takes a SendMany step, the only one that makes the shared copy.
const SharedMin = 512

// outStream is what this node sends to one peer.
type outStream struct {
	inc      uint64 // the peer incarnation the numbering is for; 0 before any
	acked    uint64 // number of the last message the peer delivered
	ackedEnd uint64 // stream byte offset at the end of message acked
	// tail is the stream byte offset at the end of the last message.
	tail     uint64
	limit    uint64     // the byte offset the peer lets us reach
	runs     []outRun   // the messages not acknowledged, in order: numbers acked+1, acked+2, ...
	base     []outRun   // the array runs lives in, reused from its start
	count    int        // how many messages runs holds
	segs     []*segment // their frames, in queue order; new frames go in the last
	spares   []*segment // emptied segments, for the next ones
	bytes    int        // their payload bytes
	sent     int        // how many of them went out on the current session
	everSent int        // how many of them went out to incarnation inc at all
	cur      sendCursor
	refused  bool // a Send was refused for want of room since the last room
	// Pacing (see "Room for answers" in stream.go).
	reserved uint64 // the cost (payload + msgCost each) of the producers' messages queued
	backlog  bool   // this node tells the peer its answers back up here (the last ACK said so, or the next will)
	// bigUntil: a producer's message over the producers' share was refused
	// for want of an empty queue; until then the other producers' messages
	// wait too, so that the queue empties for it (producerWaits). 0: none.
	bigUntil time.Duration
	// lease: the room held for messages the adapter stages without a step
	// (lease.go); it counts as queued for every other Send.
	lease leaseState
}

// sentEnd returns the stream offset at the end of the last message sent on
// the current session (ackedEnd when none was).
func (o *outStream) sentEnd() uint64 { return o.cur.end }

// rewind makes the first message queued the next one to send: a new
// session sends again what the peer has not acknowledged.
func (o *outStream) rewind() {
	o.sent = 0
	o.cur = sendCursor{end: o.ackedEnd}
}

// queue appends a copy of payload to p's stream, as a DATA frame;
// reserve: a producer's. shared, when not nil, is a copy of payload that
// the stream keeps instead of one of its own (sharedMin).
func (o *outStream) queue(payload []byte, reserve bool, shared *[]byte) {
	n := len(payload)
	if shared != nil {
		o.add(outRun{count: 1, n: n, shared: shared, maxN: uint32(n), reserve: reserve})
		return
	}
	g := o.room(wire.DataFrameSize(n))
	at := len(g.b)
	g.b = wire.AppendData(g.b, payload)
	o.add(outRun{seg: g, at: at, count: 1, n: n, maxN: uint32(n), reserve: reserve})
}

// queueFrames queues the count messages of frames, whole DATA frames back
// to back (an Admit's) carrying n payload bytes in all, none larger than
// maxN, as queue does each of their payloads, with one copy of all of them
// into a segment.
func (o *outStream) queueFrames(frames []byte, count, n int, maxN uint32, reserve bool) {
	g := o.room(len(frames))
	at := len(g.b)
	g.b = append(g.b, frames...)
	o.add(outRun{seg: g, at: at, count: count, n: n, maxN: maxN, reserve: reserve})
}

// room returns the segment whose free space takes the next need bytes of
// frames: the last one, or a new one after it, as large as the frames the
// stream holds (at least minSegment, at most maxSegment) or as large as
// need, a spare when one is that large. Sized by what is queued, not by
// the last segment, the segments of a queue that grows double with it,
// and those of a stream with a few messages in flight stay small (sized
// by the last one, they doubled at every new segment, to maxSegment and
// four spares of it: over 1 MiB for a stream that never held 4 KiB).
func (o *outStream) room(need int) *segment {
	if k := len(o.segs); k > 0 {
		if last := o.segs[k-1]; cap(last.b)-len(last.b) >= need {
			return last
		}
	}
	// What the stream holds, framed (counting the shared copies' bytes as
	// well, which are not in segments: a size hint needs no more).
	held := o.bytes + o.count*wire.HeaderSize
	want := max(min(max(held, minSegment), maxSegment), need)
	var g *segment
	for i, sp := range o.spares {
		if cap(sp.b) >= want {
			g = sp
			o.spares = append(o.spares[:i], o.spares[i+1:]...)
			break
		}
	}
	if g == nil {
		g = &segment{b: make([]byte, 0, want)}
	}
	o.segs = append(o.segs, g)
	return g
}

// retire makes segment g, which no run references any more, a spare (or
// lets it go when the spares are full, keeping the larger ones).
func (o *outStream) retire(g *segment) {
	g.b = g.b[:0]
	if len(o.spares) < maxSpares {
		o.spares = append(o.spares, g)
		return
	}
	for i, sp := range o.spares {
		if cap(sp.b) < cap(g.b) {
			o.spares[i] = g
			return
		}
	}
}

// add appends the messages of r (its end not yet set) to the stream: to
// the last run when they are its kind and their frames follow its own in
// its segment, else as a run of their own.
func (o *outStream) add(r outRun) {
	cost := r.cost()
	o.tail += cost
	if r.reserve {
		o.reserved += cost
	}
	o.count += r.count
	o.bytes += r.n
	if k := len(o.runs); k > 0 && r.shared == nil {
		last := &o.runs[k-1]
		if last.shared == nil && last.reserve == r.reserve && last.seg == r.seg && last.at+last.size() == r.at {
			last.count += r.count
			last.n += r.n
			last.end = o.tail
			last.maxN = max(last.maxN, r.maxN)
			return
		}
	}
	r.end = o.tail
	if len(o.runs) == cap(o.runs) {
		o.makeRoom()
	}
	o.runs = append(o.runs, r)
}

// makeRoom makes room for one more run in the array runs lives in.
func (o *outStream) makeRoom() {
	if len(o.runs) <= cap(o.base)/2 {
		// Full up to the array's end, room at its front (drop took
		// runs off there): move them to the front, no allocation.
		o.runs = o.base[:copy(o.base, o.runs)]
		clear(o.base[len(o.runs):]) // let go of the shared copies left behind
	}
	if len(o.runs) == cap(o.runs) {
		// Full past half the array: a new one, twice as long as they are.
		// (append would grow it by a quarter past its length, which can be
		// less than the array it leaves: a stream that wraps around half
		// full would get a new array every time.)
		o.base = make([]outRun, max(2*len(o.runs), 8))
		o.runs = o.base[:copy(o.base, o.runs)]
	}
}

// frameAt returns the payload of the DATA frame at g.b[at:] (which the
// stream wrote: whole and well formed).
func frameAt(g *segment, at int) []byte {
	n := int(binary.BigEndian.Uint32(g.b[at:])) - 1
	start := at + wire.HeaderSize
	return g.b[start : start+n : start+n]
}

// skipFrames returns the bytes taken by the k DATA frames at g.b[at:], and
// their payload bytes.
func skipFrames(g *segment, at, k int) (size, n int) {
	for range k {
		m := int(binary.BigEndian.Uint32(g.b[at+size:])) - 1
		size += wire.HeaderSize + m
		n += m
	}
	return size, n
}

// prefix returns the bytes taken by the first k frames of r (a run of
// frames) and their payload bytes. When r's payload bytes are its
// count times maxN, every payload is maxN bytes (none is larger, and they
// add up to that), and arithmetic says it: a producer of messages of one
// size, the common case, has its acknowledgements, which end inside a
// run, cost no walk through the frames. Otherwise the frames' headers tell
// (skipFrames).
func (o *outStream) prefix(r *outRun, k int) (size, n int) {
	if m := int(r.maxN); r.n == r.count*m {
		return k * (wire.HeaderSize + m), k * m
	}
	return skipFrames(r.seg, r.at, k)
}

// each calls f with the payloads of the first k messages, in order; each
// is valid until the stream changes.
func (o *outStream) each(k int, f func(payload []byte)) {
	for i := 0; k > 0; i++ {
		r := &o.runs[i]
		if r.shared != nil {
			f((*r.shared)[:r.n:r.n])
			k--
			continue
		}
		at := r.at
		for j := 0; j < r.count && k > 0; j++ {
			m := frameAt(r.seg, at)
			f(m)
			at += wire.HeaderSize + len(m)
			k--
		}
	}
}

// drop forgets the first k messages: the peer delivered them, or they were
// handed back as lost.
func (o *outStream) drop(k int) {
	if k <= 0 {
		return
	}
	o.acked += uint64(k)
	o.count -= k
	popped, left, part := 0, k, 0
	for left > 0 {
		r := &o.runs[popped]
		if r.count <= left {
			left -= r.count
			o.bytes -= r.n
			if r.reserve {
				o.reserved -= r.cost()
			}
			o.ackedEnd = r.end
			r.shared = nil // the array keeps the entry until it is written over
			popped++
			continue
		}
		// The first left messages of r.
		size, n := o.prefix(r, left)
		cost := uint64(n) + uint64(left)*msgCost
		o.ackedEnd += cost // the end of the run before r was its start
		o.bytes -= n
		if r.reserve {
			o.reserved -= cost
		}
		r.at += size
		r.count -= left
		r.n -= n
		part, left = left, 0
	}
	if k >= o.sent {
		o.sent, o.cur = 0, sendCursor{end: o.ackedEnd}
	} else {
		// Messages after the k dropped went out: the cursor is past them,
		// in the same run as the last one dropped at the earliest.
		o.sent -= k
		o.cur.run -= popped
		if o.cur.run == 0 {
			o.cur.in -= part
		}
	}
	o.everSent = max(o.everSent-k, 0)
	o.runs = o.runs[popped:]
	switch {
	case len(o.runs) == 0:
		// Start over at the front, no allocation. A big array stays while
		// the stream is busy; release lets it go once a heartbeat finds the
		// stream idle.
		o.runs = o.base[:0]
	case len(o.runs) < cap(o.base)/4 && cap(o.runs) < cap(o.base)/2:
		o.runs = o.base[:copy(o.base, o.runs)] // few left, far from the front: move them there
		clear(o.base[len(o.runs):])            // let go of the shared copies left behind
	}
	o.compact()
}

// compact retires the segments that hold only acknowledged messages. It
// runs only from drop, and drop only runs before anything of this stream is
// written in the same step (an ACK, a RESUME, a lost report all drop first
// and pump after; legacyEstablished, which writes first, lets go of the
// segments itself, not as spares), so no payload handed out in an ActWrite
// of this step aliases the bytes of a spare that a Send may write over.
func (o *outStream) compact() {
	var first *segment // the segment of the first frame kept
	for i := range o.runs {
		if o.runs[i].shared == nil {
			first = o.runs[i].seg
			break
		}
	}
	keep := len(o.segs) - 1 // no frames kept: the last stays, emptied, for the next ones
	if first != nil {
		keep = slices.Index(o.segs, first)
	}
	if keep < 0 { // no segment at all
		return
	}
	for _, g := range o.segs[:keep] {
		o.retire(g)
	}
	k := copy(o.segs, o.segs[keep:])
	clear(o.segs[k:])
	o.segs = o.segs[:k]
	if first == nil {
		o.segs[0].b = o.segs[0].b[:0]
	}
}

// release gives back the buffers of a stream with nothing unacknowledged,
// whatever their size: a burst that grew them is over. The heartbeat calls
// it (sessionTimers), so an idle peer costs no stream buffer past one
// heartbeat interval, while a stream that keeps sending still reuses its
// buffers (compact, drop) and allocates nothing per message. Nothing of this
// stream is in flight in an ActWrite: it holds no message.
func (o *outStream) release() {
	if o.count == 0 {
		o.runs, o.base = nil, nil
		o.dropSegments()
		o.cur = sendCursor{end: o.ackedEnd}
	}
}

// dropSegments lets go of every segment, spares included.
func (o *outStream) dropSegments() { o.segs, o.spares = nil, nil }

// segmentsCap returns the bytes the stream's segments and spares hold.
func (o *outStream) segmentsCap() int {
	k := 0
	for _, g := range o.segs {
		k += cap(g.b)
	}
	for _, g := range o.spares {
		k += cap(g.b)
	}
	return k
}

// next returns the run of the next message to send (o.sent < o.count),
// moving the cursor to the next run when the one it is in went out whole.
func (o *outStream) next() *outRun {
	r := &o.runs[o.cur.run]
	if o.cur.in == r.count {
		o.cur.run, o.cur.in = o.cur.run+1, 0
		r = &o.runs[o.cur.run]
	}
	if o.cur.in == 0 {
		o.cur.at = r.at
	}
	return r
}

// advance moves the cursor past the next k messages of run r (the cursor's
// run), whose frames take size bytes of its segment and carry n payload
// bytes.
func (o *outStream) advance(r *outRun, k, size, n int) {
	o.cur.in += k
	if r.shared == nil {
		o.cur.at += size
	}
	o.cur.end += uint64(n) + uint64(k)*msgCost
	o.sent += k
	o.everSent = max(o.everSent, o.sent)
}

// cutNext removes the next message to send (the cursor's), which the peer
// never got, from the stream: the ones after it move up a number (none of
// them was delivered either, as delivery is in order) and their offsets
// back by its cost. Its frame's bytes stay in its segment, unreferenced,
// until compact retires the segment.
func (o *outStream) cutNext() {
	i := o.cur.run
	r := o.runs[i]
	var m int
	if r.shared != nil {
		m = r.n
	} else {
		m = len(frameAt(r.seg, o.cur.at))
	}
	cost := uint64(m) + msgCost
	var parts []outRun
	if r.shared == nil {
		before := outRun{seg: r.seg, at: r.at, count: o.cur.in, end: o.cur.end, maxN: r.maxN, reserve: r.reserve}
		before.n = o.cur.at - r.at - o.cur.in*wire.HeaderSize
		after := outRun{seg: r.seg, at: o.cur.at + wire.HeaderSize + m, count: r.count - o.cur.in - 1, end: r.end - cost, maxN: r.maxN, reserve: r.reserve}
		after.n = r.n - before.n - m
		for _, x := range []outRun{before, after} {
			if x.count > 0 {
				parts = append(parts, x)
			}
		}
	}
	runs := append(o.runs[:i:i], append(parts, o.runs[i+1:]...)...) // a new array: the cut is rare
	o.base, o.runs = runs[:cap(runs)], runs
	for j := i + len(parts); j < len(o.runs); j++ {
		o.runs[j].end -= cost
	}
	o.tail -= cost
	o.count--
	o.bytes -= m
	if r.reserve {
		o.reserved -= cost
	}
	if o.everSent > o.sent {
		o.everSent--
	}
	// The cursor: past the part before the message, at the start of what
	// follows it; with nothing following, at the end of the last run.
	if o.cur.in > 0 {
		i++ // the part before it went out
	}
	switch {
	case i < len(o.runs):
		o.cur.run, o.cur.in = i, 0
	case len(o.runs) > 0:
		last := &o.runs[len(o.runs)-1]
		o.cur.run, o.cur.in, o.cur.at = len(o.runs)-1, last.count, last.at+last.size()
	default:
		o.cur = sendCursor{end: o.cur.end}
	}
}
