package sim

import (
	"fmt"
	"time"

	"github.com/masterless-go/masterless/fsm"
	"github.com/masterless-go/masterless/spec"
)

// The load run (Knobs.Workload set): the full mesh is formed, then every
// node's producers send to every other node for LoadFor while the
// applications answer what they receive (app.go), over bounded socket
// buffers and the adapter's blocking semantics (sockets.go), without
// faults. The invariant steady-under-load (spec.LoadChecker) is checked
// throughout: no session ends, and no pair's delivery stalls for longer
// than Knobs.StallBound. Then the producers stop, every accepted message
// must be handed to its application, and, for the echo workload, no answer
// sent from a callback may have been refused (fsm/stream.go, "Room for
// answers"). The safety invariants and the delivery checker run after every
// step, as in every run.

// loadRun is a load run's state.
type loadRun struct {
	chk          spec.LoadChecker
	sessions     []map[fsm.ConnID]string // per node: its session connections once the mesh is up
	replies      map[msgKey]bool         // answers not yet delivered
	stopped      bool                    // the producers stopped
	refused      int                     // answers a callback's Send had refused
	firstRefusal error
	// The longest a producer's message waited for room before the fsm
	// accepted it (SendContext's wait: flow control, not a stall), and where.
	maxProducerWait time.Duration
	producerWhere   string
}

// StallBound is the longest a pair may go without a message handed to its
// application in a load run, from the knobs: two heartbeats (an ACK that
// was not worth sending at once goes with the next one), the round trips
// for bytes that wait behind a window's worth of data in a socket buffer,
// and twice the time for an application to drain what its peers may have
// queued for it (a window from each, one callback of up to 2 AppDelay each,
// SlowApp times that on the slow node).
func (k Knobs) StallBound() time.Duration {
	hb := k.Heartbeat
	if hb == 0 {
		hb = fsm.DefaultHeartbeatInterval
	}
	window := k.MaxWindow // the most a window grows to (fsm/window.go)
	switch {
	case window != 0:
	case k.Window != 0:
		window = k.Window
	default:
		window = fsm.DefaultMaxWindow
	}
	oneWay := k.Latency + k.Jitter + 1
	rtts := 8 + 2*(window+k.Payload)/max(k.SockBuf, 1)
	drain := time.Duration((k.Nodes-1)*(window/(k.Payload+32)+2)) * 2 * k.AppDelay * time.Duration(max(k.SlowApp, 1))
	return 2*hb + time.Duration(rtts)*2*oneWay + 2*drain
}

// DrawLoadKnobs derives the knobs of a load run from its seed: 2 to 6
// nodes, an echo or fan-out workload, fault-free, with bounded socket
// buffers, half of them with small adapter bounds, half with fast
// heartbeats, half with leases and half with windows that grow. Small payloads get a small window so that a run stays within
// a bounded number of steps (the echo storms over TCP run the defaults).
func DrawLoadKnobs(seed uint64) Knobs {
	c := NewPRNG(seed ^ 0x6c6f6164) // a stream of its own
	k := Knobs{
		Seed:       seed,
		Nodes:      between(c, 2, 6),
		Latency:    between(c, 50*time.Microsecond, 5*time.Millisecond),
		HealWithin: 2 * time.Minute,
		Workload:   Workload(between(c, int(WorkloadEcho), int(workloadEnd)-1)),
		LoadFor:    between(c, 500*time.Millisecond, 2*time.Second),
	}
	k.Jitter = between(c, 0, k.Latency)
	switch c.Intn(3) {
	case 0:
		k.Payload = 32
	case 1:
		k.Payload = 1 << 10
	default:
		k.Payload = 64 << 10
	}
	k.Window = min(max(256*(k.Payload+32), 16<<10), fsm.DefaultWindow)
	if c.Intn(2) == 0 && k.Payload > 32 {
		k.Window = fsm.DefaultWindow // 16,384 messages of 32 bytes per window would take minutes to drain
	}
	k.SockBuf = between(c, max(16<<10, k.Window/8), 4<<20)
	// The callbacks' pace bounds the work of a run: about 20,000 callbacks
	// and 128 MiB of payload per node at most.
	lo := max(20*time.Microsecond, k.LoadFor/20000, time.Duration(int64(k.LoadFor)*int64(k.Payload)/(128<<20)))
	k.AppDelay = between(c, lo, max(200*time.Microsecond, 2*lo))
	k.ProduceGap = between(c, time.Microsecond, k.AppDelay)
	if c.Intn(3) == 0 { // a third of the seeds have one user slower than the others
		k.SlowApp = between(c, 2, 10)
	}
	if c.Intn(2) == 0 { // half the seeds run small adapter bounds, which v2 sessions must not notice
		k.SendBuffer = between(c, 64<<10, 4<<20)
		k.DispatchQueue = between(c, 64, 4096)
		k.DispatchBytes = between(c, 256<<10, 8<<20)
	}
	if c.Intn(2) == 0 { // half the seeds run fast heartbeats
		k.Heartbeat = between(c, max(20*time.Millisecond, 4*(k.Latency+k.Jitter)), time.Second)
		k.PeerTimeout = between(c, 3*k.Heartbeat, 5*k.Heartbeat)
	}
	// Half the seeds stage producers' messages and answers under leases
	// (fsm/lease.go), as netio does; from a stream of its own, so that the
	// knobs above are what they were before it.
	if r := NewPRNG(seed ^ 0x6c6f61646c); r.Intn(2) == 0 {
		k.Leases = true
	}
	// Half the seeds let the window grow to four times its start
	// (fsm/window.go), from a stream of its own as the leases', with users
	// eight times as fast for an eighth of the time (a window grows only
	// when its user takes a whole one in under 2 ms: 256 callbacks of
	// 8 µs at most), so that the work stays what it was.
	if r := NewPRNG(seed ^ 0x77696e646f77); r.Intn(2) == 0 {
		k.MaxWindow = 4 * k.Window
		k.AppDelay = max(k.AppDelay/8, time.Microsecond)
		k.ProduceGap = min(k.ProduceGap, k.AppDelay)
		k.LoadFor = max(k.LoadFor/8, 100*time.Millisecond)
	}
	return k
}

// RunLoad plays a load run (see the top of the file).
func (w *World) RunLoad() error {
	w.load = &loadRun{chk: spec.LoadChecker{Bound: w.k.StallBound()}, replies: map[msgKey]bool{}}
	w.phase = PhaseLoad
	for i := range w.nodes {
		for j := i + 1; j < len(w.nodes); j++ {
			w.Connect(i, w.nodes[j].addr)
		}
	}
	formBy := w.now + 30*time.Second
	for w.err == nil && !w.meshUp() {
		if w.now > formBy {
			w.fail(fmt.Errorf("load: the full mesh did not form within %v", formBy))
			return w.err
		}
		w.RunFor(time.Millisecond)
	}
	for _, n := range w.nodes {
		s := map[fsm.ConnID]string{}
		for _, o := range w.nodes {
			if l, ok := n.fsm.SessionConn(o.id); ok && o != n {
				s[l] = o.id
			}
		}
		w.load.sessions = append(w.load.sessions, s)
	}
	w.noteFault("load: the mesh is up; %s load for %v (stall bound %v)", w.k.Workload, w.k.LoadFor, w.load.chk.Bound)
	for _, n := range w.nodes {
		a := w.app(n)
		for _, o := range w.nodes {
			if o != n {
				a.producers[o.id] = &producer{}
				w.schedule(event{at: w.now, kind: evProduce, node: n.idx, inc: n.inc, peer: o.id})
			}
		}
	}
	w.schedule(event{at: w.now + w.load.chk.Bound/4, kind: evLoadCheck})
	w.RunFor(w.k.LoadFor)
	w.load.stopped = true
	w.noteFault("load: the producers stop; %d messages outstanding", w.load.chk.Outstanding())
	// Everything accepted must now be handed over; a stall is caught by the
	// periodic check, a livelock by MaxSteps.
	for w.err == nil && w.load.chk.Outstanding() > 0 {
		w.RunFor(w.load.chk.Bound / 4)
	}
	w.loadCheck()
	if w.err == nil {
		w.fail(w.unmoved())
	}
	if w.err == nil && w.load.firstRefusal != nil {
		w.fail(fmt.Errorf("load: %d answers sent from a callback were refused, though the queue keeps room for them (fsm/stream.go); the first: %w", w.load.refused, w.load.firstRefusal))
	}
	w.phase = PhaseDone
	return w.err
}

// meshUp reports whether every node has a session with every other.
func (w *World) meshUp() bool {
	for _, n := range w.nodes {
		if len(n.fsm.Sessions()) != len(w.nodes)-1 {
			return false
		}
	}
	return true
}

// unmoved reports a session that is no longer the one the load started on.
func (w *World) unmoved() error {
	for i, n := range w.nodes {
		for l, peer := range w.load.sessions[i] {
			if now, ok := n.fsm.SessionConn(peer); !ok || now != l {
				return fmt.Errorf("steady-under-load: %s's session with %s is no longer g%d", n.id, peer, globalOf(l))
			}
		}
	}
	return nil
}

// loadCheck checks steady-under-load now.
func (w *World) loadCheck() {
	if w.load == nil || w.err != nil {
		return
	}
	w.fail(spec.CheckLoadProgress(&w.load.chk, w.now))
}

// loadTick checks steady-under-load, and again a quarter bound later while
// the run lasts.
func (w *World) loadTick() {
	w.loadCheck()
	if w.load.chk.Outstanding() > 0 || !w.load.stopped {
		w.schedule(event{at: w.now + w.load.chk.Bound/4, kind: evLoadCheck})
	}
}

// handed: n's callback is called with m.
func (w *World) handed(n *process, m *appMsg) {
	if w.load != nil {
		w.load.chk.Handed(w.now, m.peer, n.id)
	}
}

// sessionEvents reports to the load checker the session ends a step shows;
// one fails the run at once.
func (w *World) sessionEvents(n *process, ev fsm.Event, acts []fsm.Action) {
	s := w.load.sessions[n.idx]
	ended := false
	if cc, ok := ev.(fsm.ConnClosed); ok {
		if peer, ok := s[cc.Conn]; ok {
			w.load.chk.SessionEnded(w.now, n.id, peer, fmt.Errorf("g%d closed under it: %w", globalOf(cc.Conn), cc.Err))
			ended = true
		}
	}
	for i := range acts {
		switch a := &acts[i]; a.Kind {
		case fsm.ActClose:
			if peer, ok := s[a.Conn]; ok {
				w.load.chk.SessionEnded(w.now, n.id, peer, fmt.Errorf("it closed g%d: %w", globalOf(a.Conn), a.Err))
				ended = true
			}
		case fsm.ActDisconnected:
			w.load.chk.SessionEnded(w.now, n.id, a.Peer, fmt.Errorf("Disconnected: %v", a.Err))
			ended = true
		}
	}
	if ended {
		w.loadCheck()
	}
}

func (w *World) heartbeat() time.Duration {
	if w.k.Heartbeat > 0 {
		return w.k.Heartbeat
	}
	return fsm.DefaultHeartbeatInterval
}
