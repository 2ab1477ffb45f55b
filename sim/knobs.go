package sim

import (
	"flag"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/masterless-go/masterless/fsm"
)

// Fault is one kind of injected failure; Knobs.Faults is a set of them.
type Fault uint16

// The fault kinds. Each seed enables a random subset (swarm testing: a run
// with few kinds of failure reaches deeper into each than a run with all).
const (
	FaultReset       Fault = 1 << iota // a connection is reset: both ends get ConnClosed, bytes in flight are lost
	FaultSilence                       // a connection goes silent without FIN, both ways, forever
	FaultDialFail                      // dials fail (refused) with probability DialFailPM
	FaultDialTimeout                   // dials never answer with probability DialTimeoutPM
	FaultAsym                          // one node cannot dial another for a while (the other way works)
	FaultPartition                     // the nodes split in two groups for a while: bytes held, dials unanswered
	FaultCrash                         // a node crashes (peers see a reset, or silence) and restarts with a new incarnation
	faultEnd
)

var faultNames = []string{"reset", "silence", "dialfail", "dialtimeout", "asym", "partition", "crash"}

// String lists the fault kinds in f, comma-separated, as -faults reads them.
func (f Fault) String() string { return flagNames(uint(f), faultNames) }

// ParseFaults parses a comma-separated list of fault names ("none" or "" for
// no faults, "all" for all).
func ParseFaults(s string) (Fault, error) {
	f, err := parseFlags(s, "fault", faultNames)
	return Fault(f), err
}

// flagNames lists the names of the bits set in bits (bit i is names[i]),
// comma-separated; "none" for none.
func flagNames(bits uint, names []string) string {
	var set []string
	for i, name := range names {
		if bits&(1<<i) != 0 {
			set = append(set, name)
		}
	}
	if len(set) == 0 {
		return "none"
	}
	return strings.Join(set, ",")
}

// parseFlags parses a comma-separated list of names into bits (bit i is
// names[i]): "none" or "" for none, "all" for all; what names the kind in
// the error.
func parseFlags(s, what string, names []string) (uint, error) {
	var bits uint
	for _, name := range strings.Split(s, ",") {
		name = strings.TrimSpace(name)
		switch name {
		case "", "none":
			continue
		case "all":
			bits |= 1<<len(names) - 1
			continue
		}
		i := slices.Index(names, name)
		if i < 0 {
			return 0, fmt.Errorf("sim: unknown %s %q (known: %s)", what, name, strings.Join(names, ","))
		}
		bits |= 1 << i
	}
	return bits, nil
}

// Knobs are every parameter of a run. [DrawKnobs] derives them all from the
// seed; any can be overridden (flags of the same names), and all are printed
// with a failure so the run can be replayed exactly.
type Knobs struct {
	Seed  uint64
	Nodes int // 2 or more

	Latency time.Duration // minimum one-way delay
	Jitter  time.Duration // extra one-way delay, uniform in [0, Jitter]

	Safety     time.Duration // length of the safety phase (faults and commands)
	HealWithin time.Duration // the healing phase must reach quiescence within this

	CommandEvery time.Duration // mean interval between user commands; 0: none
	FaultEvery   time.Duration // mean interval between injected faults; 0: none
	Faults       Fault         // the fault kinds enabled

	// LegacyPM is the per-mille of nodes that dial with masterless 0.4.1's
	// protocol (fsm.Config.LegacyDial); the others and every listener speak
	// v1 and accept both. 0 in DrawKnobs until the 0.4.1 rules settle: set
	// it with -legacy to sweep mixed clusters.
	LegacyPM int

	DialFailPM    int // per-mille of dials refused (with FaultDialFail)
	DialTimeoutPM int // per-mille of dials never answered (with FaultDialTimeout)

	// The fsm's timing (zero: the fsm's defaults). Short timeouts against a
	// slow network make timers race the handshake, which default timings
	// never do.
	Heartbeat, PeerTimeout, HandshakeTimeout, BackoffMin, BackoffMax, Grace time.Duration

	// The load run (load.go): with a workload, the run forms the full mesh
	// and puts it under continuous load for LoadFor instead of random
	// commands and faults. Payload is the size of its messages, AppDelay the
	// mean time a Message callback takes, ProduceGap the mean time between
	// two sends of a producer.
	Workload   Workload
	LoadFor    time.Duration
	Payload    int
	AppDelay   time.Duration
	ProduceGap time.Duration
	SlowApp    int // the first node's callbacks take this many times longer (0, 1: as long)
	// The adapter's bounds (sockets.go): SockBuf is the bytes per direction
	// of a connection that the kernel buffers (send and receive buffers
	// together), 0 for unbounded; SendBuffer, DispatchQueue and
	// DispatchBytes are netio's (zero: its defaults).
	SockBuf, SendBuffer, DispatchQueue, DispatchBytes int
	// Window is the fsm's credit window, MaxWindow how far it may grow
	// (fsm/window.go), QueueMessages its bound on the messages not yet
	// acknowledged per peer (zero: the defaults).
	Window, MaxWindow, QueueMessages int

	// KeptPairs makes every pair kept by at least one end for the whole run
	// (lost.go, spec.LostLedger's strong form): each pair's keeper Connects
	// to the other at the start, the commands are Sends and keeper switches
	// (the other end starts keeping, then, at once or later, the first
	// stops: never an instant at which neither keeps), no user Disconnects,
	// and no node crashes, restarts or closes (FaultCrash is not injected).
	// No node may then report a message lost but after the reconnect grace.
	KeptPairs bool
	// FastSwitches lets a KeptPairs run switch a pair's keeper again before
	// switchGap has passed (lost.go), within a round trip: the leader may
	// then end a session as unwanted on a keep flag a KEEP in flight has
	// superseded (fsm/peer.go, peerMayComeBack). DrawKeptPairsKnobs sets it
	// on even seeds.
	FastSwitches bool

	// LateTicks makes the nodes' timers starve (process.go): in the safety
	// phase, each time a node's next deadline moves, its Tick comes late
	// with probability one half, by up to LateTicks, as an adapter whose
	// process is starved of CPU or stopped delivers it, while bytes still
	// arrive on time (fsm's rule for its own pause: spec/PROTOCOL.md 4).
	// 0: every Tick on time.
	LateTicks time.Duration
	// LateReads makes the nodes' readers starve (stall.go): in the safety
	// phase, at a Tick of a node whose readers run, they stall with
	// probability one quarter, for up to LateReads. Bytes that reach the
	// node meanwhile wait unread while its timer runs on time, and each
	// Tick meanwhile says how long they have stalled (Tick.Lag), as netio's
	// lag probe measures it (netio/lagprobe.go). 0: readers never stall.
	LateReads time.Duration

	// MaxRedials is the fsm's bound on the dials in flight when a node
	// starts a redial of its own (fsm/redials.go; zero: the default, 32,
	// which runs of 2 to 5 nodes never reach). DrawKnobs sets it to 1 to 3
	// on half the seeds, so that redials wait for their turn.
	MaxRedials int

	// Leases makes the nodes' producers stage messages under the leases
	// their fsm grants, as netio's SendContext does (fsm/lease.go,
	// lanes.go): half the random user Sends (and, with SendMany, half the
	// SendManys) and every load producer's are then a producer's, staged
	// while the lease has room and admitted in one step a little later (by
	// the session's writer, in netio).
	// DrawKnobs sets it on half the seeds.
	Leases bool

	// SendMany makes half the random users' bursts of sends one SendMany
	// (fsm.SendMany, through the connection layer's encode-once path, as
	// netio's SendMany) to a random set of the other nodes, half of them
	// with payloads of 600 bytes, which the streams share (fsm's sharedMin);
	// after each, the simulator overwrites its payload buffer, as a caller
	// may. Off by default: it changes every seed's commands
	// (TestSweepSendMany turns it on).
	SendMany bool

	// Mutation is a deliberately broken fsm rule, for negative controls; a
	// nonzero one needs a build with the masterless_mutation tag (mutation.go).
	Mutation Mutation

	// Auth runs every node with authentication (fsm.Config.RequireAuth), and
	// the network reports each connection between honest processes
	// authenticated as the process at its other end (adversary.go).
	Auth bool
	// Adversaries is how many adversary processes attack the honest nodes
	// (adversary.go); they need Auth. Attacks is what they do, AttackEvery
	// the mean interval between the connections each opens.
	Adversaries int
	Attacks     Attack
	AttackEvery time.Duration
}

// Config returns the fsm configuration the knobs ask for (ID, Incarnation
// and Seed are the world's to fill in).
func (k Knobs) Config() fsm.Config {
	return withMutation(fsm.Config{HeartbeatInterval: k.Heartbeat, PeerTimeout: k.PeerTimeout, HandshakeTimeout: k.HandshakeTimeout,
		BackoffMin: k.BackoffMin, BackoffMax: k.BackoffMax, ReconnectGrace: k.Grace, RequireAuth: k.Auth,
		Window: k.Window, MaxWindow: k.MaxWindow, QueueMessages: k.QueueMessages, MaxRedials: k.MaxRedials, Leases: k.Leases}, k.Mutation)
}

// DrawKnobs derives the knobs of a run from its seed.
func DrawKnobs(seed uint64) Knobs {
	c := NewPRNG(seed ^ 0x6b6e6f6273) // a stream of its own: the run's draws start fresh
	k := Knobs{
		Seed:         seed,
		Nodes:        between(c, 2, 5),
		Latency:      between(c, 50*time.Microsecond, 20*time.Millisecond),
		Safety:       between(c, 5*time.Second, 30*time.Second),
		HealWithin:   2 * time.Minute,
		CommandEvery: between(c, 20*time.Millisecond, 1500*time.Millisecond),
		FaultEvery:   between(c, 200*time.Millisecond, 5*time.Second),
	}
	k.Jitter = between(c, 0, 3*k.Latency)
	for f := Fault(1); f < faultEnd; f <<= 1 {
		if c.Intn(2) == 0 {
			k.Faults |= f
		}
	}
	if k.Faults&FaultDialFail != 0 {
		k.DialFailPM = between(c, 10, 500)
	}
	if k.Faults&FaultDialTimeout != 0 {
		k.DialTimeoutPM = between(c, 10, 300)
	}
	if c.Intn(2) == 0 { // half the seeds run fast timers, bounded so that a handshake can still finish
		rtt := 2 * (k.Latency + k.Jitter)
		k.Heartbeat = between(c, max(20*time.Millisecond, rtt), time.Second)
		k.PeerTimeout = k.Heartbeat + between(c, 2*rtt+k.Heartbeat, 5*k.Heartbeat+2*rtt)
		k.HandshakeTimeout = between(c, 5*rtt+10*time.Millisecond, 5*time.Second)
		k.BackoffMin = between(c, time.Millisecond, 200*time.Millisecond)
		k.BackoffMax = between(c, k.BackoffMin, 10*time.Second)
		k.Grace = between(c, 10*time.Millisecond, 5*time.Second)
	}
	if c.Intn(2) == 0 { // drawn last: the knobs above are what they were before it
		// Bounded socket buffers (sockets.go), small enough that a silent
		// connection fills them and a Write times out.
		k.SockBuf = between(c, 64, 64<<10)
	}
	// From a stream of its own, so that every knob above is what it was
	// before this one existed (a seed replays as it did).
	if r := NewPRNG(seed ^ 0x7265646961); r.Intn(2) == 0 {
		k.MaxRedials = between(r, 1, 3)
	}
	if r := NewPRNG(seed ^ 0x6c65617365); r.Intn(2) == 0 { // a stream of its own, as MaxRedials'
		k.Leases = true
	}
	return k
}

// DrawKeptPairsKnobs derives the knobs of a run with KeptPairs from its
// seed: DrawKnobs's, with connection resets always among the faults and
// crashes never, and keeper switches within a round trip on even seeds.
func DrawKeptPairsKnobs(seed uint64) Knobs {
	k := DrawKnobs(seed)
	k.KeptPairs = true
	k.Faults = (k.Faults | FaultReset) &^ FaultCrash
	k.FastSwitches = seed%2 == 0 // from the seed: the other knobs draw as before
	return k
}

// Args renders the knobs as command-line flags, the way Knobs.Register reads them.
func (k Knobs) Args() []string {
	return []string{
		fmt.Sprintf("-seed=%d", k.Seed),
		fmt.Sprintf("-nodes=%d", k.Nodes),
		fmt.Sprintf("-latency=%v", k.Latency),
		fmt.Sprintf("-jitter=%v", k.Jitter),
		fmt.Sprintf("-safety=%v", k.Safety),
		fmt.Sprintf("-heal=%v", k.HealWithin),
		fmt.Sprintf("-cmds=%v", k.CommandEvery),
		fmt.Sprintf("-faultevery=%v", k.FaultEvery),
		fmt.Sprintf("-faults=%v", k.Faults),
		fmt.Sprintf("-legacy=%d", k.LegacyPM),
		fmt.Sprintf("-dialfail=%d", k.DialFailPM),
		fmt.Sprintf("-dialtimeout=%d", k.DialTimeoutPM),
		fmt.Sprintf("-hb=%v", k.Heartbeat),
		fmt.Sprintf("-peertimeout=%v", k.PeerTimeout),
		fmt.Sprintf("-handshaketimeout=%v", k.HandshakeTimeout),
		fmt.Sprintf("-backoffmin=%v", k.BackoffMin),
		fmt.Sprintf("-backoffmax=%v", k.BackoffMax),
		fmt.Sprintf("-grace=%v", k.Grace),
		fmt.Sprintf("-maxredials=%d", k.MaxRedials),
		fmt.Sprintf("-leases=%t", k.Leases),
		fmt.Sprintf("-sendmany=%t", k.SendMany),
		fmt.Sprintf("-workload=%v", k.Workload),
		fmt.Sprintf("-loadfor=%v", k.LoadFor),
		fmt.Sprintf("-payload=%d", k.Payload),
		fmt.Sprintf("-appdelay=%v", k.AppDelay),
		fmt.Sprintf("-producegap=%v", k.ProduceGap),
		fmt.Sprintf("-slowapp=%d", k.SlowApp),
		fmt.Sprintf("-sockbuf=%d", k.SockBuf),
		fmt.Sprintf("-sendbuf=%d", k.SendBuffer),
		fmt.Sprintf("-dispatchq=%d", k.DispatchQueue),
		fmt.Sprintf("-dispatchbytes=%d", k.DispatchBytes),
		fmt.Sprintf("-window=%d", k.Window),
		fmt.Sprintf("-maxwindow=%d", k.MaxWindow),
		fmt.Sprintf("-queuemsgs=%d", k.QueueMessages),
		fmt.Sprintf("-keptpairs=%t", k.KeptPairs),
		fmt.Sprintf("-fastswitches=%t", k.FastSwitches),
		fmt.Sprintf("-lateticks=%v", k.LateTicks),
		fmt.Sprintf("-latereads=%v", k.LateReads),
		fmt.Sprintf("-mutation=%d", k.Mutation),
		fmt.Sprintf("-auth=%t", k.Auth),
		fmt.Sprintf("-adversaries=%d", k.Adversaries),
		fmt.Sprintf("-attacks=%v", k.Attacks),
		fmt.Sprintf("-attackevery=%v", k.AttackEvery),
	}
}

// String lists every knob on one line.
func (k Knobs) String() string { return strings.Join(k.Args(), " ") }

// KnobFlags registers one flag per knob on fs. After fs is parsed, Resolve
// returns the knobs of a seed with the flags the user set applied on top.
type KnobFlags struct {
	fs   *flag.FlagSet
	vals Knobs
	fstr string
	astr string
	wstr string
	mut  *uint
}

// mutationNames lists fsm's mutations by number, for the -mutation flag's
// help and for checkMutation's refusal of one fsm does not define.
const mutationNames = "1: dialer leads, 2: no 0.4.1-to-v1 upgrade, 3: no resend, 4: refuse when the handshake slots are full, " +
	"5: no HELLO id check, 6: no credit, 7: no pacing by the peer's backlog, 8: discovery dials from both ends, " +
	"9: a redial another node answers becomes a session, 10: a kept peer is redialed although it has a session, " +
	"11: a Connect dials while its node is handshaking, 12: a send moves the node's clock, " +
	"13: an end that does not keep the pair reports its messages lost when a session ends, " +
	"14: the peer's BYE unwanted ends the wait for it, 15: the reconnect grace ends while the peer is back on an unconfirmed session, " +
	"16: a session's end ignores a lease outstanding, 17: a run of messages gathered across another action, " +
	"18: a run's count left at one, 19: one line for every automatic dial, 20: a Tick's Lag ignored, " +
	"21: a SendMany keeps the caller's payload, 22: silent handshakes evicted first, 23: a run written past the credit, " +
	"24: answer room past the queue's bounds, 25: a discovery redial dropped from its queue with no timer, " +
	"26: a run of received frames given its first frame's length, 27: a window grown past MaxWindow, " +
	"28: a run of frames of one length taken a frame past the credit"

// RegisterKnobs registers the knob flags (-seed, -nodes, -latency, ...) on fs.
func RegisterKnobs(fs *flag.FlagSet) *KnobFlags {
	kf := &KnobFlags{fs: fs}
	v := &kf.vals
	fs.Uint64Var(&v.Seed, "seed", 0, "sim: seed of the run to replay (0: none)")
	fs.IntVar(&v.Nodes, "nodes", 0, "sim: number of nodes (overrides the seed's)")
	fs.DurationVar(&v.Latency, "latency", 0, "sim: minimum one-way latency")
	fs.DurationVar(&v.Jitter, "jitter", 0, "sim: extra one-way latency, up to this")
	fs.DurationVar(&v.Safety, "safety", 0, "sim: length of the safety phase")
	fs.DurationVar(&v.HealWithin, "heal", 0, "sim: bound on the healing phase")
	fs.DurationVar(&v.CommandEvery, "cmds", 0, "sim: mean interval between user commands")
	fs.DurationVar(&v.FaultEvery, "faultevery", 0, "sim: mean interval between faults")
	fs.StringVar(&kf.fstr, "faults", "", "sim: comma-separated fault kinds: "+strings.Join(faultNames, ",")+", all or none")
	fs.IntVar(&v.LegacyPM, "legacy", 0, "sim: per-mille of nodes that dial with masterless 0.4.1")
	fs.IntVar(&v.DialFailPM, "dialfail", 0, "sim: per-mille of dials refused")
	fs.IntVar(&v.DialTimeoutPM, "dialtimeout", 0, "sim: per-mille of dials never answered")
	fs.DurationVar(&v.Heartbeat, "hb", 0, "sim: fsm heartbeat interval (0: default)")
	fs.DurationVar(&v.PeerTimeout, "peertimeout", 0, "sim: fsm peer timeout (0: default)")
	fs.DurationVar(&v.HandshakeTimeout, "handshaketimeout", 0, "sim: fsm handshake timeout (0: default)")
	fs.DurationVar(&v.BackoffMin, "backoffmin", 0, "sim: fsm first reconnect delay (0: default)")
	fs.DurationVar(&v.BackoffMax, "backoffmax", 0, "sim: fsm reconnect delay cap (0: default)")
	fs.DurationVar(&v.Grace, "grace", 0, "sim: fsm reconnect grace (0: default)")
	fs.IntVar(&v.MaxRedials, "maxredials", 0, "sim: fsm bound on the dials in flight when a redial starts (0: default)")
	fs.BoolVar(&v.Leases, "leases", false, "sim: producers stage their messages under the fsm's leases, as netio's SendContext does")
	fs.BoolVar(&v.SendMany, "sendmany", false, "sim: half the random bursts of sends are one SendMany to several nodes")
	fs.BoolVar(&v.KeptPairs, "keptpairs", false, "sim: every pair kept by one end throughout; commands are sends and keeper switches; no crashes")
	fs.BoolVar(&v.FastSwitches, "fastswitches", false, "sim: with -keptpairs, a pair's keeper may switch again within a round trip")
	fs.BoolVar(&v.Auth, "auth", false, "sim: nodes require authentication; the network authenticates honest processes")
	fs.IntVar(&v.Adversaries, "adversaries", 0, "sim: number of adversary processes (need -auth)")
	fs.StringVar(&kf.astr, "attacks", "", "sim: comma-separated adversary attacks: "+strings.Join(attackNames, ",")+", all or none")
	fs.DurationVar(&v.AttackEvery, "attackevery", 0, "sim: mean interval between an adversary's connections")
	fs.StringVar(&kf.wstr, "workload", "", "sim: load run workload: "+strings.Join(workloadNames, ", "))
	fs.DurationVar(&v.LoadFor, "loadfor", 0, "sim: load run: how long the producers send")
	fs.IntVar(&v.Payload, "payload", 0, "sim: load run: payload bytes per message")
	fs.DurationVar(&v.AppDelay, "appdelay", 0, "sim: load run: mean time of a Message callback")
	fs.DurationVar(&v.ProduceGap, "producegap", 0, "sim: load run: mean time between a producer's sends")
	fs.IntVar(&v.SlowApp, "slowapp", 0, "sim: load run: the first node's callbacks take this many times longer")
	fs.IntVar(&v.SockBuf, "sockbuf", 0, "sim: socket buffer bytes per direction of a connection (0: unbounded)")
	fs.IntVar(&v.SendBuffer, "sendbuf", 0, "sim: the adapter's SendBuffer (0: netio's default)")
	fs.IntVar(&v.DispatchQueue, "dispatchq", 0, "sim: the adapter's DispatchQueue (0: netio's default)")
	fs.IntVar(&v.DispatchBytes, "dispatchbytes", 0, "sim: the adapter's DispatchBytes (0: netio's default)")
	fs.IntVar(&v.Window, "window", 0, "sim: fsm credit window (0: default)")
	fs.IntVar(&v.MaxWindow, "maxwindow", 0, "sim: fsm bound on a growing credit window (0: default)")
	fs.IntVar(&v.QueueMessages, "queuemsgs", 0, "sim: fsm bound on unacknowledged messages per peer (0: default)")
	fs.DurationVar(&v.LateTicks, "lateticks", 0, "sim: in the safety phase half of a node's Ticks come late, by up to this (0: on time)")
	fs.DurationVar(&v.LateReads, "latereads", 0, "sim: in the safety phase a node's readers stall for up to this, and its Ticks say so in Tick.Lag (0: never)")
	var mut uint
	fs.UintVar(&mut, "mutation", 0, "sim: fsm mutation ("+mutationNames+"), for negative controls; needs -tags masterless_mutation")
	kf.mut = &mut
	return kf
}

// Resolve returns DrawKnobs(seed) with every flag the user set applied.
func (kf *KnobFlags) Resolve(seed uint64) (Knobs, error) { return kf.ResolveOn(DrawKnobs(seed)) }

// ResolveOn returns k with every flag the user set applied.
func (kf *KnobFlags) ResolveOn(k Knobs) (Knobs, error) {
	var err error
	kf.fs.Visit(func(f *flag.Flag) {
		switch f.Name {
		case "nodes":
			k.Nodes = kf.vals.Nodes
		case "latency":
			k.Latency = kf.vals.Latency
		case "jitter":
			k.Jitter = kf.vals.Jitter
		case "safety":
			k.Safety = kf.vals.Safety
		case "heal":
			k.HealWithin = kf.vals.HealWithin
		case "cmds":
			k.CommandEvery = kf.vals.CommandEvery
		case "faultevery":
			k.FaultEvery = kf.vals.FaultEvery
		case "faults":
			k.Faults, err = ParseFaults(kf.fstr)
		case "legacy":
			k.LegacyPM = kf.vals.LegacyPM
		case "dialfail":
			k.DialFailPM = kf.vals.DialFailPM
		case "dialtimeout":
			k.DialTimeoutPM = kf.vals.DialTimeoutPM
		case "hb":
			k.Heartbeat = kf.vals.Heartbeat
		case "peertimeout":
			k.PeerTimeout = kf.vals.PeerTimeout
		case "handshaketimeout":
			k.HandshakeTimeout = kf.vals.HandshakeTimeout
		case "backoffmin":
			k.BackoffMin = kf.vals.BackoffMin
		case "backoffmax":
			k.BackoffMax = kf.vals.BackoffMax
		case "grace":
			k.Grace = kf.vals.Grace
		case "maxredials":
			k.MaxRedials = kf.vals.MaxRedials
		case "leases":
			k.Leases = kf.vals.Leases
		case "sendmany":
			k.SendMany = kf.vals.SendMany
		case "lateticks":
			k.LateTicks = kf.vals.LateTicks
		case "latereads":
			k.LateReads = kf.vals.LateReads
		case "keptpairs":
			k.KeptPairs = kf.vals.KeptPairs
		case "fastswitches":
			k.FastSwitches = kf.vals.FastSwitches
		case "auth":
			k.Auth = kf.vals.Auth
		case "adversaries":
			k.Adversaries = kf.vals.Adversaries
		case "attacks":
			var aerr error
			if k.Attacks, aerr = ParseAttacks(kf.astr); aerr != nil && err == nil {
				err = aerr
			}
		case "attackevery":
			k.AttackEvery = kf.vals.AttackEvery
		case "workload":
			i := slices.Index(workloadNames, kf.wstr)
			if i < 0 && err == nil {
				err = fmt.Errorf("sim: unknown workload %q (known: %s)", kf.wstr, strings.Join(workloadNames, ", "))
			}
			k.Workload = Workload(max(i, 0))
		case "loadfor":
			k.LoadFor = kf.vals.LoadFor
		case "payload":
			k.Payload = kf.vals.Payload
		case "appdelay":
			k.AppDelay = kf.vals.AppDelay
		case "producegap":
			k.ProduceGap = kf.vals.ProduceGap
		case "slowapp":
			k.SlowApp = kf.vals.SlowApp
		case "sockbuf":
			k.SockBuf = kf.vals.SockBuf
		case "sendbuf":
			k.SendBuffer = kf.vals.SendBuffer
		case "dispatchq":
			k.DispatchQueue = kf.vals.DispatchQueue
		case "dispatchbytes":
			k.DispatchBytes = kf.vals.DispatchBytes
		case "window":
			k.Window = kf.vals.Window
		case "maxwindow":
			k.MaxWindow = kf.vals.MaxWindow
		case "queuemsgs":
			k.QueueMessages = kf.vals.QueueMessages
		case "mutation":
			k.Mutation = Mutation(*kf.mut)
			merr := checkMutation(k.Mutation)
			if uint(k.Mutation) != *kf.mut {
				merr = fmt.Errorf("sim: unknown mutation %d", *kf.mut)
			}
			if merr != nil && err == nil {
				err = merr
			}
		}
	})
	return k, err
}

// Seed returns the -seed flag's value.
func (kf *KnobFlags) Seed() uint64 { return kf.vals.Seed }
