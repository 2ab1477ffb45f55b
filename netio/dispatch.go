package netio

import (
	"sync"
	"sync/atomic"

	"github.com/masterless-go/masterless/fsm"
)

// The dispatcher delivers user events from one goroutine, one at a time, in
// the order the fsm produced them. Producers (under the core lock) append to a
// queue and never block; readers then wait outside the lock while the queue
// is over its bound, which stops them reading and pushes back on the peer.

type eventKind uint8

const (
	evListening eventKind = iota + 1
	evConnected
	evDisconnected
	evMessage
	evLost
	evMember // discovery: a member joined, left or was forgotten (member.go)
)

type event struct {
	kind    eventKind
	peer    string
	inc     uint64 // evMessage: the incarnation of the peer that sent it
	info    string
	err     error
	payload []byte
	lost    [][]byte
	change  fsm.ActionKind // evMember: fsm.ActMemberUp, ActMemberLeft or ActMemberGone
}

// consumption is what the user took off the queue from one peer's
// incarnation, reported so that the peer gets credit for it.
type consumption struct {
	peer  string
	inc   uint64
	msgs  int
	bytes int
}

// keepEvents is how large a queue the dispatcher keeps for the next batch
// (about 8 MiB of events); a larger one, after a burst, is given back.
const keepEvents = 1 << 16

// reportEvery is how many payload bytes the dispatcher hands to the user
// before it reports them consumed, within a batch: credit flows back while a
// large batch is still being delivered.
const reportEvery = 64 << 10

type dispatcher struct {
	h         Events
	consumed  func([]consumption) // reports what the user took off the queue
	used      []consumption       // the run loop's tally, reused
	gate      <-chan struct{}     // no delivery before it is closed
	maxEvents int
	maxBytes  int

	mu       sync.Mutex
	ready    sync.Cond // the dispatcher waits for events
	room     sync.Cond // readers wait for the queue to drain
	q        []event
	spare    []event
	bytes    int
	idle     bool
	waiters  int
	stopped  bool
	stopFlag atomic.Bool // stopped, readable without mu
}

func (d *dispatcher) init(h Events, gate <-chan struct{}, maxEvents, maxBytes int, consumed func([]consumption)) {
	d.h, d.gate, d.maxEvents, d.maxBytes, d.consumed = h, gate, maxEvents, maxBytes, consumed
	d.ready.L = &d.mu
	d.room.L = &d.mu
}

// push queues evs. It never blocks: the bound is enforced by waitRoom.
func (d *dispatcher) push(evs []event) {
	d.mu.Lock()
	if !d.stopped {
		d.q = append(d.q, evs...)
		for i := range evs {
			d.bytes += len(evs[i].payload)
		}
		if d.idle {
			d.idle = false
			d.ready.Signal()
		}
	}
	d.mu.Unlock()
}

// waitRoom blocks while the queue is over its bound. With the batch being
// delivered, at most about twice the bound (plus one read per connection) is
// held.
func (d *dispatcher) waitRoom() {
	d.mu.Lock()
	for !d.stopped && (len(d.q) >= d.maxEvents || d.bytes >= d.maxBytes) {
		d.waiters++
		d.room.Wait()
		d.waiters--
	}
	d.mu.Unlock()
}

// stop drops what is queued, releases waiting readers and ends run after the
// handler in progress returns.
func (d *dispatcher) stop() {
	d.mu.Lock()
	d.stopped = true
	d.stopFlag.Store(true)
	clear(d.q)
	d.q = nil
	d.ready.Signal()
	d.room.Broadcast()
	d.mu.Unlock()
}

func (d *dispatcher) run(wg *sync.WaitGroup, done <-chan struct{}) {
	defer wg.Done()
	if d.gate != nil {
		select {
		case <-d.gate:
		case <-done:
			return
		}
	}
	d.mu.Lock()
	for {
		for len(d.q) == 0 && !d.stopped {
			d.idle = true
			d.ready.Wait()
		}
		if d.stopped {
			d.mu.Unlock()
			return
		}
		batch := d.q
		d.q, d.spare = d.spare, nil
		d.bytes = 0
		if d.waiters > 0 {
			d.room.Broadcast()
		}
		d.mu.Unlock()
		used := d.used[:0]
		pending := 0
		for i := range batch {
			if d.isStopped() {
				break
			}
			ev := &batch[i]
			d.deliver(ev)
			if ev.kind == evMessage {
				used = tally(used, ev)
				if pending += len(ev.payload); pending >= reportEvery {
					d.consumed(used)
					used, pending = used[:0], 0
				}
			}
		}
		if len(used) > 0 && !d.isStopped() {
			d.consumed(used)
		}
		d.used = used[:0]
		clear(batch) // let the payloads go
		d.mu.Lock()
		if cap(batch) <= max(4*d.maxEvents, keepEvents) {
			d.spare = batch[:0]
		}
	}
}

func (d *dispatcher) isStopped() bool { return d.stopFlag.Load() }

// tally adds message ev to what was consumed from its sender.
func tally(used []consumption, ev *event) []consumption {
	for i := range used {
		if u := &used[i]; u.peer == ev.peer && u.inc == ev.inc {
			u.msgs++
			u.bytes += len(ev.payload)
			return used
		}
	}
	return append(used, consumption{peer: ev.peer, inc: ev.inc, msgs: 1, bytes: len(ev.payload)})
}

func (d *dispatcher) deliver(ev *event) {
	switch ev.kind {
	case evListening:
		if d.h.Listening != nil {
			d.h.Listening(ev.info)
		}
	case evConnected:
		if d.h.Connected != nil {
			d.h.Connected(ev.peer, ev.info)
		}
	case evDisconnected:
		if d.h.Disconnected != nil {
			d.h.Disconnected(ev.peer, ev.err)
		}
	case evMessage:
		if d.h.Message != nil {
			d.h.Message(ev.peer, ev.payload)
		}
	case evLost:
		if d.h.Lost != nil {
			d.h.Lost(ev.peer, ev.lost, ev.err)
		}
	case evMember:
		if d.h.Member != nil {
			d.h.Member(ev.change, ev.peer, ev.inc, ev.info, ev.err)
		}
	}
}
