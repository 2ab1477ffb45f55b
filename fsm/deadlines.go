package fsm

import (
	"cmp"
	"slices"
	"time"
)

// Deadlines: where the timers live, so that a Tick costs what is due, not
// what exists.
//
// Every deadline belongs to an owner: a connection (handshake timeout,
// heartbeat, peer timeout), a dial not yet connected (handshake timeout), a
// Connect request (its deadline) or a peer (reconnect, reconnect grace,
// linger). Each kind of owner has a binary min-heap of (deadline, owner)
// entries, and each owner a timer recording the deadline of its entry.
//
// Arming is lazy. An owner gets a new entry only when its deadline moves
// earlier than the one it has; a later one needs none, because every timer
// function is harmless when early: it runs at the earlier entry, finds
// nothing due and arms again (a session's deadline moves later with every
// frame received, which therefore costs nothing here). Entries are never
// removed in place: an entry whose owner has an earlier one, or has left its
// table (a closed connection, a forgotten peer), is skipped when popped.
// Every entry is popped by its deadline, and deadlines lie at most the
// longest timeout ahead, so the garbage is bounded by the arms made within
// that time.
//
// A Tick pops only the entries due and runs their owners kind by kind
// (connections, dials, requests, peers), each kind sorted by id. That is the
// order in which the full scan this replaced ran them, so the same inputs
// give the same actions in the same order; the order among equal deadlines
// inside a heap never shows. Arms that running one kind makes for a later
// kind (a connection that closes schedules its peer's redial, possibly for
// now) are seen when that kind's turn comes; no kind arms an earlier kind for
// now. The cost of a Tick is O(k log n) for k entries due among n, and none
// when nothing is due; with no entry due it allocates nothing.
//
// Why not a single heap ordered by (deadline, kind, id): it would run what is
// due in deadline order, so a Tick that comes late (the adapter's timer, or a
// transcript's "advance 2s") would reorder actions against the full scan. Why
// not fixed slots per kind (a timer wheel): deadlines are arbitrary
// durations, and rounding them to slots would make some late.

// timer is an owner's handle on its heap: the deadline of its live entry.
type timer struct {
	at  time.Duration
	set bool
}

// lower records deadline t and reports whether it needs a new entry: when
// the owner has none, or only a later one.
func (tm *timer) lower(t time.Duration) bool {
	if tm.set && tm.at <= t {
		return false
	}
	tm.at, tm.set = t, true
	return true
}

// take reports whether an entry at t is the owner's live one; if so it is
// taken (the owner has no entry until it arms again).
func (tm *timer) take(t time.Duration) bool {
	if !tm.set || tm.at != t {
		return false
	}
	tm.set = false
	return true
}

type entry[T any] struct {
	at time.Duration
	v  T
}

// deadlineHeap is a binary min-heap of entries by deadline. It is written out
// rather than built on container/heap, whose interface boxing allocates.
type deadlineHeap[T any] struct {
	es []entry[T]
	// pops counts the entries taken off, live or stale: the work Ticks did
	// (tests check it does not grow with the number of owners).
	pops uint64
}

func (h *deadlineHeap[T]) push(at time.Duration, v T) {
	h.es = append(h.es, entry[T]{at, v})
	i := len(h.es) - 1
	for i > 0 {
		parent := (i - 1) / 2
		if h.es[parent].at <= at {
			break
		}
		h.es[i] = h.es[parent]
		i = parent
	}
	h.es[i] = entry[T]{at, v}
}

// top returns the earliest entry; ok is false when the heap is empty.
func (h *deadlineHeap[T]) top() (e entry[T], ok bool) {
	if len(h.es) == 0 {
		return e, false
	}
	return h.es[0], true
}

func (h *deadlineHeap[T]) pop() entry[T] {
	h.pops++
	top := h.es[0]
	last := len(h.es) - 1
	x := h.es[last]
	var zero entry[T]
	h.es[last] = zero // let the owner be collected
	h.es = h.es[:last]
	if last > 0 {
		i := 0
		for {
			child := 2*i + 1
			if child >= last {
				break
			}
			if r := child + 1; r < last && h.es[r].at < h.es[child].at {
				child = r
			}
			if x.at <= h.es[child].at {
				break
			}
			h.es[i] = h.es[child]
			i = child
		}
		h.es[i] = x
	}
	return top
}

func (h *deadlineHeap[T]) reset() {
	clear(h.es)
	h.es = h.es[:0]
}

// drain pops every entry due at now and appends the live ones' owners to
// out; live reports whether an owner is still in its table and wants its
// timer. Each owner appears once: taking its entry unsets its timer.
func drain[T any](h *deadlineHeap[T], now time.Duration, tm func(T) *timer, live func(T) bool, out []T) []T {
	for len(h.es) > 0 && h.es[0].at <= now {
		e := h.pop()
		if live(e.v) && tm(e.v).take(e.at) {
			out = append(out, e.v)
		}
	}
	return out
}

// earliest drops the stale entries at the top and returns the deadline of
// the first live one, or never.
func earliest[T any](h *deadlineHeap[T], tm func(T) *timer, live func(T) bool) time.Duration {
	for {
		e, ok := h.top()
		if !ok {
			return never
		}
		if t := tm(e.v); live(e.v) && t.set && t.at == e.at {
			return e.at
		}
		h.pop()
	}
}

// deadlines holds the node's timers, one heap per kind of owner, and the
// scratch lists a Tick collects the due owners in (kept to reuse their
// memory: a Tick allocates nothing once they have grown).
type deadlines struct {
	conns deadlineHeap[*conn]
	dials deadlineHeap[*dial]
	reqs  deadlineHeap[*request]
	peers deadlineHeap[*peer]

	dueConns []*conn
	dueDials []*dial
	dueReqs  []*request
	duePeers []*peer
}

// Each owner's timer, and whether it is still in its table and wants one (a
// dial that has its connection leaves the deadline to the connection).

func connTimer(c *conn) *timer   { return &c.timer }
func dialTimer(d *dial) *timer   { return &d.timer }
func reqTimer(r *request) *timer { return &r.timer }
func peerTimer(p *peer) *timer   { return &p.timer }

func (n *Node) connLive(c *conn) bool   { return n.conns[c.id] == c }
func (n *Node) dialLive(d *dial) bool   { return n.dials[d.id] == d && d.conn == nil }
func (n *Node) reqLive(r *request) bool { return n.reqs[r.id] == r }
func (n *Node) peerLive(p *peer) bool   { return n.peers[p.id] == p }

// lowerNext keeps NextDeadline no later than t.
func (n *Node) lowerNext(t time.Duration) {
	if t < n.next {
		n.next = t
	}
}

// arm makes owner v, whose timer is tm, due in heap h for a Tick at t. A
// new heap entry is pushed only when t is earlier than the owner's live one.
func arm[T any](n *Node, h *deadlineHeap[T], tm *timer, v T, t time.Duration) {
	if tm.lower(t) {
		h.push(t, v)
	}
	n.lowerNext(t)
}

// armConn makes connection c due for a Tick at t (its handshake timeout, or
// its session's heartbeat and peer timeout: sessionTimers).
func (n *Node) armConn(c *conn, t time.Duration) { arm(n, &n.timers.conns, &c.timer, c, t) }

// armDial makes dial d due for a Tick at t (its handshake timeout while it
// has no connection).
func (n *Node) armDial(d *dial, t time.Duration) { arm(n, &n.timers.dials, &d.timer, d, t) }

// armRequest makes Connect request r due for a Tick at t (its deadline).
func (n *Node) armRequest(r *request, t time.Duration) { arm(n, &n.timers.reqs, &r.timer, r, t) }

// armPeer makes peer p due for a Tick at t (peerTimers: its reconnect, its
// reconnect grace, forgetting it).
func (n *Node) armPeer(p *peer, t time.Duration) { arm(n, &n.timers.peers, &p.timer, p, t) }

// due pops the owners of one kind due now, sorted by id (the order in which
// Tick runs them), into buf.
func due[T any, K cmp.Ordered](n *Node, h *deadlineHeap[T], timerOf func(T) *timer, live func(T) bool, id func(T) K, buf []T) []T {
	s := drain(h, n.now, timerOf, live, buf[:0])
	slices.SortFunc(s, func(a, b T) int { return cmp.Compare(id(a), id(b)) })
	return s
}

func (n *Node) dueConns() []*conn {
	n.timers.dueConns = due(n, &n.timers.conns, connTimer, n.connLive, func(c *conn) ConnID { return c.id }, n.timers.dueConns)
	return n.timers.dueConns
}

func (n *Node) dueDials() []*dial {
	n.timers.dueDials = due(n, &n.timers.dials, dialTimer, n.dialLive, func(d *dial) DialID { return d.id }, n.timers.dueDials)
	return n.timers.dueDials
}

func (n *Node) dueRequests() []*request {
	n.timers.dueReqs = due(n, &n.timers.reqs, reqTimer, n.reqLive, func(r *request) ReqID { return r.id }, n.timers.dueReqs)
	return n.timers.dueReqs
}

func (n *Node) duePeers() []*peer {
	n.timers.duePeers = due(n, &n.timers.peers, peerTimer, n.peerLive, func(p *peer) string { return p.id }, n.timers.duePeers)
	return n.timers.duePeers
}

// settleTimers ends a Tick: it lets go of the owners just run and sets the
// next deadline to the earliest live entry.
func (n *Node) settleTimers() {
	t := &n.timers
	clear(t.dueConns)
	clear(t.dueDials)
	clear(t.dueReqs)
	clear(t.duePeers)
	n.next = min(
		earliest(&t.conns, connTimer, n.connLive),
		earliest(&t.dials, dialTimer, n.dialLive),
		earliest(&t.reqs, reqTimer, n.reqLive),
		earliest(&t.peers, peerTimer, n.peerLive),
		n.discoveryDeadline(),
		n.seedDeadline(),
	)
}

// resetTimers drops every timer (Shutdown).
func (n *Node) resetTimers() {
	t := &n.timers
	t.conns.reset()
	t.dials.reset()
	t.reqs.reset()
	t.peers.reset()
	n.disc.gossipAt = 0
	n.next = never
}
