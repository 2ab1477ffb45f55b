package fsm

import (
	"fmt"
	"slices"
	"time"

	"github.com/masterless-go/masterless/wire"
)

// Node is the whole protocol of one masterless node as a deterministic state
// machine. It is not safe for concurrent use: exactly one goroutine (netio's
// event loop, or the simulator) owns it, feeds it events with Step and carries
// out what Ready returns.
type Node struct {
	cfg  Config
	info string // our advertised address, from Listening
	rng  splitmix64

	conns map[ConnID]*conn
	peers map[string]*peer
	// ended holds, once the node has shut down, the peer records as they
	// ended, for monitoring only (EndedPeers: Stats after Close); the
	// checkers' views (Peers) show none.
	ended map[string]*peer
	// sentTo is the peer of the latest Send (sendPeer), nil once forgotten.
	sentTo *peer
	// manyTo holds the peer records the latest SendMany found, in the
	// order of its ids (manyPeer); a record forgotten since is not used.
	manyTo []*peer
	// manyOK marks, for a producer's SendMany that asks for leases, the
	// peers of manyTo that took its message (sendMany).
	manyOK []bool
	dials  map[DialID]*dial
	// dialsByAddr dedups dials locally: at most one in flight per address.
	dialsByAddr map[string]*dial
	reqs        map[ReqID]*request
	// inbound remembers, per peer id, what was delivered of its stream,
	// longer than the peer record (stream.go); inboundOrder is their age.
	inbound      map[string]*inStream
	inboundOrder []string
	// book remembers where the most recent forgotten peers were reached
	// (addrbook.go).
	book addrBook
	// inPeerTimers is the peer whose timers the running Tick handles
	// (peerTimers), nil outside: a deadline of its own it re-arms for now
	// or earlier would be left due after the Tick (sessionEnded).
	inPeerTimers *peer

	nextDial    DialID
	sessCounter uint64 // session numbers this node granted as a leader
	handshaking int    // connections holding a handshake slot: not yet established, or v1 sessions not yet confirmed (slots.go)
	// The handshake slots (slots.go): the accepted connections of each
	// eviction tier, oldest first; what each source address holds, and
	// how many hold more than their share; how many connections were
	// evicted.
	tiers     [tierHeard + 1]waitList
	sources   map[string]*source
	overShare int
	evicted   uint64
	// evictedSilent counts those of evicted that were silent (no HELLO
	// read yet).
	evictedSilent uint64
	shutdown      bool

	disc discovery // member discovery (discovery.go)
	// redials: the automatic dials waiting for their turn (redials.go);
	// redialsSlow those toward targets that did not answer last time, and
	// slowDials how many of theirs are in flight.
	redials     []redialWait
	redialsSlow []redialWait
	slowDials   int
	seeds       map[string]*seedAddr // addresses kept until a node answers there (seeds.go)

	// timers holds every deadline, per owner (deadlines.go).
	timers deadlines
	// next is a lower bound on the earliest deadline: it is lowered whenever a
	// deadline is armed and set to the earliest live timer on Tick, so
	// NextDeadline may report a time too early (a spurious Tick is harmless)
	// but never too late.
	next time.Duration

	now   time.Duration // time of the Step in progress
	frame wire.Frame    // the frame being handled
	run   dataRun       // the DataReceived being taken (dataReceived)
	out   []Action
	// dirty counts the slots of out the last Ready handed over: the next
	// Step clears them, so that out[len(out):cap(out)] is zero whenever an
	// action is added, and the hot ones (writeData, emitMessage) are filled
	// in place rather than built and copied (an Action is 300 bytes).
	dirty int

	counters nodeCounters // for Stats (observe.go)

	// Leases (lease.go): the peers holding one, and the last lease number
	// given. admitting: an Admit of a revoked lease's messages is in
	// progress, whose Sends skip the producers' pacing.
	leased    []*peer
	leaseGen  uint64
	admitting bool
	// answerMsgs and answerCost: the most answer room a lease may hold
	// (answerSlack); 0 without leases or slack.
	answerMsgs int
	answerCost uint64
	admitRun   [1]AdmitRun // an Admit's one run when it names none

	trace tracer // trace points (trace.go); empty without the build tag masterless_trace
}

// New returns a Node for cfg, or an error wrapping ErrBadConfig.
func New(cfg Config) (*Node, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	n := &Node{
		cfg:         cfg,
		rng:         splitmix64{state: cfg.Seed},
		conns:       make(map[ConnID]*conn),
		peers:       make(map[string]*peer),
		dials:       make(map[DialID]*dial),
		dialsByAddr: make(map[string]*dial),
		reqs:        make(map[ReqID]*request),
		inbound:     make(map[string]*inStream),
		sources:     make(map[string]*source),
		next:        never,
	}
	if cfg.Leases {
		n.answerMsgs, n.answerCost = answerSlack(cfg)
	}
	return n, nil
}

// never is the deadline of nothing.
const never = time.Duration(1<<63 - 1)

// ID returns the node's id.
func (n *Node) ID() string { return n.cfg.ID }

// Incarnation returns the node's incarnation.
func (n *Node) Incarnation() uint64 { return n.cfg.Incarnation }

// Config returns the node's configuration with defaults filled in.
func (n *Node) Config() Config { return n.cfg }

// Step feeds one event to the node at time now (the caller's monotonic clock;
// it must never go backwards). The actions it causes are collected for Ready.
// Send and SendMany are time-free: the node neither reads nor keeps their
// now, so an adapter may pass any time not after the present, such as that
// of its latest step, and spare a clock read per message (see Send).
//
// Step returns an error only for a user command it refuses (Send to an
// unknown peer, a full queue, a node already shut down): the error wraps a
// sentinel such as ErrUnknownPeer or ErrQueueFull. A peer's misbehaviour is
// never an error here: it closes that connection with a reason.
func (n *Node) Step(now time.Duration, ev Event) error {
	n.clean()
	var err error
	if traceCompiled && n.trace.on() {
		err = n.tracedStep(now, ev)
	} else {
		err = n.step(now, ev)
	}
	if len(n.leased) > 0 {
		n.checkLeases()
	}
	return err
}

// Send is Step(now, *e) without boxing the event in an interface and
// switching on its type (the path of every message a producer sends). The
// node reads *e during the call only.
func (n *Node) Send(now time.Duration, e *Send) error {
	n.clean()
	if traceCompiled && n.trace.on() || n.cfg.mutation.sendKeepsTime() {
		return n.Step(now, *e)
	}
	err := n.sendEvent(e)
	if len(n.leased) > 0 {
		n.checkLeases()
	}
	return err
}

// sendEvent takes a Send: what the lane held first (After), then the
// message; a producer's message that a lease could have carried
// (LeaseMaxPayload) asks for a lease, so that the next ones may be staged.
func (n *Node) sendEvent(e *Send) error {
	if e.After != nil {
		_ = n.admitStaged(e.After)
	}
	err := n.send(e.Peer, e.Payload, e.Reserve, nil)
	if err == nil && (e.Reserve || n.answerMsgs > 0) && n.cfg.Leases && len(e.Payload) <= LeaseMaxPayload {
		// A producer's message asks for room for producers (and answers),
		// an answer for room for answers (lease.go), but only in a stream:
		// one that finds more than two ACKs' worth of messages in the
		// queue (answerStream). Answers in a request/response rhythm (a
		// ping-pong's, a session's only message) would gain nothing from a
		// lane, and pay for it.
		if p := n.sendPeer(e.Peer); p != nil && (e.Reserve || p.out.count > answerStream) {
			n.grantLease(p, e.Reserve)
		}
	}
	return err
}

// ReceiveFrame is Step(now, FrameReceived{Conn: id, Frame: *f}) without
// copying the frame into an event and out of it (the path of every message
// received): the node reads *f during the call only, and never changes it.
func (n *Node) ReceiveFrame(now time.Duration, id ConnID, f *wire.Frame) {
	n.clean()
	if traceCompiled && n.trace.on() {
		_ = n.tracedStep(now, FrameReceived{Conn: id, Frame: *f})
		return
	}
	if now > n.now {
		n.now = now
	}
	n.frameReceived(id, f)
	if len(n.leased) > 0 {
		n.checkLeases()
	}
}

// ReceiveData is Step(now, DataReceived{Conn: id, Frames: frames,
// FrameSize: size}) without boxing the event (the path of a read's run of
// messages): the node reads frames during the call only, and never changes
// them.
func (n *Node) ReceiveData(now time.Duration, id ConnID, frames []byte, size int) {
	n.clean()
	if traceCompiled && n.trace.on() {
		_ = n.tracedStep(now, DataReceived{Conn: id, Frames: frames, FrameSize: size})
		return
	}
	if now > n.now {
		n.now = now
	}
	n.dataReceived(id, frames, size)
	if len(n.leased) > 0 {
		n.checkLeases()
	}
}

// dataReceived takes the DATA frames of a DataReceived one after the other,
// each exactly as a FrameReceived of it, until the connection is closed.
// The messages they deliver one after the other, with no other action
// between them, go out in one ActMessages (emitMessage).
func (n *Node) dataReceived(id ConnID, frames []byte, size int) {
	c := n.conns[id]
	r := &n.run
	r.frames, r.at = frames, 0
	// On a steady session, the path of every message, the checks frameOn
	// makes of the session are made once (steadyData),
	// and each frame takes its own rule (deliverData).
	steady := c != nil && !c.gone && n.steadyData(c)
	if steady {
		c.lastRecv = n.now
		if size != 0 && wire.IsDataRun(frames, size) {
			n.steadySized(c, frames, size)
		} else {
			n.steadyRun(c, frames)
		}
		*r = dataRun{}
		return
	}
	f := &n.frame // handlers get &n.frame, as for FrameReceived
	for c != nil && !c.gone && r.at < len(frames) {
		payload, rest, ok := wire.NextData(frames[r.at:])
		if !ok {
			n.closeConn(c, wire.CodeProtocol, errNotWholeData(len(frames)-r.at))
			break
		}
		r.end = len(frames) - len(rest)
		if steady {
			n.deliverData(c, payload)
		} else {
			f.Type, f.Payload = wire.Data, payload
			n.frameOn(c, f)
		}
		r.at = r.end
	}
	*r = dataRun{}
	n.frame = wire.Frame{}
}

// steadyRun takes the DATA frames of a DataReceived on a steady session
// (steadyData) as dataReceived takes them one by one (deliverData each),
// making the same actions, a stretch of frames at a time: up to the
// message after which an ACK is due, the first frame past the credit
// granted, or a frame that is not whole. A stretch is counted, delivered
// (one ActMessages, or more of the one before it) and acknowledged once.
func (n *Node) steadyRun(c *conn, frames []byte) {
	in := c.peer.in
	r := &n.run
	for r.at < len(frames) && !c.gone {
		due := ackDue(in)
		at, k, bytes, received := r.at, 0, 0, in.received
		size := 0 // the frames' length so far (Action.FrameSize, AppendFrameSize)
		var stop error
		for at < len(frames) && k < due {
			payload, rest, ok := wire.NextData(frames[at:])
			if !ok {
				stop = errNotWholeData(len(frames) - at)
				break
			}
			if received >= in.granted {
				stop = errPastCredit(in)
				break
			}
			received += uint64(len(payload)) + msgCost
			bytes += len(payload)
			if k == 0 || !n.cfg.mutation.runFrameSize() { // see MutationRunFrameSize
				size = AppendFrameSize(size, k, len(payload))
			}
			k++
			at = len(frames) - len(rest)
		}
		if !n.tookStretch(c, frames, at, k, bytes, size, received, due, stop) {
			return
		}
	}
}

// ackDue returns how many messages a steady session takes before an ACK is
// due: one when it is (or the count went back, which wraps, as in
// deliverData).
func ackDue(in *inStream) int {
	if d := in.delivered - in.ackSent; in.delivered >= in.ackSent && d < ackEvery {
		return int(ackEvery - d)
	}
	return 1
}

// tookStretch counts, delivers and acknowledges the stretch of k messages
// that steadyRun or steadySized took, frames[n.run.at:at] with bytes bytes
// of payload, after which the stream has received received; due is what
// ackDue said before it. It closes the connection for stop, if not nil,
// and reports whether the run goes on.
func (n *Node) tookStretch(c *conn, frames []byte, at, k, bytes, size int, received uint64, due int, stop error) bool {
	p := c.peer
	in := p.in
	if k > 0 {
		in.delivered += uint64(k)
		in.unconsumed += uint64(k)
		in.received = received
		n.countIn(p, k, bytes)
		n.emitRun(c, p, in.inc, frames, n.run.at, at, k, size)
		n.run.at = at
		if c.ackBy == 0 && due > 1 {
			// The stretch's first message, after which no ACK was due
			// yet, armed the ACK's timer (deliverData): armed even when
			// the stretch ends with the ACK, as one frame at a time.
			c.ackBy = n.now + ackDelay
			n.armConn(c, c.ackBy)
		}
		if in.delivered-in.ackSent >= ackEvery {
			n.sendAck(p, c)
		}
	}
	if stop != nil {
		n.closeConn(c, wire.CodeProtocol, stop)
		return false
	}
	return true
}

// steadySized is steadyRun for frames all of size bytes (wire.IsDataRun): the
// same stretches, counted and checked against the credit by arithmetic.
// A frame is taken while what was received before it is below the credit
// granted, as in steadyRun, so the stretch that reaches the credit ends
// there and the connection is closed for the frame after it.
func (n *Node) steadySized(c *conn, frames []byte, size int) {
	in := c.peer.in
	r := &n.run
	payload := size - wire.HeaderSize
	cost := uint64(payload) + msgCost
	for r.at < len(frames) && !c.gone {
		due := ackDue(in)
		left := (len(frames) - r.at) / size
		allowed := 0 // frames the credit takes: each while received < granted
		if in.received < in.granted {
			allowed = int(min((in.granted-in.received-1)/cost+1, uint64(left)))
		}
		if n.cfg.mutation.sizedPastCredit() && allowed < left { // deliberately wrong: see MutationSizedPastCredit
			allowed++
		}
		k := min(due, left, allowed)
		var stop error
		if k < min(due, left) {
			stop = errPastCredit(in)
		}
		if !n.tookStretch(c, frames, r.at+k*size, k, k*payload, size, in.received+uint64(k)*cost, due, stop) {
			return
		}
	}
}

// emitRun delivers the k messages of frames[start:end] of a DataReceived
// from p (incarnation inc), received on c, to the user: more of the
// ActMessages this step made last when it holds the frames right before
// start, else an ActMessages of their own. size is the length of each of
// the k frames, 0 if they have different lengths (Action.FrameSize).
func (n *Node) emitRun(c *conn, p *peer, inc uint64, frames []byte, start, end, k, size int) {
	r := &n.run
	last := len(n.out) - 1
	for n.cfg.mutation.runAcrossActions() && last > 0 && n.out[last].Kind != ActMessages {
		last-- // deliberately wrong: see MutationRunAcrossActions
	}
	miscount := n.cfg.mutation.runMiscount() // deliberately wrong: see MutationRunMiscount
	if r.delivered > 0 && r.delivered == start && last >= 0 && n.out[last].Kind == ActMessages {
		a := &n.out[last]
		a.Frame.Payload = frames[start-len(a.Frame.Payload) : end : end]
		if !miscount {
			a.Messages += k
		}
		if a.FrameSize != size {
			a.FrameSize = 0
		}
	} else {
		a := n.addAction(ActMessages)
		a.Conn, a.Peer, a.Incarnation = c.id, p.id, inc
		a.Frame.Type, a.Frame.Payload = wire.Data, frames[start:end:end]
		a.Messages, a.FrameSize = k, size
		if miscount {
			a.Messages = 1
		}
	}
	r.delivered = end
}

// errNotWholeData is why a connection whose run of DATA frames ends in
// rest bytes that are not a whole DATA frame is closed.
func errNotWholeData(rest int) error {
	return fmt.Errorf("%w: %w: %d bytes of a run of DATA frames are not a whole DATA frame", ErrProtocol, wire.ErrMalformedFrame, rest)
}

// errPastCredit is why a connection whose peer sent DATA past the credit
// in granted is closed.
func errPastCredit(in *inStream) error {
	return fmt.Errorf("%w: DATA past the credit granted (%d bytes)", ErrProtocol, in.granted)
}

// dataRun is where dataReceived is in its frames: the frame being taken is
// frames[at:end], and the messages of this run went out up to delivered
// (0: none yet). The last of them is in the ActMessages this step made
// last, which takes the frame's message too when it is the last action and
// ends right before the frame (emitMessage).
type dataRun struct {
	frames             []byte
	at, end, delivered int
}

// clean clears the action slots the last Ready handed over (dirty).
func (n *Node) clean() {
	// What the last Ready handed over is no longer valid. A DATA write and
	// a message, the actions of every message, set only the fields below
	// (writeData, emitMessage, and write and emit of a DATA frame: a slot
	// is zero when it is filled), so clearing those is clearing the slot,
	// without writing the rest of its 300 bytes; CheckActionSlots holds the
	// fuzz and rapid tests to that.
	used := n.out[:n.dirty]
	for i := range used {
		a := &used[i]
		if a.Kind == ActMessage || a.Kind == ActMessages || a.Kind == ActWriteData || a.Kind == ActWrite && a.Frame.Type == wire.Data {
			a.Kind, a.Conn, a.Peer, a.Incarnation = 0, 0, "", 0
			a.Frame.Type, a.Frame.Payload, a.Messages, a.FrameSize = 0, nil, 0, 0
			continue
		}
		*a = Action{}
	}
	n.dirty = 0
}

func (n *Node) step(now time.Duration, ev Event) error {
	if n.cfg.mutation.sendKeepsTime() && now > n.now { // deliberately wrong: see MutationSendKeepsTime
		n.now = now
	}
	switch e := ev.(type) {
	case Send: // time-free: now is not read (see Send)
		return n.sendEvent(&e)
	case SendMany: // time-free, as Send
		return n.sendMany(e)
	case Admit: // time-free, as Send
		return n.admitStaged(&e)
	}
	if now > n.now {
		n.now = now
	}
	switch e := ev.(type) {
	case Consumed:
		n.consumed(e.Peer, e.Incarnation, e.Messages, e.Bytes)
	case FrameReceived:
		n.frame = e.Frame // handlers get &n.frame: no per-frame allocation
		n.frameReceived(e.Conn, &n.frame)
		n.frame = wire.Frame{}
	case DataReceived:
		n.dataReceived(e.Conn, e.Frames, e.FrameSize)
	case Tick:
		n.tick(e.Lag)
	case Incoming:
		if !n.incoming(e) && !n.shutdown {
			n.countRefused()
		}
	case Accepted:
		n.accepted(e.Conn, e.Legacy, e.Peer)
	case Dialed:
		n.dialed(e.Dial, e.Conn, e.Peer)
	case DialFailed:
		n.dialFailed(e.Dial, e.Err)
	case Malformed:
		if c := n.conns[e.Conn]; c != nil {
			n.closeConn(c, wire.CodeProtocol, fmt.Errorf("%w: %w", ErrProtocol, e.Err))
		}
	case ConnClosed:
		if c := n.conns[e.Conn]; c != nil {
			err := e.Err
			if err == nil {
				err = ErrPeerClosed
			}
			n.dropConn(c, err)
		}
	case Listening:
		n.info = e.Info
	case Connect:
		return n.connect(e.Req, e.Addr)
	case CancelConnect:
		n.cancelConnect(e.Req)
	case Disconnect:
		return n.disconnect(e.Peer)
	case SetKeep:
		return n.setKeep(e.Peer, e.Keep)
	case Shutdown:
		n.stop()
	case ReadPaused:
		n.readPaused(e)
	case FrameInProgress:
		if c := n.conns[e.Conn]; c != nil {
			c.lastRecv = n.now // as for a whole frame (frameReceived)
		}
	case StopConnecting:
		delete(n.seeds, e.Addr)
	default:
		// Event is sealed; only a nil event gets here. (No %T of ev: that
		// would make every event escape and cost an allocation per Step.)
		panic("fsm: node " + n.cfg.ID + ": Step called with a nil or foreign event")
	}
	return nil
}

// Ready returns the actions collected since the last call, in the order the
// adapter must carry them out. The slice and the payloads in it stay valid
// only until the next Step.
func (n *Node) Ready() []Action {
	out := n.out
	n.out = n.out[:0]
	n.dirty = max(n.dirty, len(out))
	return out
}

// Release tells the node that the actions of the last Ready are carried
// out: it drops its references to what they carry now, not at the next
// step. A Lost action holds a whole send queue's payloads (the user's once
// the Lost event is delivered): a node with nothing else to do kept them
// alive until something stepped it, for ever on an idle node (a black-box
// audit: 16 MiB held after the callback had dropped them). Optional; the
// actions are invalid after it.
func (n *Node) Release() { n.clean() }

// NextDeadline returns the time at which the node next needs a Tick, and
// false when no timer is pending. It may be earlier than needed, never later.
func (n *Node) NextDeadline() (time.Duration, bool) {
	return n.next, n.next != never
}

func (n *Node) emit(a Action) { n.out = append(n.out, a) }

func (n *Node) write(c *conn, f wire.Frame) {
	n.countOut(c, &f)
	n.out = append(n.out, Action{Kind: ActWrite, Conn: c.id, Frame: f})
}

// addAction adds a zero action of the given kind and returns it to be filled in.
func (n *Node) addAction(kind ActionKind) *Action {
	if len(n.out) == cap(n.out) {
		n.out = slices.Grow(n.out, 1)
	}
	n.out = n.out[:len(n.out)+1]
	a := &n.out[len(n.out)-1]
	a.Kind = kind
	return a
}

// writeData writes a DATA frame with payload on c: write, without building
// a frame and an action to copy (the path of every message sent).
func (n *Node) writeData(c *conn, payload []byte) {
	n.countData(c, 1, len(payload))
	a := n.addAction(ActWrite)
	a.Conn = c.id
	a.Frame.Type, a.Frame.Payload = wire.Data, payload
}

// countData counts k messages of m payload bytes in all written on c.
func (n *Node) countData(c *conn, k, m int) {
	if p := c.peer; p != nil {
		p.counters.msgsOut += uint64(k)
		p.counters.bytesOut += uint64(m)
		n.counters.msgsOut += uint64(k)
		n.counters.bytesOut += uint64(m)
	}
}

// emitMessage delivers payload from p (incarnation inc), received on c, to
// the user: an ActMessage, filled in place (see writeData).
func (n *Node) emitMessage(c *conn, p *peer, inc uint64, payload []byte) {
	if r := &n.run; r.frames != nil && len(payload) == r.end-r.at-wire.HeaderSize {
		// A message of a DataReceived (the frame being taken): one
		// ActMessages for consecutive messages with nothing between them.
		n.emitRun(c, p, inc, r.frames, r.at, r.end, 1, r.end-r.at)
		return
	}
	a := n.addAction(ActMessage)
	a.Conn, a.Peer, a.Incarnation = c.id, p.id, inc
	a.Frame.Type, a.Frame.Payload = wire.Data, payload
}

// broken panics with full context: the node's own bookkeeping is broken,
// a bug in this package, never a peer's doing. Callers test the invariant
// first (if !ok { n.broken(...) }): the arguments of a call made whether
// or not it holds were boxed on every call, some at every connection's
// open and end (eight allocations of a churn cycle's 145).
func (n *Node) broken(format string, args ...any) {
	panic(fmt.Sprintf("fsm: node %s inc %d at %v: broken invariant: %s",
		n.cfg.ID, n.cfg.Incarnation, n.now, fmt.Sprintf(format, args...)))
}
