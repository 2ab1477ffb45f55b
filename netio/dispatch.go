package netio

import (
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/masterless-go/masterless/fsm"
	"github.com/masterless-go/masterless/link"
	"github.com/masterless-go/masterless/wire"
)

// The dispatcher delivers user events from one goroutine, one at a time.
// Producers (under the core lock) append to a queue and never block; the
// readers of 0.4.1 connections then wait outside the lock while the queue is
// over its bound, which stops them reading and pushes back on the peer.
//
// The queue is a link.Turns: messages are handed over taking turns among the
// peers that sent them, each peer's in the order the fsm produced them, and
// every other event (Connected, Disconnected, Lost, Member, Listening) in
// the order the fsm produced it relative to everything else. So no peer's
// messages wait behind a window's worth of every other peer's (see Turns for
// the stall a single first-in first-out queue caused).
//
// The messages of one fsm.ActMessages (a read's run of one peer's DATA
// frames) travel as one event holding their frames, copied once into the
// read's slab; the queue counts, takes turns and cuts by message (Turns'
// Count and Cut), and the dispatcher hands the messages over one by one.

type eventKind uint8

const (
	evListening eventKind = iota + 1
	evConnected
	evDisconnected
	evMessage
	evMessages // the messages of a run of DATA frames (n of them)
	evLost
	evMember // discovery: a member joined, left or was forgotten (member.go)
)

// event is one event for the user, or the messages of a run of frames.
// It is 64 bytes, copied three times on its way to the user (into the
// Runtime's list, the queue, the chunk being delivered); what the kinds
// other than messages carry besides sits behind more.
type event struct {
	kind   eventKind
	change fsm.ActionKind // evMember: fsm.ActMemberUp, ActMemberLeft or ActMemberGone
	// size is, for evMessages, the length of each of its frames when they
	// have one (fsm.Action.FrameSize) that fits, else 0: cutMessages then
	// cuts, and messages slices the payloads, by arithmetic (in bytes the
	// event had spare: it is still 64).
	size    uint16
	n       uint32 // evMessages: how many DATA frames payload holds
	peer    string
	inc     uint64     // evMessage, evMessages, evMember: the peer's incarnation
	payload []byte     // evMessage: the payload; evMessages: the DATA frames
	more    *eventMore // every kind but the messages
}

// isMessage reports whether ev holds messages (one or a run).
func (ev *event) isMessage() bool { return ev.kind == evMessage || ev.kind == evMessages }

// payloadBytes is how many payload bytes ev holds (the frames' headers not
// counted).
func (ev *event) payloadBytes() int {
	if ev.kind == evMessages {
		return len(ev.payload) - int(ev.n)*wire.HeaderSize
	}
	return len(ev.payload)
}

// messageCount is Turns' Count: how many messages ev stands for.
func messageCount(ev event) int {
	if ev.kind == evMessages {
		return int(ev.n)
	}
	return 1
}

// cutMessages is Turns' Cut: the first k messages of run ev and the rest.
// Messages of one length (ev.size) are cut where the k-th ends; others by
// walking the k frames. The walk was a fifth of the fan-out's dispatcher
// CPU, on bytes the dispatcher reads again to hand them over.
func cutMessages(ev event, k int) (event, event) {
	off := 0
	if ev.size != 0 {
		off = k * int(ev.size)
	} else {
		for range k {
			_, rest, ok := wire.NextData(ev.payload[off:])
			if !ok {
				panic("netio: a run of messages that is not whole DATA frames")
			}
			off = len(ev.payload) - len(rest)
		}
	}
	head, rest := ev, ev
	head.payload, head.n = ev.payload[:off:off], uint32(k)
	rest.payload, rest.n = ev.payload[off:], ev.n-uint32(k)
	return head, rest
}

// eventMore is what an event other than a message carries besides.
type eventMore struct {
	info string
	err  error
	lost [][]byte
}

// consumption is what the user took off the queue from one peer's
// incarnation, reported so that the peer gets credit for it.
type consumption struct {
	peer  string
	inc   uint64
	msgs  int
	bytes int
}

// reportEvery is how many payload bytes the dispatcher hands to the user
// before it reports them consumed, when its queue does not run empty before
// (it reports what is left whenever it does): credit flows back while the
// queue is still being delivered.
const reportEvery = 64 << 10

type dispatcher struct {
	h         Events
	consumed  func([]consumption) // reports what the user took off the queue
	used      []consumption       // the run loop's tally, reused
	chunk     []event             // the events being delivered, reused
	gate      <-chan struct{}     // no delivery before it is closed
	maxEvents int
	maxBytes  int
	// inlined is set by each inline write (inline.go): the run loop yields
	// before its next consumption report.
	inlined atomic.Bool

	mu       sync.Mutex
	ready    sync.Cond // the dispatcher waits for events
	room     sync.Cond // readers wait for the queue to drain
	q        link.Turns[event]
	bytes    int
	idle     bool
	pops     uint64 // chunks taken off q, so far
	trimmed  uint64 // pops at the last trimIdle
	waiters  int
	stopped  bool
	stopFlag atomic.Bool // stopped, readable without mu

	// gid is the id of the goroutine run runs on (goid), set before it
	// delivers anything: the calls that would wait for it or park it check
	// against it (onDispatcher). gone is closed when run returns.
	gid  atomic.Uint64
	gone chan struct{}
}

func (d *dispatcher) init(h Events, gate <-chan struct{}, maxEvents, maxBytes int, consumed func([]consumption)) {
	d.h, d.gate, d.maxEvents, d.maxBytes, d.consumed = h, gate, maxEvents, maxBytes, consumed
	d.q.Count, d.q.Cut = messageCount, cutMessages
	d.ready.L = &d.mu
	d.room.L = &d.mu
	d.gone = make(chan struct{})
}

// onDispatcher reports whether the caller is the dispatcher goroutine, that
// is, an event callback (or what it called) is calling. It reads the
// goroutine's id (goid, a microsecond or two): call it only where the
// caller would otherwise wait.
func (d *dispatcher) onDispatcher() bool {
	g := d.gid.Load()
	return g != 0 && g == goid()
}

// push queues evs. It never blocks: the bound is enforced by waitRoom.
func (d *dispatcher) push(evs []event) {
	d.mu.Lock()
	if !d.stopped {
		for i := 0; i < len(evs); {
			d.bytes += evs[i].payloadBytes()
			if !evs[i].isMessage() {
				d.q.PushBarrier(evs[i])
				i++
				continue
			}
			// A run of one peer's messages (a read's worth) in one go.
			j := i + 1
			for ; j < len(evs) && evs[j].isMessage() && evs[j].peer == evs[i].peer; j++ {
				d.bytes += evs[j].payloadBytes()
			}
			d.q.PushMessages(evs[i].peer, evs[i:j])
			i = j
		}
		if d.idle {
			d.idle = false
			d.ready.Signal()
		}
	}
	d.mu.Unlock()
}

// full reports whether waitRoom would block now.
func (d *dispatcher) full() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return !d.stopped && (d.q.Len() >= d.maxEvents || d.bytes >= d.maxBytes)
}

// waitRoom blocks while the queue is over its bound, until it is back to
// half of it. At most the bound plus one read per connection is held (and a
// chunk being delivered).
func (d *dispatcher) waitRoom() {
	d.mu.Lock()
	for !d.stopped && (d.q.Len() >= d.maxEvents || d.bytes >= d.maxBytes) {
		d.waiters++
		d.room.Wait()
		d.waiters--
	}
	d.mu.Unlock()
}

// trimIdle gives back the queue's spare buffers once nothing has been
// taken off it since the previous call and it is empty: the timer calls it
// after each tick (several times per heartbeat interval while there are
// sessions), so a node idle for a tick or two holds no buffer a burst grew,
// and a busy one keeps reusing them.
func (d *dispatcher) trimIdle() {
	d.mu.Lock()
	if d.q.Len() == 0 && d.pops == d.trimmed {
		d.q.Trim()
	}
	d.trimmed = d.pops
	d.mu.Unlock()
}

// stop drops what is queued, releases waiting readers and ends run after the
// handler in progress returns.
func (d *dispatcher) stop() {
	d.mu.Lock()
	d.stopped = true
	d.stopFlag.Store(true)
	d.q.Reset()
	d.ready.Signal()
	d.room.Broadcast()
	d.mu.Unlock()
}

// run delivers the queued events until stop; gone is closed when it
// returns. It is not in the Runtime's WaitGroup: Close called from a callback
// waits for every other goroutine, and this one ends when that callback
// returns.
func (d *dispatcher) run(done <-chan struct{}) {
	defer close(d.gone)
	d.gid.Store(goid())
	if d.gate != nil {
		select {
		case <-d.gate:
		case <-done:
			return
		}
	}
	used, pending := d.used[:0], 0
	d.mu.Lock()
	for {
		for d.q.Len() == 0 && !d.stopped {
			if len(used) > 0 {
				// The queue ran empty: report what the user took before
				// waiting (not under d.mu: consumed takes the core lock,
				// which push's callers hold before d.mu).
				d.mu.Unlock()
				// After an answer written inline (inline.go), first let
				// the goroutines it readied (the peer's reader, when the
				// peer is in this process) run here, rather than on the
				// other CPU while the report takes the core lock
				// (ping-pong: 29.5 µs a round trip without the yield,
				// 22.7 µs with it). Only then: a yield each time the
				// queue ran empty cost a fan-out's 16 receivers about
				// 5% more CPU.
				if d.inlined.Swap(false) {
					runtime.Gosched()
				}
				d.consumed(used)
				used, pending = used[:0], 0
				d.mu.Lock()
				continue
			}
			d.idle = true
			d.ready.Wait()
		}
		if d.stopped {
			d.mu.Unlock()
			return
		}
		// A chunk in turn order, delivered without the lock.
		chunk := d.q.PopChunk(d.chunk[:0], link.DeliveryChunk)
		d.pops++
		for i := range chunk {
			d.bytes -= chunk[i].payloadBytes()
		}
		if d.waiters > 0 && d.q.Len() <= d.maxEvents/2 && d.bytes <= d.maxBytes/2 {
			d.room.Broadcast()
		}
		d.mu.Unlock()
		for i := range chunk {
			if d.isStopped() {
				break
			}
			ev := &chunk[i]
			switch ev.kind {
			case evMessage:
				used, pending = d.message(ev.peer, ev.inc, ev.payload, used, pending)
			case evMessages:
				used, pending = d.messages(ev, used, pending)
			default:
				d.deliver(ev)
			}
		}
		clear(chunk) // let the payloads go
		d.chunk = chunk[:0]
		d.mu.Lock()
	}
}

func (d *dispatcher) isStopped() bool { return d.stopFlag.Load() }

// message hands the user payload, a message of peer's incarnation inc,
// and takes it (took).
func (d *dispatcher) message(peer string, inc uint64, payload []byte, used []consumption, pending int) ([]consumption, int) {
	if d.h.Message != nil {
		d.h.Message(peer, payload)
	}
	return d.took(used, pending, peer, inc, 1, len(payload))
}

// messages is message for each message of ev, a run of DATA frames from
// one peer's incarnation (evMessages), until the dispatcher stops: the
// messages handed over are taken together, once per run and once per
// report, not once each, with the reports where message would make them.
func (d *dispatcher) messages(ev *event, used []consumption, pending int) ([]consumption, int) {
	k, size := 0, 0 // handed over and not yet taken
	for frames := ev.payload; len(frames) > 0; {
		if d.isStopped() {
			break
		}
		var p, rest []byte
		if fl := int(ev.size); fl != 0 {
			// Frames of one length: no header read (the state machine
			// parsed them, fsm.Action.FrameSize), so a callback that does
			// not read its payload reads none of these bytes.
			p, rest = frames[wire.HeaderSize:fl:fl], frames[fl:]
		} else {
			var ok bool
			if p, rest, ok = wire.NextData(frames); !ok {
				panic("netio: a run of messages that is not whole DATA frames")
			}
		}
		if d.h.Message != nil {
			d.h.Message(ev.peer, p)
		}
		k, size = k+1, size+len(p)
		if pending+size >= reportEvery {
			used, pending = d.took(used, pending, ev.peer, ev.inc, k, size)
			k, size = 0, 0
		}
		frames = rest
	}
	if k > 0 {
		used, pending = d.took(used, pending, ev.peer, ev.inc, k, size)
	}
	return used, pending
}

// took tallies k messages of size payload bytes in all, handed over from
// peer's incarnation inc, in used, and reports what was consumed once
// pending, the bytes tallied since the last report, reaches reportEvery.
func (d *dispatcher) took(used []consumption, pending int, peer string, inc uint64, k, size int) ([]consumption, int) {
	used = tally(used, peer, inc, k, size)
	if pending += size; pending >= reportEvery {
		d.consumed(used)
		return used[:0], 0
	}
	return used, pending
}

// tally adds k messages of size bytes in all to what was consumed from
// peer's incarnation inc.
func tally(used []consumption, peer string, inc uint64, k, size int) []consumption {
	for i := range used {
		if u := &used[i]; u.peer == peer && u.inc == inc {
			u.msgs += k
			u.bytes += size
			return used
		}
	}
	return append(used, consumption{peer: peer, inc: inc, msgs: k, bytes: size})
}

func (d *dispatcher) deliver(ev *event) {
	switch ev.kind {
	case evListening:
		if d.h.Listening != nil {
			d.h.Listening(ev.more.info)
		}
	case evConnected:
		if d.h.Connected != nil {
			d.h.Connected(ev.peer, ev.more.info)
		}
	case evDisconnected:
		if d.h.Disconnected != nil {
			d.h.Disconnected(ev.peer, ev.more.err)
		}
	case evLost:
		if d.h.Lost != nil {
			d.h.Lost(ev.peer, ev.more.lost, ev.more.err)
		}
	case evMember:
		if d.h.Member != nil {
			d.h.Member(ev.change, ev.peer, ev.inc, ev.more.info, ev.more.err)
		}
	}
}
