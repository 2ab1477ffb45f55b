package sim

import (
	"time"

	"github.com/masterless-go/masterless/fsm"
)

// evKind is what a scheduled event does when its time comes.
type evKind uint8

const (
	evDeliver       evKind = iota + 1 // bytes arrive at one end of a connection
	evFIN                             // the other end closed: ConnClosed after the bytes before it
	evReset                           // the connection was reset: ConnClosed at once
	evDialResult                      // a dial's SYN reached the listener (or not)
	evDialed                          // the SYN-ACK reached the dialer
	evTick                            // a node's deadline
	evCommand                         // the random user issues a command
	evFault                           // the next injected fault
	evRestart                         // a crashed node comes back
	evHeal                            // the healing phase starts
	evFunc                            // a scenario's scripted action
	evConsume                         // the simulated user consumes a delivered message
	evWindow                          // a window update: the other end's reader read bytes (sockets.go)
	evWriteDeadline                   // a Write's deadline (sockets.go)
	evLinger                          // a closing end's linger time is over (sockets.go)
	evWake                            // an application or producer waiting on an output buffer looks again
	evApp                             // the application's dispatcher goes on (app.go)
	evProduce                         // a producer sends its next message (app.go)
	evLoadCheck                       // the load run checks steady-under-load (load.go)
	evAdmit                           // a lane's staged messages are admitted (lanes.go)
	evReadsResume                     // a node's stalled readers go on (stall.go)
)

// event is one entry of the scheduler's queue. A plain struct in a slice
// heap: scheduling does not allocate beyond the slice's growth.
type event struct {
	at   time.Duration
	seq  uint64 // insertion order: ties run first-in first-out, so streams stay FIFO
	kind evKind
	ctl  bool // counts in World.inflight until it runs (bytes other than PING, FIN, dial)

	node int    // target node index
	inc  uint64 // the node incarnation it was meant for
	conn *simConn
	side int // the end of conn it arrives at
	ep   uint32
	data []byte
	dial fsm.DialID
	fn   func()
	// evConsume: the simulated user takes a message of bytes bytes from
	// peer (incarnation pinc) off its queue.
	peer  string
	pinc  uint64
	bytes int // evConsume; evWindow: the bytes read
	wseq  uint64
}

// queue is a binary min-heap of events ordered by (at, seq). The heap holds
// indices into a pool, so sifting moves 4-byte ints, not events (which hold
// pointers and would cost a write barrier per move).
type queue struct {
	pool []event
	free []int32
	heap []int32
	seq  uint64
}

func (q *queue) less(i, j int) bool {
	a, b := &q.pool[q.heap[i]], &q.pool[q.heap[j]]
	return a.at < b.at || (a.at == b.at && a.seq < b.seq)
}

func (q *queue) push(e event) {
	q.seq++
	e.seq = q.seq
	var idx int32
	if n := len(q.free); n > 0 {
		idx = q.free[n-1]
		q.free = q.free[:n-1]
		q.pool[idx] = e
	} else {
		idx = int32(len(q.pool))
		q.pool = append(q.pool, e)
	}
	q.heap = append(q.heap, idx)
	i := len(q.heap) - 1
	for i > 0 {
		p := (i - 1) / 2
		if !q.less(i, p) {
			break
		}
		q.heap[i], q.heap[p] = q.heap[p], q.heap[i]
		i = p
	}
}

func (q *queue) pop() event {
	top := q.heap[0]
	e := q.pool[top]
	q.pool[top] = event{} // drop references for the collector
	q.free = append(q.free, top)
	last := len(q.heap) - 1
	q.heap[0] = q.heap[last]
	q.heap = q.heap[:last]
	i := 0
	for {
		l, r, m := 2*i+1, 2*i+2, i
		if l < last && q.less(l, m) {
			m = l
		}
		if r < last && q.less(r, m) {
			m = r
		}
		if m == i {
			break
		}
		q.heap[i], q.heap[m] = q.heap[m], q.heap[i]
		i = m
	}
	return e
}

func (q *queue) len() int { return len(q.heap) }

// peek returns the time of the next event; the queue must not be empty.
func (q *queue) peek() time.Duration { return q.pool[q.heap[0]].at }
