package sim

import (
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/masterless-go/masterless/fsm"
	"github.com/masterless-go/masterless/link"
	"github.com/masterless-go/masterless/spec"
)

// Phase is the part of a run the world is in.
type Phase uint8

// The phases of a run.
const (
	PhaseSafety  Phase = iota + 1 // faults and random commands
	PhaseHealing                  // no faults, no commands: must reach quiescence
	PhaseDone                     // quiescent
	PhaseLoad                     // a load run (load.go)
)

// String names the phase as failure reports show it.
func (p Phase) String() string {
	return [...]string{"?", "safety", "healing", "done", "load", "?"}[min(int(p), 5)]
}

// Options adjust a World beyond its Knobs.
type Options struct {
	// Chooser replaces the seeded PRNG (rapid drives runs through it).
	Chooser Chooser
	// Trace, if set, receives the run's trace in the NDJSON format of
	// spec/TRACE.md (see trace.go); nothing for runs the model cannot replay
	// (0.4.1 dialers, mutations). The trace is the fsm's own: it needs the
	// build tag masterless_trace (fsm.TraceCompiled), else NewWorld fails.
	Trace io.Writer
	// MaxSteps bounds a run (0: 5 million); a run that needs more is a failure
	// (a livelock, or a timer that never stops firing).
	MaxSteps int
	// Ring is how many recent steps a failure report shows (0: 40).
	Ring int
	// AdapterBug deliberately breaks the simulated adapter, so a test can
	// prove that the delivery invariants catch a transport that repeats or
	// loses bytes. Never set it elsewhere.
	AdapterBug AdapterBug
	// Discovery turns on member discovery in every node (fsm.Config.Discovery).
	// Such runs write no trace: the TLA+ model has no discovery.
	Discovery bool
	// ConnectOnce runs every node with fsm.Config.ConnectOnce (the public
	// WithConnectOnce): a Connect whose dial fails leaves nothing behind.
	// By default, as in the library, the address of every Connect is kept
	// until a node answers there, so a mesh whose first dials fail still
	// converges (the TLA+ model replays such traces: a retry is a dial, the
	// node it reaches is kept as by a Connect).
	ConnectOnce bool

	// unauthAdversary lets adversaries into a world without authentication:
	// the negative control of the adversary invariants. Only tests can set
	// it (export_test.go).
	unauthAdversary bool
}

// AdapterBug selects a deliberately wrong adapter, for negative controls.
type AdapterBug uint8

const (
	// NoAdapterBug is the faithful adapter.
	NoAdapterBug AdapterBug = iota
	// RepeatSegments sends every segment that carries DATA twice.
	RepeatSegments
)

// World is a simulated network of masterless nodes. It is single-goroutine
// and deterministic: the same Knobs and Chooser give the same run, step for
// step.
type World struct {
	k   Knobs
	opt Options
	// scripted: options or scheduled commands the knobs do not carry shaped
	// the run (Result.Scripted).
	scripted bool
	c        Chooser
	now      time.Duration
	q        queue
	phase    Phase

	nodes  []*process
	byAddr map[string]int // listening address (and aliases) -> node index
	conns  []*simConn     // connections with an end still open, by id
	nextG  spec.ConnID

	inflight  int               // control events (non-PING bytes, FINs, resets, dial answers) queued
	hangUntil time.Duration     // a dial that never answers may still be pending in some fsm until then
	cut       [][]time.Duration // cut[i][j]: bytes and dials from i to j are held until then (partition)
	noDial    [][]time.Duration // noDial[i][j]: i cannot dial j until then (asymmetric)

	stats      Stats
	pairConns  map[[2]int]int // connections opened per pair of nodes (by index, smaller first)
	healConns  map[[2]int]int // the same, counted from the start of the healing phase
	pending    []pendingEnd   // ends written to during the current step
	full       []endRef       // ends left over SendBuffer by the current step (sockets.go)
	load       *loadRun       // the load run's state (load.go), nil in other runs
	scratch    []byte         // a load run's next payload
	manyBuf    []byte         // a SendMany's payload (Knobs.SendMany), overwritten after the step
	deliveries spec.DeliveryChecker
	streams    spec.StreamLedger        // no accepted message vanishes
	lost       spec.LostLedger          // no message reported lost while the pair is kept (lost.go)
	seen       []peerSeen               // scratch of noteKeepsAndSessions
	switched   map[[2]int]time.Duration // a KeptPairs run's last keeper switch of each pair (lost.go)
	snap       spec.Snapshot
	changed    []int // nodes whose views were refreshed since the last passing safety check
	healStart  time.Duration
	lastSettle time.Duration

	adv  []*adversary // adversary processes (adversary.go)
	advC Chooser      // their own generator: the honest nodes' draws stay as without them
	rec  recorder     // frames of honest connections, for them to replay

	steps  int
	ring   []record
	ringAt int
	trace  *tracer
	err    error
	errAt  string
}

// NewWorld builds a world of k.Nodes nodes, all listening, none connected.
func NewWorld(k Knobs, opt Options) (*World, error) {
	if k.Nodes < 1 {
		return nil, fmt.Errorf("sim: need at least one node, got %d", k.Nodes)
	}
	if err := checkMutation(k.Mutation); err != nil {
		return nil, err
	}
	if err := checkAdversaryKnobs(k, opt); err != nil {
		return nil, err
	}
	// A run is replayable from its knobs alone unless its options or a
	// test's scheduled commands (At) shaped it (Result.Scripted).
	scripted := opt.Chooser != nil || opt.Discovery || opt.ConnectOnce || opt.AdapterBug != 0
	if opt.Chooser == nil {
		opt.Chooser = NewPRNG(k.Seed)
	}
	if opt.MaxSteps == 0 {
		opt.MaxSteps = 5_000_000
	}
	if opt.Ring == 0 {
		opt.Ring = 40
	}
	w := &World{k: k, opt: opt, c: opt.Chooser, phase: PhaseSafety, byAddr: map[string]int{}, scripted: scripted}
	w.ring = make([]record, opt.Ring)
	if opt.Trace != nil && !fsm.TraceCompiled {
		return nil, errors.New("sim: a trace needs the fsm's trace points: build with -tags masterless_trace")
	}
	if opt.Trace != nil && traceable(k) && !opt.Discovery { // see trace.go: other runs write no trace
		w.trace = newTracer(opt.Trace, k.Nodes)
	}
	w.cut = make([][]time.Duration, k.Nodes)
	w.noDial = make([][]time.Duration, k.Nodes)
	for i := 0; i < k.Nodes; i++ {
		w.cut[i] = make([]time.Duration, k.Nodes)
		w.noDial[i] = make([]time.Duration, k.Nodes)
		n := &process{idx: i, id: fmt.Sprintf("n%d", i+1), conns: map[fsm.ConnID]*simConn{}, sendSeq: map[string]uint64{},
			connectAddrs: map[string]bool{}, keeps: map[string]bool{}}
		n.addr = "tcp://" + n.id + ":7000"
		w.byAddr[n.addr] = i
		for k := 1; k <= 3; k++ {
			w.byAddr[aliasAddr(n.id, k)] = i // more addresses of the same node: self-dials, parallel dials
		}
		w.nodes = append(w.nodes, n)
	}
	for _, n := range w.nodes {
		n.legacy = chance(w.c, k.LegacyPM) // drawn only when the knob is set: other runs keep their draws
	}
	w.watchLost()
	w.snap.Nodes = make([]spec.NodeView, len(w.nodes))
	w.snap.Unchanged = make([]bool, len(w.nodes)) // none checked yet
	for i := range w.nodes {
		w.changed = append(w.changed, i)
	}
	w.refreshAll()
	for _, n := range w.nodes {
		if err := w.start(n, 1); err != nil {
			return nil, err
		}
	}
	w.startAdversaries()
	return w, nil
}

// start runs a new fsm for n with incarnation inc and tells it its address.
func (w *World) start(n *process, inc uint64) error {
	cfg := w.k.Config()
	cfg.ID, cfg.Incarnation, cfg.LegacyDial = n.id, inc, n.legacy
	cfg.Discovery = w.opt.Discovery
	cfg.ConnectOnce = w.opt.ConnectOnce
	cfg.Seed = uint64(w.c.Intn(1<<31))<<32 | uint64(w.c.Intn(1<<31))
	f, err := fsm.New(cfg)
	if err != nil {
		return err
	}
	n.fsm, n.inc, n.alive = f, inc, true
	n.stallFrom, n.stallUntil = 0, 0 // a new process: its readers run
	n.link = link.New(f, transport{w, n})
	n.link.SetObserver(func(ev fsm.Event, err error, acts []fsm.Action) { w.observe(n, ev, err, acts) })
	n.app = nil
	n.lanes, n.revoked = make(map[string]*simLane), nil
	n.tickAt, n.tickSet = 0, false
	if w.trace != nil {
		f.SetTracer(func(r *fsm.TraceRecord) { w.trace.record(w, n, r) })
		if inc > 1 {
			w.trace.restart(w, n)
		}
	}
	w.step(n, fsm.Listening{Info: n.addr})
	return nil
}

// Now returns the virtual time.
func (w *World) Now() time.Duration { return w.now }

// Knobs returns the run's knobs.
func (w *World) Knobs() Knobs { return w.k }

// Steps returns how many events were fed to fsm nodes so far.
func (w *World) Steps() int { return w.steps }

// Err returns the first invariant violation or failure, if any.
func (w *World) Err() error { return w.err }

// schedule queues an event at time at.
func (w *World) schedule(e event) {
	if e.ctl {
		w.inflight++
	}
	w.q.push(e)
}

// fail records the first failure; the run stops at the end of the step.
func (w *World) fail(err error) {
	if w.err == nil && err != nil {
		w.err = err
		w.errAt = fmt.Sprintf("step %d at %v (%s phase)", w.steps, w.now, w.phase)
	}
}

// RunUntil processes events until virtual time t (inclusive), a failure, or
// the queue runs dry. It returns the failure, if any.
func (w *World) RunUntil(t time.Duration) error {
	for w.err == nil && w.q.len() > 0 && w.q.peek() <= t {
		w.next()
	}
	if w.err == nil && w.now < t {
		w.now = t
	}
	return w.err
}

// RunFor runs for d of virtual time.
func (w *World) RunFor(d time.Duration) error { return w.RunUntil(w.now + d) }

// next pops and runs one event.
func (w *World) next() {
	e := w.q.pop()
	if e.ctl {
		w.inflight--
	}
	if e.at > w.now {
		w.now = e.at
	}
	switch e.kind {
	case evDeliver:
		w.deliver(&e)
	case evFIN, evReset:
		w.closeArrives(&e)
	case evDialResult:
		w.dialArrives(&e)
	case evDialed:
		w.dialedArrives(&e)
	case evTick:
		n := w.nodes[e.node]
		if n.alive && n.inc == e.inc && n.tickSet && n.tickAt == e.at {
			n.tickSet = false
			w.step(n, fsm.Tick{Lag: w.tickLag(n)})
		}
	case evCommand:
		w.randomCommand()
	case evFault:
		w.randomFault()
	case evRestart:
		if n := w.nodes[e.node]; !n.alive && n.inc == e.inc {
			w.restart(n)
		}
	case evHeal:
		w.heal()
	case evFunc:
		e.fn()
	case evConsume:
		if n := w.nodes[e.node]; n.alive && n.inc == e.inc {
			w.step(n, fsm.Consumed{Peer: e.peer, Incarnation: e.pinc, Messages: 1, Bytes: e.bytes})
		}
	case evWindow:
		w.windowOpens(&e)
	case evWriteDeadline:
		w.writeDeadline(&e)
	case evLinger:
		w.lingerEnds(&e)
	case evWake, evApp, evProduce:
		if n := w.nodes[e.node]; n.alive && n.inc == e.inc {
			w.wake(n, e.kind, e.peer)
		}
	case evLoadCheck:
		w.loadTick()
	case evReadsResume:
		w.readsResume(&e)
	case evAdmit:
		if n := w.nodes[e.node]; n.alive && n.inc == e.inc {
			w.admitLane(n, e.peer, true)
		}
	}
	if w.steps > w.opt.MaxSteps {
		w.fail(fmt.Errorf("liveness: more than %d steps (a livelock, or a timer that keeps firing); virtual time %v", w.opt.MaxSteps, w.now))
	}
}

// Run plays a whole random run: the safety phase with faults and commands,
// then the healing phase, which must end quiescent within k.HealWithin.
func (w *World) Run() error {
	if w.k.KeptPairs {
		w.keepEveryPair()
	}
	if w.k.CommandEvery > 0 {
		w.schedule(event{at: w.now + w.interval(w.k.CommandEvery), kind: evCommand})
	}
	if w.k.FaultEvery > 0 && w.k.Faults != 0 {
		w.schedule(event{at: w.now + w.interval(w.k.FaultEvery), kind: evFault})
	}
	w.schedule(event{at: w.now + w.k.Safety, kind: evHeal})
	for w.err == nil && w.phase != PhaseDone {
		if w.phase == PhaseHealing && w.now > w.healStart+w.k.HealWithin {
			w.fail(fmt.Errorf("quiescence: not reached within %v of healing: %w", w.k.HealWithin, w.unsettled()))
			break
		}
		if w.q.len() == 0 {
			if w.phase == PhaseHealing && w.now < w.hangUntil {
				// Only the bound on a dial that never answers is left, and
				// no fsm has a deadline (its Tick would be queued): the
				// dialer crashed since. Let the bound pass.
				w.now = w.hangUntil
			}
			if w.phase == PhaseHealing && w.settled() {
				break
			}
			w.fail(fmt.Errorf("sim: nothing left to run in phase %s, yet not quiescent: %w", w.phase, w.unsettled()))
			break
		}
		w.next()
		if w.phase == PhaseHealing && w.now >= w.lastSettle+10*time.Millisecond && w.settled() {
			w.phase = PhaseDone
		}
	}
	if ex := w.lost.Exemptions(); w.k.KeptPairs && len(ex) > 0 {
		w.fail(fmt.Errorf("sim: KeptPairs run, yet the no-lost-while-kept check exempted pairs: %v", ex))
	}
	return w.err
}

// interval draws a wait with mean m.
func (w *World) interval(m time.Duration) time.Duration {
	return between(w.c, 1, 2*m)
}

// heal ends the safety phase: no more faults or commands, partitions and
// dial blocks lifted, crashed nodes restarted.
func (w *World) heal() {
	w.phase, w.healStart = PhaseHealing, w.now
	for i := range w.cut {
		for j := range w.cut[i] {
			w.cut[i][j] = min(w.cut[i][j], w.now)
			w.noDial[i][j] = 0
		}
	}
	for _, n := range w.nodes {
		if !n.alive {
			w.restart(n)
		}
	}
}

// settled reports whether the world is quiescent: nothing but heartbeats in
// flight, no dial pending, no connection that is silently dead, half-closed
// or handshaking, and spec.CheckQuiescent holds.
func (w *World) settled() bool {
	w.lastSettle = w.now
	return w.unsettled() == nil
}

// unsettled says why the world is not quiescent, or nil if it is.
func (w *World) unsettled() error {
	if w.inflight > 0 {
		return fmt.Errorf("%d control messages (frames other than PING, FINs, dial answers) still in flight", w.inflight)
	}
	if w.now < w.hangUntil {
		return fmt.Errorf("a dial that never answers may be pending until %v", w.hangUntil)
	}
	for _, c := range w.conns {
		if c.silent && (c.ends[0].open || c.ends[1].open) {
			return fmt.Errorf("g%d is silently dead but still open (%s)", c.id, c)
		}
		for s := range c.ends {
			if e := &c.ends[s]; !c.reset && (e.pushed < e.ctlUpto || (e.open && len(e.rq) > 0)) {
				return fmt.Errorf("g%d: bytes other than PINGs wait in a socket buffer at end %d", c.id, s)
			}
		}
	}
	w.refreshAll()
	if err := spec.CheckQuiescent(w.snapshot()); err != nil {
		return err
	}
	return w.streams.CheckNoneVanished(func(src string, inc uint64) bool {
		for _, n := range w.nodes {
			if n.id == src {
				return n.alive && n.inc == inc
			}
		}
		return false
	})
}

// Quiescent runs spec.CheckQuiescent on the current state, for scenarios.
func (w *World) Quiescent() error { return w.unsettled() }

// Phase returns the phase the world is in.
func (w *World) Phase() Phase { return w.phase }
