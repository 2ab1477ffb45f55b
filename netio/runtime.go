package netio

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/masterless-go/masterless/fsm"
	"github.com/masterless-go/masterless/internal/recent"
	"github.com/masterless-go/masterless/link"
)

// Runtime runs one masterless node on TCP: a listener, its connections, and the
// *fsm.Node that decides everything about them, driven through the
// connection layer (package link). All methods are safe for concurrent use.
type Runtime struct {
	cfg   Config
	fcfg  fsm.Config // with defaults filled in by fsm
	log   *slog.Logger
	start time.Time
	ln    net.Listener
	info  string

	dialCtx    context.Context // cancelled by Close: aborts dials in flight
	cancelDial context.CancelFunc

	// mu is the core lock: it guards everything below it, and is the only
	// way to reach the connection layer and the fsm.
	mu     sync.Mutex
	link   *link.Layer
	fsm    *fsm.Node // the layer's state machine, for read-only views
	closed bool
	conns  map[fsm.ConnID]*conn // the connections the layer holds
	recent recent.Conns[*conn]  // connections written on lately, while in conns (writing)
	live   map[*conn]struct{}   // every connection whose goroutines run
	// lingering counts the connections closed gracefully whose goroutines
	// still run (core.go, maxLingering).
	lingering int
	lingerCap int // maxLingering; tests change it
	nextConn  fsm.ConnID
	reqs      map[fsm.ReqID]chan connectResult
	nextReq   fsm.ReqID
	armed     time.Duration // the deadline the timer goroutine waits for
	last      time.Duration // the latest time fed to the fsm
	full      []*conn       // connections over their send bound, for the caller to wait on
	gated     int           // 0.4.1 sessions whose sends wait first (waitGates)
	manyErrs  []error       // scratch for the results of a SendMany step
	events    []event       // user events collected by Notify, handed over by settle
	logs      *logLimiter   // rate limits the lines peers cause (ratelog.go)
	slab      []byte        // where the payloads of the current read are copied
	slabHint  int           // bytes the current read may deliver
	// inline holds the connections the step in progress has bytes for
	// that its goroutine writes itself once it drops mu (inline.go), at
	// most inlineConns of them (allowInline; 0 outside such steps);
	// inlineKind: which writes the step makes (inline.go).
	inline      []*conn
	inlineConns int
	inlineKind  inlineKind
	// inlineWrites counts inline writes, writersStarted the writers
	// started, writersRetired those that ended while their connection
	// stayed, writerWakes the times a parked writer woke (for tests).
	writersStarted atomic.Uint64
	writersRetired atomic.Uint64
	inlineWrites   atomic.Uint64
	writerWakes    atomic.Uint64
	// wireIn and wireOut add up the bytes of the connections no longer live.
	wireIn, wireOut uint64
	// lanes holds the producers' lanes (lane.go), by peer: the fast path
	// of SendContext loads from it without n.mu. lanesHeld holds the same
	// lanes for the lookups made under n.mu (every Send's): the sync.Map's
	// (a hash trie since Go 1.24, its keys coming and going as leases are
	// granted and revoked) took 0.26 s of a 4 s profile of the echo
	// benchmark, about 170 ns a reply; this map's, 0.11 s.
	// revoked holds what revoked lanes held, for settle to admit.
	lanes     sync.Map
	lanesHeld map[string]*lane
	heldLast  *lane                // the lane laneIn found last, while in lanesHeld
	lastLane  atomic.Pointer[lane] // the lane laneOf found last
	// yields and yieldsStaged count stageOrYield's yields, and those after
	// which the message was staged (tests).
	yields, yieldsStaged atomic.Uint64
	// answerLanes counts the lanes whose lease gave answers room (leased):
	// while none does, a Send skips the lane's lookup, a miss in the
	// sync.Map that cost a ping-pong 2-4% of its rate.
	answerLanes atomic.Int32
	manyLanes   atomic.Pointer[manyLanes] // the lanes stageMany found last
	fansMade    atomic.Uint64             // fans made for them (fan.go; tests)
	revoked     []stagedBatch
	after       fsm.Admit // stagedFor's, so that it costs no allocation
	// room is closed (and replaced) whenever a peer's send queue gets room
	// after a refusal: SendContext waits on it.
	room chan struct{}

	// closeBy, once Close started, is the wall-clock time (unix ns) by which
	// every connection's last writes and reads must end.
	closeBy atomic.Int64

	kick chan struct{} // wakes the timer goroutine to re-arm earlier
	// probe measures how late the goroutines the network wakes run, for
	// Tick.Lag (lagprobe.go); nil without a pipe.
	probe *lagProbe
	done  chan struct{} // closed by Close: stops the accept and timer loops
	disp  dispatcher

	wg        sync.WaitGroup // every goroutine of the Runtime but the dispatcher's (disp.gone)
	closeOnce sync.Once
}

type connectResult struct {
	peer string
	err  error
}

// Start listens, starts the Runtime's goroutines and returns it. The Listening
// event is the first one delivered. Stop it with Close.
func Start(cfg Config) (*Runtime, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	fc := cfg.FSM
	fc.MaxFrameSize = cfg.MaxFrameSize // one limit for what we send and what we accept
	fc.Leases = true                   // SendContext stages under leases (lane.go)
	if cfg.IncarnationFile != "" {
		if _, err := fsm.New(fc); err != nil {
			return nil, err // a bad configuration leaves the file alone
		}
		inc, err := nextIncarnation(cfg.IncarnationFile, time.Now())
		if err != nil {
			return nil, err
		}
		fc.Incarnation = inc
	}
	if fc.Incarnation == 0 {
		fc.Incarnation = uint64(time.Now().UnixNano()) // see incarnation.go for when this fails
	}
	if fc.Seed == 0 {
		var b [8]byte
		_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on supported platforms
		fc.Seed = binary.LittleEndian.Uint64(b[:])
	}
	core, err := fsm.New(fc)
	if err != nil {
		return nil, err
	}
	lc := net.ListenConfig{KeepAlive: noTCPKeepAlive}
	ln, err := lc.Listen(context.Background(), "tcp", net.JoinHostPort(cfg.Host, strconv.Itoa(cfg.Port)))
	if err != nil {
		if errors.Is(err, syscall.EADDRINUSE) { // the machine's state, not the option's value
			return nil, fmt.Errorf("%w on %s:%d: %w", ErrListen, cfg.Host, cfg.Port, err)
		}
		// A host that does not resolve or is not this machine's, a port
		// this process may not use: the options are wrong for this machine.
		return nil, fmt.Errorf("%w on %s:%d (%w: check WithHost and WithPort): %w", ErrListen, cfg.Host, cfg.Port, fsm.ErrBadConfig, err)
	}
	info := cfg.Advertise
	if info == "" {
		info = listenInfo(cfg.Host, ln.Addr())
		if err := checkInfo(info); err != nil { // cannot fail for a listener's address; cheap to be sure
			ln.Close()
			return nil, err
		}
	}
	if err := checkHelloFits(core.Config(), info); err != nil {
		ln.Close()
		return nil, err
	}
	n := &Runtime{
		cfg:       cfg,
		fcfg:      core.Config(),
		log:       cfg.Logger.With("node", fc.ID),
		start:     time.Now(),
		ln:        ln,
		info:      info,
		fsm:       core,
		conns:     make(map[fsm.ConnID]*conn),
		live:      make(map[*conn]struct{}),
		reqs:      make(map[fsm.ReqID]chan connectResult),
		armed:     never,
		logs:      newLogLimiter(logBurst, logWindow),
		lingerCap: maxLingering,
		room:      make(chan struct{}),
		kick:      make(chan struct{}, 1),
		done:      make(chan struct{}),
		probe:     newLagProbe(), // before the timer goroutine that reads it
	}
	n.link = link.New(core, (*transport)(n))
	n.dialCtx, n.cancelDial = context.WithCancel(context.Background())
	n.disp.init(cfg.Events, cfg.EventsGate, cfg.DispatchQueue, cfg.DispatchBytes, n.consumed)

	n.mu.Lock()
	if cfg.Events.Listening != nil {
		n.events = append(n.events, event{kind: evListening, more: &eventMore{info: info}})
	}
	_ = n.link.Step(n.now(), fsm.Listening{Info: info})
	n.settle()
	n.mu.Unlock()
	n.log.Debug("listening", "info", info, "incarnation", fc.Incarnation)

	n.wg.Add(2)
	go n.acceptLoop()
	go n.timerLoop()
	go n.disp.run(n.done) // not in wg: Close waits for it apart (disp.gone)
	if n.probe != nil {
		n.wg.Add(1)
		go func() {
			defer n.wg.Done()
			n.probe.run()
		}()
	}
	return n, nil
}

// never is the deadline of nothing.
const never = time.Duration(1<<63 - 1)

// now is the Runtime's monotonic clock, as fsm wants it. Call it under mu, so
// that the times fed to Step never go backwards.
func (n *Runtime) now() time.Duration {
	n.last = time.Since(n.start)
	return n.last
}

// sendTime is the time a Send or SendMany is stepped at: that of the latest
// step, without reading the clock. Sends are time-free (fsm.Send: the node
// neither reads nor keeps their now), and reading the clock for each
// message was a quarter of a one-way producer's CPU. Call it under mu.
func (n *Runtime) sendTime() time.Duration { return n.last }

// ID returns the node's id.
func (n *Runtime) ID() string { return n.fcfg.ID }

// Incarnation returns the node's incarnation.
func (n *Runtime) Incarnation() uint64 { return n.fcfg.Incarnation }

// listenInfo is the address a node listening at addr advertises by default:
// tcp:// and the listener's address, with the zone of the host it was told to
// listen on (an IPv6 link-local address, fe80::1%eth0) when the listener's
// address has none, as on Linux: without its zone no peer could dial it.
func listenInfo(host string, addr net.Addr) string {
	if a, ok := addr.(*net.TCPAddr); ok && a.Zone == "" {
		if ip, err := netip.ParseAddr(host); err == nil && ip.Zone() != "" {
			zoned := *a
			zoned.Zone = ip.Zone()
			return "tcp://" + zoned.String()
		}
	}
	return "tcp://" + addr.String()
}

// Info returns the tcp://host:port address the node advertises.
func (n *Runtime) Info() string { return n.info }

// Addr returns the listener's address.
func (n *Runtime) Addr() net.Addr { return n.ln.Addr() }

// closeGrace bounds how long Close lets connections flush their BYE and wait
// for the peer's FIN, counted from Close's call: a peer that stopped reading
// cannot hold Close up. The README promises Close returns within 200 ms; the
// other 80 ms are for the goroutines to see their deadline pass and end,
// which on a loaded machine takes tens of milliseconds (a black-box audit
// measured 200-250 ms Closes under CPU load with 150 ms counted from the
// core lock, which the node's other callers may hold for tens of
// milliseconds too).
const closeGrace = 120 * time.Millisecond

// Close sends BYE on every connection, flushes and closes them, closes the
// listener and returns once every goroutine of the Runtime has ended. Events not
// yet delivered are dropped. A peer that reads nothing cannot delay it: the
// goodbyes get at most closeGrace (120 ms from the call) to drain, so that
// Close returns within 200 ms on a machine that is not starved. It is
// idempotent; a second call returns when the first would.
//
// Called from an event handler, it does the same but for the dispatcher
// goroutine the handler runs on: it returns once every other goroutine has
// ended, delivers nothing more, and the dispatcher ends when the handler
// returns. (Waiting for it there would wait for ever.) Called elsewhere while
// a handler runs, it waits for that handler to return.
func (n *Runtime) Close() error {
	fromHandler := n.disp.onDispatcher()
	// Once.Do holds a concurrent caller until the first one's shutdown
	// returns; shutdown does not wait for the dispatcher, so a handler
	// calling Close while another goroutine's Close waits for that handler
	// gets through.
	n.closeOnce.Do(n.shutdown)
	if !fromHandler {
		<-n.disp.gone
	}
	return nil
}

// shutdown is Close but for waiting for the dispatcher goroutine: it says
// goodbye, stops the dispatcher after the handler in progress, and waits for
// every other goroutine.
func (n *Runtime) shutdown() {
	by := time.Now().Add(closeGrace) // before the lock: waiting for it counts
	n.mu.Lock()
	n.closed = true
	n.closeBy.Store(by.UnixNano())
	// The deadline first: the shutdown below closes at once the
	// connections with nothing of ours in flight (a silent dialer, a
	// handshake not yet answered), setting their deadline to now, and
	// setting this one after it held Close up for the whole grace.
	for c := range n.live {
		_ = c.nc.SetDeadline(by) // ends a write or read in progress by then
	}
	n.admitAll()                         // staged messages are queued ones: Close drops them alike
	n.allowInline(inlineAll, inlineOnce) // the goodbyes (inline.go)
	_ = n.link.Step(n.now(), fsm.Shutdown{})
	n.noInline()
	n.settle()
	for id, ch := range n.reqs {
		ch <- connectResult{err: fsm.ErrClosed}
		delete(n.reqs, id)
	}
	n.unlockInline()
	n.disp.stop()
	n.ln.Close()
	n.cancelDial()
	close(n.done)
	n.probe.close()
	n.wg.Wait()
	n.mu.Lock()
	n.logSuppressed()
	n.mu.Unlock()
	n.log.Debug("closed")
}
