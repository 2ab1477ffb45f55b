package sim

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/masterless-go/masterless/fsm"
	"github.com/masterless-go/masterless/link"
	"github.com/masterless-go/masterless/spec"
	"github.com/masterless-go/masterless/wire"
)

// process is one node process slot: its current fsm (nil while crashed), its
// connections by local id, and its user's intent, which survives restarts.
type process struct {
	split  []fsm.Action // Notify's scratch for an ActMessages (fsm.Action.Split)
	idx    int
	id     string
	addr   string
	inc    uint64
	fsm    *fsm.Node
	link   *link.Layer // drives fsm; the same connection layer netio runs
	alive  bool
	legacy bool // dials with masterless 0.4.1 (fsm.Config.LegacyDial)

	conns   map[fsm.ConnID]*simConn
	tickAt  time.Duration // when its Tick comes: tickDue, or later (Knobs.LateTicks)
	tickDue time.Duration // the deadline its fsm reported
	tickSet bool
	dirty   bool // snapshot out of date
	// Its readers stall from stallFrom until stallUntil (Knobs.LateReads,
	// stall.go); per incarnation.
	stallFrom, stallUntil time.Duration

	// The user's intent, re-issued on restart.
	connectAddrs map[string]bool
	keeps        map[string]bool
	nextReq      fsm.ReqID
	sendSeq      map[string]uint64

	app *app // the load run's application (app.go), per incarnation

	// The producers' lanes (lanes.go, Knobs.Leases), per incarnation; the
	// batches of those revoked, to admit before any other step.
	lanes            map[string]*simLane
	revoked          []revokedBatch
	admittingRevoked bool

	// User is what the node's user was told, in order.
	User []UserEvent
}

// UserEvent is one notification the fsm gave its user.
type UserEvent struct {
	At          time.Duration
	Incarnation uint64 // of the node that got it
	Kind        fsm.ActionKind
	Peer        string
	PeerInc     uint64
	Req         fsm.ReqID
	Err         error
	Payload     string
	Lost        int // ActLost: how many messages
}

// String renders the notification for test failures.
func (u UserEvent) String() string {
	s := fmt.Sprintf("%v %s", u.At, u.Kind)
	if u.Peer != "" {
		s += " " + u.Peer
	}
	if u.Req != 0 {
		s += fmt.Sprintf(" r%d", u.Req)
	}
	if u.Payload != "" {
		s += " " + u.Payload
	}
	if u.Err != nil {
		s += " err=" + u.Err.Error()
	}
	return s
}

// localID is the id a node's fsm knows connection g by: both ends of a
// self-dial live in one fsm, so each side gets its own.
func localID(g spec.ConnID, side int) fsm.ConnID { return fsm.ConnID(2*uint64(g) + uint64(side)) }

func globalOf(l fsm.ConnID) spec.ConnID { return spec.ConnID(uint64(l) / 2) }

// step feeds n an event that concerns no connection's bytes (a user
// command, Listening, Tick). Connection events go to n's connection layer
// from net.go, as netio's sockets report them.
func (w *World) step(n *process, ev fsm.Event) error {
	return n.link.Step(w.now, ev)
}

// observe runs after every step of n's fsm, once the connection layer has
// carried out its actions: it sends what was written, checks the safety
// invariants, re-arms n's timer and writes the trace.
func (w *World) observe(n *process, ev fsm.Event, err error, acts []fsm.Action) {
	w.steps++
	g := eventConn(ev)
	if fr, ok := ev.(fsm.FrameReceived); ok {
		f := &fr.Frame
		w.stats.Frames[min(int(f.Type), len(w.stats.Frames)-1)]++
		if f.Type == wire.Bye {
			w.stats.Byes[min(int(f.Code), len(w.stats.Byes)-1)]++
		}
	}
	if dr, ok := ev.(fsm.DataReceived); ok {
		k := eachData(dr.Frames, nil)
		w.stats.Frames[wire.Data] += k
		w.stats.DataRuns++
		w.stats.DataRunFrames += k
	}
	w.remember(n, ev, g, err, acts)
	if len(w.adv) > 0 {
		w.watchAdversary(n, ev, acts)
	}
	if w.load != nil && w.load.sessions != nil {
		w.sessionEvents(n, ev, acts)
	}
	for i := range acts {
		if a := &acts[i]; a.Kind == fsm.ActWrite && a.Frame.Type != wire.Ping || a.Kind == fsm.ActWriteData {
			if c := n.conns[a.Conn]; c != nil {
				c.ends[int(a.Conn%2)].wctl = true
			}
			if a.Frame.Type == wire.Bye && w.allHonest() {
				w.fail(spec.NoProtocolErrorBetweenHonest(n.id, globalOf(a.Conn), a.Frame.Code, a.Frame.Text))
			}
		}
	}
	w.flush(n)
	w.checkBookkeeping(n)
	if !w.cannotChangeState(n, ev, acts) {
		n.dirty = true
	}
	if d, ok := n.fsm.NextDeadline(); ok {
		d = max(d, w.now)
		if !n.tickSet || d != n.tickDue {
			n.tickDue, n.tickAt, n.tickSet = d, d, true
			if w.k.LateTicks > 0 && w.phase == PhaseSafety && w.c.Intn(2) == 0 {
				// A starved timer (Knobs.LateTicks): the Tick comes late,
				// the bytes on time.
				n.tickAt += between(w.c, 0, w.k.LateTicks)
				w.stats.LateTicks++
			}
			w.schedule(event{at: n.tickAt, kind: evTick, node: n.idx, inc: n.inc})
		}
	} else {
		n.tickSet = false
	}
	if n.dirty {
		w.checkSafety(n)
	}
	if len(n.revoked) > 0 {
		w.admitRevoked(n) // as netio's settle does, before any other step
	}
}

// checkBookkeeping runs the fsm's checks of its own bookkeeping after some
// steps of n (fsm/check.go): the timers' table against every deadline in
// its state after every timerCheckEvery-th step of the world, and the send
// queue's runs, counters and cursor and each lease against the queue's
// bounds after every streamCheckEvery-th. The production rules read these
// without reading the state again, so a sweep of the rules sweeps them too.
// Their negative controls (mutation tag): TestSweepDiscoveryCatchesDroppedRedial
// for the timers, TestSweepBookkeepingCatchesAnswerRoomPastBounds for the
// send queues.
func (w *World) checkBookkeeping(n *process) {
	if w.steps%timerCheckEvery == 0 {
		if err := n.fsm.CheckTimers(); err != nil {
			w.fail(fmt.Errorf("bookkeeping: %s's timers after its step: %w", n.id, err))
		}
	}
	if w.steps%streamCheckEvery == 0 {
		if err := n.fsm.CheckStreams(); err != nil {
			w.fail(fmt.Errorf("bookkeeping: %s's send queues after its step: %w", n.id, err))
		}
	}
}

// timerCheckEvery is how often, in steps of the world, checkBookkeeping
// checks the stepping node's timers: the check walks every table of the
// node (a quarter of TestSweep's CPU when run after every step), and a
// deadline left unarmed stays so for many steps (the one it found, a
// discovery redial dropped from its queue, for 20 s of virtual time).
const timerCheckEvery = 8

// streamCheckEvery is how often, in steps of the world, checkBookkeeping
// checks the stepping node's send queues: the check reads every queued
// frame, thousands in a load run, where after every step it made
// TestSweepLoad thirteen times slower (13 s to 167 s; 22 s every 32nd).
const streamCheckEvery = 64

// allHonest reports whether every process of the run follows the protocol
// over an adapter that keeps the bytes intact, so that no node has cause to
// close with BYE protocol error (spec.NoProtocolErrorBetweenHonest): no
// adversary, no deliberately broken adapter.
func (w *World) allHonest() bool { return len(w.adv) == 0 && w.opt.AdapterBug == 0 }

// eventConn returns the global id of the connection ev concerns, or 0.
func eventConn(ev fsm.Event) spec.ConnID {
	switch e := ev.(type) {
	case fsm.FrameReceived:
		return globalOf(e.Conn)
	case fsm.DataReceived:
		return globalOf(e.Conn)
	case fsm.Incoming:
		return globalOf(e.Conn)
	case fsm.Accepted:
		return globalOf(e.Conn)
	case fsm.Dialed:
		return globalOf(e.Conn)
	case fsm.Malformed:
		return globalOf(e.Conn)
	case fsm.ConnClosed:
		return globalOf(e.Conn)
	case fsm.FrameInProgress:
		return globalOf(e.Conn)
	}
	return 0
}

// cannotChangeState reports whether a step provably left everything the
// checkers look at unchanged, so the snapshot and the safety check can be
// skipped: the data path (a PING or DATA received, a Send) that produced only
// PING and DATA writes and message deliveries. Every change of a connection's
// state or of a session involves another event (HELLO, JOIN, WELCOME, KEEP,
// BYE, a close, a Tick, a command) or another action (a handshake frame, a
// close, a user notification), so those steps are always checked. Deliveries
// are checked on every step regardless.
//
// A heartbeat Tick (only PING writes) qualifies too when every peer the node
// knew before it is kept or has a session: such a peer is never forgotten,
// and every other change a Tick can make to what the checkers see (a timeout
// closing a connection, a redial) comes with an action.
func (w *World) cannotChangeState(n *process, ev fsm.Event, acts []fsm.Action) bool {
	switch e := ev.(type) {
	case fsm.FrameReceived:
		if e.Frame.Type != wire.Ping && e.Frame.Type != wire.Data {
			return false
		}
	case fsm.DataReceived:
	case fsm.Tick:
		if n.dirty {
			return false
		}
		for _, p := range w.snap.Nodes[n.idx].Peers {
			if !p.Kept && p.SessionConn == 0 {
				return false
			}
		}
	case fsm.Send:
	default:
		return false
	}
	for i := range acts {
		switch a := &acts[i]; a.Kind {
		case fsm.ActMessage, fsm.ActMessages:
			if _, tick := ev.(fsm.Tick); tick {
				return false
			}
		case fsm.ActWriteData:
		case fsm.ActWrite:
			if a.Frame.Type != wire.Ping && a.Frame.Type != wire.Data {
				return false
			}
		default:
			return false
		}
	}
	return true
}

// transport is a node's sockets as its connection layer sees them
// (link.Transport): simulated streams.
type transport struct {
	w *World
	n *process
}

// end returns the end of connection id that n holds, failing the run when
// the layer names one it should not.
func (t transport) end(id fsm.ConnID, what string) (*simConn, *simEnd) {
	c := t.n.conns[id]
	if c == nil {
		t.w.fail(fmt.Errorf("adapter: %s: %s on c%d, which it does not hold", t.n.id, what, id))
		return nil, nil
	}
	e := &c.ends[int(id%2)]
	if !e.open {
		t.w.fail(fmt.Errorf("adapter: %s: %s on g%d after closing it", t.n.id, what, c.id))
		return nil, nil
	}
	return c, e
}

// Write queues bytes on the end; they leave as one segment at the end of
// the step (flush).
func (t transport) Write(id fsm.ConnID, head, body []byte) {
	c, e := t.end(id, "write")
	if e == nil {
		return
	}
	if len(e.wbuf) == 0 {
		t.w.pending = append(t.w.pending, pendingEnd{c, int(id % 2)})
	}
	e.wbuf = append(append(slices.Grow(e.wbuf, len(head)+len(body)), head...), body...) // one allocation, not one per part
}

// Close sends what was written, then the FIN.
func (t transport) Close(id fsm.ConnID, _ error) {
	c := t.n.conns[id]
	if c == nil {
		return // a connection refused before it was registered, already gone
	}
	side := int(id % 2)
	t.w.sendBytes(c, side)
	t.w.closeEnd(c, side)
}

// Dial sends the SYN.
func (t transport) Dial(id fsm.DialID, addr string) { t.w.dial(t.n, id, addr) }

// Notify records what the user is told and checks every delivery.
func (t transport) Notify(a *fsm.Action) {
	w, n := t.w, t.n
	switch a.Kind {
	case fsm.ActConnected, fsm.ActDisconnected, fsm.ActConnectDone:
		n.User = append(n.User, UserEvent{At: w.now, Incarnation: n.inc, Kind: a.Kind, Peer: a.Peer, PeerInc: a.Incarnation, Req: a.Req, Err: a.Err})
	case fsm.ActMessages:
		n.split = a.Split(n.split[:0])
		if len(n.split) != a.Messages {
			w.fail(fmt.Errorf("delivery: %s's fsm delivered %d messages in an ActMessages that says %d", n.id, len(n.split), a.Messages))
			return
		}
		if want := wire.DataRunFrameSize(a.Frame.Payload); a.FrameSize != want {
			w.fail(fmt.Errorf("delivery: %s's fsm delivered frames of %d bytes (0: of several lengths) in an ActMessages that says %d", n.id, want, a.FrameSize))
			return
		}
		for i := range n.split {
			t.Notify(&n.split[i]) // each message as its own ActMessage
		}
	case fsm.ActMessage:
		src, dst, seq, err := spec.ParsePayloadFor(a.Frame.Payload, n.id)
		if err != nil {
			w.fail(fmt.Errorf("delivery: %s got a payload the simulator never sent: %w", n.id, err))
			return
		}
		if w.load == nil {
			n.User = append(n.User, UserEvent{At: w.now, Incarnation: n.inc, Kind: a.Kind, Peer: a.Peer, Payload: string(a.Frame.Payload)})
		}
		w.fail(w.deliveries.Observe(spec.Delivery{Conn: globalOf(a.Conn), Receiver: n.id, Sender: a.Peer, Src: src, Dst: dst, Seq: seq}))
		w.streams.Done(src, dst, seq)
		if w.app(n) != nil {
			k := msgKey{src, dst, seq}
			reply := w.load.replies[k]
			delete(w.load.replies, k)
			w.push(n, appMsg{peer: a.Peer, pinc: a.Incarnation, bytes: len(a.Frame.Payload), reply: reply})
			return
		}
		// The simulated user takes it off its queue a little later, which
		// grants the sender credit again.
		w.schedule(event{at: w.now + between(w.c, 0, 2*w.k.Latency+1), kind: evConsume, ctl: true, node: n.idx, inc: n.inc,
			peer: a.Peer, pinc: a.Incarnation, bytes: len(a.Frame.Payload)})
	case fsm.ActLost:
		n.User = append(n.User, UserEvent{At: w.now, Incarnation: n.inc, Kind: a.Kind, Peer: a.Peer, PeerInc: a.Incarnation, Err: a.Err, Lost: len(a.Lost)})
		w.fail(w.lost.Lost(w.now, n.id, a.Peer, len(a.Lost), a.Err))
		for _, p := range a.Lost {
			src, dst, seq, err := spec.ParsePayloadFor(p, a.Peer)
			if err != nil || src != n.id || dst != a.Peer {
				w.fail(fmt.Errorf("delivery: %s was handed back %q as lost to %s, which it never sent there", n.id, p, a.Peer))
				return
			}
			w.streams.Done(src, dst, seq)
		}
	case fsm.ActMemberUp, fsm.ActMemberLeft, fsm.ActMemberGone:
		n.User = append(n.User, UserEvent{At: w.now, Incarnation: n.inc, Kind: a.Kind, Peer: a.Peer, PeerInc: a.Incarnation, Err: a.Err})
	case fsm.ActRoom:
		if w.app(n) != nil {
			w.roomFor(n)
		}
	case fsm.ActLease:
		w.leased(n, a)
	default:
		w.fail(fmt.Errorf("adapter: %s was told of unknown action %v", n.id, a.Kind))
	}
}

// pendingEnd is a connection end with bytes written during the current step.
type pendingEnd struct {
	c    *simConn
	side int
}

// flush sends what n's fsm wrote during the step, one segment per
// connection, in the order the connections were first written to.
func (w *World) flush(*process) {
	for _, p := range w.pending {
		w.sendBytes(p.c, p.side)
	}
	w.pending = w.pending[:0]
}

// refresh re-reads n's status for the checkers, if it changed.
func (w *World) refresh(n *process) {
	if !n.dirty {
		return
	}
	n.dirty = false
	if w.snap.Unchanged[n.idx] {
		w.snap.Unchanged[n.idx] = false
		w.changed = append(w.changed, n.idx)
	}
	seen := w.seePeers(n)
	defer w.noteKeepsAndSessions(n, seen)
	if !n.alive {
		w.snap.Nodes[n.idx] = spec.NodeView{ID: n.id, Incarnation: n.inc}
		return
	}
	s := &w.snap.Nodes[n.idx]
	spec.FillFromFSM(s, n.fsm, globalOf)
}

func (w *World) refreshAll() {
	for _, n := range w.nodes {
		n.dirty = true
		w.refresh(n)
	}
}

// snapshot assembles the spec.Snapshot of the whole world from the cached
// node views and the open connections.
func (w *World) snapshot() *spec.Snapshot {
	live := w.conns[:0]
	w.snap.Conns = w.snap.Conns[:0]
	for _, c := range w.conns {
		if !c.ends[0].open && !c.ends[1].open {
			continue
		}
		live = append(live, c)
		sc := spec.Conn{ID: c.id}
		for s := range c.ends {
			e := &c.ends[s]
			sc.Ends[s] = spec.End{Node: w.endName(c, s), Incarnation: e.inc, Open: e.open}
		}
		w.snap.Conns = append(w.snap.Conns, sc)
	}
	for i := len(live); i < len(w.conns); i++ {
		w.conns[i] = nil
	}
	w.conns = live
	return &w.snap
}

// Snapshot returns the current state of every node and connection.
func (w *World) Snapshot() *spec.Snapshot {
	w.refreshAll()
	return w.snapshot()
}

// checkSafety runs the safety invariants after a step of n.
func (w *World) checkSafety(n *process) {
	w.refresh(n)
	s := w.snapshot()
	err := spec.CheckSafety(s)
	if len(w.adv) > 0 {
		err = errors.Join(err, spec.CheckAdversary(s))
	}
	if err != nil {
		w.fail(fmt.Errorf("safety violated after %s stepped: %w", n.id, err))
		return
	}
	w.checkedSafety()
}

// checkedSafety records that spec.CheckSafety found nothing: the views of
// the nodes refreshed since the previous check are now as they were then
// (spec.Snapshot.Unchanged), until a refresh re-reads one.
func (w *World) checkedSafety() {
	for _, i := range w.changed {
		w.snap.Unchanged[i] = true
	}
	w.changed = w.changed[:0]
}

// crash discards n's fsm; its ends close, and the peers see a reset or,
// when silent, nothing at all.
func (w *World) crash(n *process, silent bool) {
	if !n.alive {
		return
	}
	w.steps++
	w.lost.Exempt(n.id, "", fmt.Sprintf("%s inc %d crashed at %v", n.id, n.inc, w.now))
	w.remember(n, crashEvent{silent}, 0, nil, nil)
	w.stats.Crashes++
	n.alive = false
	for _, l := range sortedConnIDs(n.conns) {
		c := n.conns[l]
		c.ends[int(l%2)].open = false
		if silent {
			c.silent = true
			c.ep++
		} else {
			w.resetConn(c)
		}
	}
	clear(n.conns)
	k := n.fsm.Counters()
	w.stats.PauseGraces += int(k.PauseGraces)
	w.stats.WindowsGrown += int(k.WindowsGrown)
	n.fsm, n.link, n.alive, n.tickSet = nil, nil, false, false
	n.dirty = true
	w.refresh(n)
	if w.trace != nil {
		w.trace.crash(w, n)
	}
	w.fail(errors.Join(spec.CheckSafety(w.snapshot())))
}

// restart brings n back with a new incarnation at the same address, and
// re-issues its user's Connect and keep commands.
func (w *World) restart(n *process) {
	if n.alive {
		return
	}
	w.stats.Restarts++
	if err := w.start(n, n.inc+1); err != nil {
		w.fail(err)
		return
	}
	for _, addr := range slices.Sorted(maps.Keys(n.connectAddrs)) {
		n.nextReq++
		w.step(n, fsm.Connect{Req: n.nextReq, Addr: addr})
	}
	for _, id := range slices.Sorted(maps.Keys(n.keeps)) {
		w.step(n, fsm.SetKeep{Peer: id, Keep: true})
	}
}

// crashEvent marks a crash in the recent-steps ring; it is not an fsm event.
type crashEvent struct{ silent bool }

func (e crashEvent) String() string {
	if e.silent {
		return "crash (silent)"
	}
	return "crash (reset)"
}
