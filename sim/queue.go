package sim

import (
	"time"

	"github.com/masterless-go/masterless/fsm"
)

// evKind is what a scheduled event does when its time comes.
type evKind uint8

const (
	evDeliver    evKind = iota + 1 // bytes arrive at one end of a connection
	evFIN                          // the other end closed: ConnClosed after the bytes before it
	evReset                        // the connection was reset: ConnClosed at once
	evDialResult                   // a dial's SYN reached the listener (or not)
	evDialed                       // the SYN-ACK reached the dialer
	evTick                         // a node's deadline
	evCommand                      // the random user issues a command
	evFault                        // the next injected fault
	evRestart                      // a crashed node comes back
	evHeal                         // the healing phase starts
	evFunc                         // a scenario's scripted action
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
	addr string
	fn   func()
}

// queue is a binary min-heap of events ordered by (at, seq).
type queue struct {
	ev  []event
	seq uint64
}

func (q *queue) less(i, j int) bool {
	a, b := &q.ev[i], &q.ev[j]
	return a.at < b.at || (a.at == b.at && a.seq < b.seq)
}

func (q *queue) push(e event) {
	q.seq++
	e.seq = q.seq
	q.ev = append(q.ev, e)
	i := len(q.ev) - 1
	for i > 0 {
		p := (i - 1) / 2
		if !q.less(i, p) {
			break
		}
		q.ev[i], q.ev[p] = q.ev[p], q.ev[i]
		i = p
	}
}

func (q *queue) pop() event {
	top := q.ev[0]
	last := len(q.ev) - 1
	q.ev[0] = q.ev[last]
	q.ev[last] = event{}
	q.ev = q.ev[:last]
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
		q.ev[i], q.ev[m] = q.ev[m], q.ev[i]
		i = m
	}
	return top
}

func (q *queue) len() int { return len(q.ev) }
