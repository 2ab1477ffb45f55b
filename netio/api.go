package netio

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/masterless-go/masterless/fsm"
	"github.com/masterless-go/masterless/wire"
)

// Send accepts payload for peer without ever waiting on a v2 session: it
// returns nil once the node holds its own copy, which it sends within the
// credit the peer grants and keeps until the peer acknowledges it; otherwise
// an error wrapping fsm.ErrUnknownPeer, fsm.ErrNotConnected,
// fsm.ErrQueueFull (the messages not yet acknowledged fill the queue: retry,
// or wait for room with SendContext), fsm.ErrPayloadTooLarge or
// fsm.ErrClosed. payload may be reused at once.
//
// On a session with a masterless 0.4.1 peer, which has no credit, Send waits
// while that connection's output buffer holds more than Config.SendBuffer
// bytes, until the writer has drained it or the connection closes (a peer
// that reads nothing is closed after the peer timeout): after adding its
// message if that passed the bound, and before adding it if another send's
// had (waitGates), so the buffer holds at most the bound and one message.
//
// Within the room a lease holds for answers (fsm/lease.go, "Room for
// answers"), while the session's writer is busy, the message is staged in
// the peer's lane instead, with no core lock and no step, as SendContext's
// are: a stream of answers from the callbacks (an echo) then costs a lane's
// append each, and the writer admits them with the producers' messages.
func (n *Runtime) Send(peer string, payload []byte) error {
	if n.answerLanes.Load() > 0 {
		if l, _ := n.laneOf(peer); l != nil && l.stageAnswer(payload) {
			return nil
		}
	}
	n.mu.Lock()
	if !n.waitGates(context.Background(), peer) {
		n.mu.Unlock()
		return fsm.ErrClosed
	}
	// After what its producers staged (lane.go), in the same step.
	after, l := n.stagedFor(peer)
	n.allowInline(maxInline, inlineSend) // inline.go
	err := n.link.SendAfter(n.sendTime(), peer, payload, after)
	n.noInline()
	if after != nil {
		l.giveBack(after.Frames, after.Runs)
	}
	n.settleAndWait(context.Background())
	return err
}

// SendContext is Send for a producer that can wait: while peer's queue is
// full it waits for room, until ctx is done (its error is returned) or the
// node closes. It leaves alone the room kept for answers sent from event
// callbacks, and waits while the peer says its answers to this node back
// up (fsm/stream.go, "Room for answers"). Called from an event handler it
// never waits: where it would, it returns the refusal (fsm.ErrQueueFull),
// since a handler waiting for room could wait for itself (the room comes
// from the peer's acknowledgements, which may wait for this node's
// handlers).
func (n *Runtime) SendContext(ctx context.Context, peer string, payload []byte) error {
	if l, again := n.laneOf(peer); l != nil && n.stageOrYield(l, payload, again) {
		return nil // within the lease: its writer admits it (lane.go)
	}
	for {
		n.mu.Lock()
		if !n.waitGates(ctx, peer) {
			closed := n.closed
			n.mu.Unlock()
			if closed {
				return fsm.ErrClosed
			}
			return fmt.Errorf("masterless: sending to %s: %w", peer, ctx.Err())
		}
		n.admitPeer(peer)
		// The channel before the step: a refusal that ends a lease tells
		// of the room it frees in the same step (fsm/lease.go).
		room := n.room
		// Accepted, it may grant a lease: the next ones take the lane.
		err := n.link.SendReserve(n.sendTime(), peer, payload)
		if !errors.Is(err, fsm.ErrQueueFull) {
			n.settleAndWait(ctx)
			return err
		}
		n.settle()
		n.mu.Unlock()
		if n.disp.onDispatcher() {
			return fmt.Errorf("masterless: sending to %s: %w %s", peer, err, noWaitInHandler)
		}
		select {
		case <-room:
		case <-ctx.Done():
			return fmt.Errorf("masterless: sending to %s: %w (%w)", peer, ctx.Err(), err)
		case <-n.done:
			return fsm.ErrClosed
		}
	}
}

// SendMany sends payload to each of peers, encoding it once (see
// link.Layer.SendMany). It returns how many peers accepted it (see Send),
// with the same backpressure.
func (n *Runtime) SendMany(peers []string, payload []byte) int {
	n.mu.Lock()
	if !n.waitGates(context.Background(), peers...) {
		n.mu.Unlock()
		return 0
	}
	for _, p := range peers {
		n.admitPeer(p)
	}
	sent := n.link.SendMany(n.sendTime(), peers, payload)
	n.settleAndWait(context.Background())
	return sent
}

// SendManyContext is SendMany for a producer that can wait: it sends payload
// to every peer in peers, waiting for room where a queue is full, until ctx
// is done or the node closes. It returns the number sent and the first
// error other than a full queue (an unknown peer, say); the other peers
// still get the payload. Each try is one step of the state machine
// (fsm.SendMany) for all the peers still to send to, the payload encoded
// once. Called from an event handler it never waits, as SendContext.
func (n *Runtime) SendManyContext(ctx context.Context, peers []string, payload []byte) (int, error) {
	pending := peers // the caller's until a queue is full: then a copy of ours
	sent := 0
	if len(payload) < fsm.SharedMin && len(peers) > 0 {
		// Within the peers' leases: their lanes (stageMany). (No peers:
		// the step, which tells a closed node.)
		sent, pending = n.stageMany(peers, payload)
		if len(pending) == 0 {
			return sent, nil
		}
	}
	var first error
	for {
		n.mu.Lock()
		if !n.waitGates(ctx, pending...) {
			closed := n.closed
			n.mu.Unlock()
			if closed {
				return sent, withFirst(fsm.ErrClosed, first)
			}
			return sent, withFirst(fmt.Errorf("masterless: sending to %d peers: %w", len(pending), ctx.Err()), first)
		}
		for _, p := range pending {
			n.admitPeer(p)
		}
		if cap(n.manyErrs) < len(pending) {
			n.manyErrs = make([]error, len(pending))
		}
		errs := n.manyErrs[:len(pending)] // cleared below: it keeps no error past the call
		room := n.room                    // before the step, as in SendContext
		_ = n.link.Step(n.sendTime(), fsm.SendMany{Peers: pending, Payload: payload, Reserve: true, Errs: errs})
		var rest []string
		for i, err := range errs {
			switch {
			case err == nil:
				sent++
			case errors.Is(err, fsm.ErrQueueFull):
				if rest == nil {
					rest = make([]string, 0, len(pending)-i)
				}
				rest = append(rest, pending[i])
			case first == nil:
				first = err
			}
		}
		clear(errs)
		pending = rest
		if len(pending) == 0 {
			n.settleAndWait(ctx)
			return sent, first
		}
		n.settle()
		n.mu.Unlock()
		if n.disp.onDispatcher() {
			return sent, withFirst(fmt.Errorf("masterless: sending to %d peers: %w %s", len(pending), fsm.ErrQueueFull, noWaitInHandler), first)
		}
		select {
		case <-room:
		case <-ctx.Done():
			return sent, withFirst(fmt.Errorf("masterless: sending to %d peers: %w (%w)", len(pending), ctx.Err(), fsm.ErrQueueFull), first)
		case <-n.done:
			return sent, withFirst(fsm.ErrClosed, first)
		}
	}
}

// stageMany stages payload in the lane of each of peers whose lease has
// room, as SendContext's fast path does, its DATA frame encoded once for
// all of them (a payload below fsm.SharedMin, which each peer's stream
// copies anyway: the state machine grants a producer's SendMany of it a
// lease, fsm/lease.go). A list sent to over and over has a fan, which
// stages the frame once for all its peers (fan.go); where the fan cannot,
// even after renewFan, the frame goes lane by lane. It returns how many it
// staged, and the peers it did not, in their order (nil when none: no step
// is needed), for the state machine's step.
func (n *Runtime) stageMany(peers []string, payload []byte) (int, []string) {
	var buf [wire.HeaderSize + fsm.SharedMin]byte // on the stack: stageFrame copies it
	frame := wire.AppendData(buf[:0], payload)
	m := n.lanesFor(peers)
	if f := m.fanOf(n); f != nil {
		r := f.stage(frame, len(payload))
		if r == fanFull && n.renewFan(f) {
			// The leases' room was used up before the writers renewed
			// it: admitted and renewed them all in one hold of the
			// core lock.
			r = f.stage(frame, len(payload))
		}
		if r == fanStaged {
			return len(peers), nil
		}
	}
	stale := false
	staged := 0
	var rest []string
	for i, p := range peers {
		l := m.lanes[i]
		if l != nil {
			if ok, _ := l.stageFrame(frame, payload); ok {
				staged++
				continue
			}
		}
		// No lane when m was made, or its lease since revoked: the map's
		// lane, if another.
		if v, ok := n.lanes.Load(p); ok && v.(*lane) != l {
			stale = true
			if ok, _ := v.(*lane).stageFrame(frame, payload); ok {
				staged++
				continue
			}
		}
		if rest == nil {
			rest = make([]string, 0, len(peers)-i)
		}
		rest = append(rest, p)
	}
	if stale {
		n.manyLanes.CompareAndSwap(m, nil) // the next call looks them up again
	}
	return staged, rest
}

// manyLanes is the lane of each of a SendManyContext's peers, nil for a
// peer without one, as stageMany found them: a producer sends to the same
// peers over and over, and comparing ids costs less than a lookup each (a
// sixth of the fan-out producer's CPU). A lane revoked since has no lease,
// so staging in it fails, and stageMany looks again. It is never changed
// once stored (producers share it). A producer that alternates between
// lists pays a lookup for each peer and one manyLanes a call.
type manyLanes struct {
	// peers are the ids, none of them the caller's: the caller may reuse
	// its slice, and an id may be cut from a larger string that the node
	// must not keep alive. A peer's is its lane's id, or a clone.
	peers []string
	lanes []*lane
	// fan stages for them all once they were sent to fanAfter times
	// (fan.go), when every peer has a lane.
	fan  atomic.Pointer[fan]
	uses atomic.Int32
}

// fanAfter is how many SendManyContext calls to one list of peers in a row
// make a fan for it: a producer that alternates between lists keeps
// staging lane by lane, where a fan made at each call would find the
// lanes in the other list's.
const fanAfter = 16

// fanOf returns m's fan, made once the list was sent to fanAfter times,
// or nil.
func (m *manyLanes) fanOf(n *Runtime) *fan {
	if f := m.fan.Load(); f != nil || len(m.lanes) < 2 {
		return f
	}
	if m.uses.Add(1) != fanAfter || slices.Contains(m.lanes, nil) || hasRepeat(m.lanes) {
		return nil // a lane twice in a list would take two slots of the fan
	}
	f := newFan(m.lanes)
	m.fan.Store(f)
	n.fansMade.Add(1)
	return f
}

// lanesFor returns the lanes toward peers: those stageMany found last if
// its peers were the same, else those of the map now, kept for the next.
func (n *Runtime) lanesFor(peers []string) *manyLanes {
	if m := n.manyLanes.Load(); m != nil && slices.Equal(m.peers, peers) {
		return m
	}
	m := &manyLanes{peers: make([]string, len(peers)), lanes: make([]*lane, len(peers))}
	for i, p := range peers {
		if v, ok := n.lanes.Load(p); ok {
			l := v.(*lane)
			m.lanes[i], m.peers[i] = l, l.peer
		} else {
			m.peers[i] = strings.Clone(p)
		}
	}
	n.manyLanes.Store(m)
	return m
}

// withFirst is err, the reason SendManyContext stopped waiting, wrapping
// also first, the first error other than a full queue it met before (an
// unknown peer, say), which the caller is promised; err alone without one.
func withFirst(err, first error) error {
	if first == nil {
		return err
	}
	return fmt.Errorf("%w; before that: %w", err, first)
}

// settleAndWait settles, drops n.mu and waits on every connection the
// caller's step left over its send bound, until ctx is done: the message is
// in the output buffer already (a 0.4.1 session has no credit), so the end
// of ctx ends the wait, not the send.
func (n *Runtime) settleAndWait(ctx context.Context) {
	if len(n.full) == 0 {
		n.settle()
		n.unlockInline()
		return
	}
	var full []*conn
	for _, c := range n.full {
		if !n.link.FlowControlled(c.id) {
			full = append(full, c) // a 0.4.1 session: no credit bounds it
			if !c.gated {
				c.gated = true // the next sends to it wait first (waitGates)
				n.gated++
			}
		}
	}
	n.settle()
	n.unlockInline()
	for _, c := range full {
		c.waitSpace(ctx)
	}
}

// Connect dials addr (tcp://host:port), waits for the handshake and returns
// the id of the node there, which is now kept. If a session with that node
// already exists, Connect returns its id at once. A dial that turns out to
// duplicate the pair's session is not an error. Cancelling ctx abandons the
// wait (the node stays kept if it was reached).
func (n *Runtime) Connect(ctx context.Context, addr string) (string, error) {
	if _, err := ParseAddr(addr); err != nil {
		return "", err
	}
	ch := make(chan connectResult, 1)
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return "", fsm.ErrClosed
	}
	n.nextReq++
	id := n.nextReq
	n.reqs[id] = ch
	err := n.link.Step(n.now(), fsm.Connect{Req: id, Addr: addr})
	n.settle()
	if err != nil {
		delete(n.reqs, id)
		n.mu.Unlock()
		return "", err
	}
	n.mu.Unlock()
	select {
	case r := <-ch:
		return r.peer, r.err
	case <-ctx.Done():
		n.mu.Lock()
		if n.reqs[id] != nil {
			delete(n.reqs, id)
			if !n.closed {
				_ = n.link.Step(n.now(), fsm.CancelConnect{Req: id})
				n.settle()
			}
		}
		n.mu.Unlock()
		select {
		case r := <-ch: // it finished while we were cancelling
			return r.peer, r.err
		default:
		}
		return "", fmt.Errorf("masterless: connecting to %s: %w", addr, ctx.Err())
	}
}

// userStep steps a user command that may be refused.
func (n *Runtime) userStep(ev fsm.Event) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return fsm.ErrClosed
	}
	err := n.link.Step(n.now(), ev)
	n.settle()
	return err
}

// Disconnect closes the session with peer (BYE normal) and stops keeping it.
func (n *Runtime) Disconnect(peer string) error {
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return fsm.ErrClosed
	}
	n.admitPeer(peer)                    // what its producers staged is queued, then handed back as lost
	n.allowInline(maxInline, inlineOnce) // the goodbye (inline.go)
	err := n.link.Step(n.now(), fsm.Disconnect{Peer: peer})
	n.noInline()
	n.settle()
	n.unlockInline()
	return err
}

// SetKeep sets whether the node reconnects to peer when its session ends.
func (n *Runtime) SetKeep(peer string, keep bool) error {
	return n.userStep(fsm.SetKeep{Peer: peer, Keep: keep})
}

// IsKept reports whether the node keeps peer.
func (n *Runtime) IsKept(peer string) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.fsm.IsKept(peer)
}

// Sessions returns the sorted ids of the peers that have a session, as the
// user sees them: a session this node leads shows once the follower
// confirmed it (fsm.Node.ListedSessions).
func (n *Runtime) Sessions() []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.fsm.ListedSessions()
}

// PeerStats describes one peer a Runtime knows: what the state machine
// counts (fsm.PeerStatus) and what only the socket knows.
type PeerStats struct {
	fsm.PeerStatus
	fsm.PeerCounters
	// SessionAge is how long the current session has lasted; 0 without one.
	SessionAge time.Duration
	// LastEndTime is when the last session ended (LastEnd); zero if none did.
	LastEndTime time.Time
	// LocalAddr and RemoteAddr are the ends of the session's TCP
	// connection; nil without a session.
	LocalAddr, RemoteAddr net.Addr
	// WireIn and WireOut are the bytes read from and written to the
	// session's connection so far (preamble, handshake, framing and control
	// frames included; with TLS, the plaintext the layer reads and writes);
	// 0 without a session.
	WireIn, WireOut uint64
}

// Stats is a snapshot of a Runtime: its peers, sorted by id, how many
// connections are still handshaking, the state machine's node-wide counts
// and the bytes of every socket.
type Stats struct {
	Peers       []PeerStats
	Handshaking int
	Counters    fsm.NodeCounters
	// Connecting lists the addresses kept without a peer (fsm.Node.KeptAddresses).
	Connecting []string
	// WireIn and WireOut are the bytes read from and written to every
	// connection since Start (with TLS, the plaintext; see PeerStats).
	WireIn, WireOut uint64
}

// Stats returns a snapshot of the node's peers, connections and counts.
func (n *Runtime) Stats() Stats {
	n.mu.Lock()
	defer n.mu.Unlock()
	if !n.closed {
		n.admitAll() // the producers' staged messages count as queued (lane.go)
		n.settle()
	}
	now := n.now()
	st := Stats{Handshaking: n.fsm.Handshaking(), Counters: n.fsm.Counters(), Connecting: n.fsm.KeptAddresses(), WireIn: n.wireIn, WireOut: n.wireOut}
	for c := range n.live {
		st.WireIn += c.bytesIn.Load()
		st.WireOut += c.bytesOut.Load()
	}
	peers, ended := n.fsm.Peers(), []fsm.PeerCounters(nil)
	if n.closed {
		peers, ended = n.fsm.EndedPeers() // the records as Close left them
	}
	for i, p := range peers {
		ps := PeerStats{PeerStatus: p}
		if ended != nil {
			ps.PeerCounters = ended[i]
		} else {
			ps.PeerCounters, _ = n.fsm.PeerCounters(p.ID)
		}
		if ps.LastEnd != nil {
			ps.LastEndTime = n.start.Add(ps.LastEndAt)
		}
		// The session the user's views show (fsm.PeerCounters.ListedConn),
		// not one the peer may still refuse (README, "Every wait is bounded").
		if c := n.conns[ps.ListedConn]; c != nil && ps.ListedConn != 0 {
			ps.SessionAge = now - ps.Since
			ps.Incarnation = ps.SessionIncarnation
			ps.LocalAddr, ps.RemoteAddr = c.nc.LocalAddr(), c.nc.RemoteAddr()
			ps.WireIn, ps.WireOut = c.bytesIn.Load(), c.bytesOut.Load()
		}
		st.Peers = append(st.Peers, ps)
	}
	return st
}

// noWaitInHandler ends the error of a SendContext or SendManyContext that an
// event handler called and that would have waited for room: it returns the
// refusal instead.
const noWaitInHandler = "(called from an event handler, which must not wait for room: the room comes from the peer's acknowledgements, and those may wait for this node's handlers)"

// waitGates runs, with n.mu held, before a send to peers adds anything:
// while the session of one of them is a 0.4.1 one whose output buffer is
// over its bound (gated by the send that passed it, settleAndWait), it drops
// n.mu, waits for room there, and takes n.mu again. So a message to a 0.4.1
// peer is added only while its buffer is within the bound, and the buffer
// holds at most the bound and one message, however many goroutines send at
// once: each used to add its message before it waited (a black-box audit:
// 32 goroutines sending 1 MiB each put 35 MiB in a buffer bound to 4 MiB).
// It returns false, n.mu held, if the node is closed or ctx ended.
func (n *Runtime) waitGates(ctx context.Context, peers ...string) bool {
	for !n.closed {
		c := n.gatedConn(peers)
		if c == nil {
			return true
		}
		n.mu.Unlock()
		c.waitSpace(ctx)
		n.mu.Lock()
		if ctx.Err() != nil {
			return false
		}
	}
	return false
}

// gatedConn returns the session of one of peers that is gated and still
// over its bound, and ungates those no longer over it (called with n.mu
// held). Without a gated connection it looks nothing up.
func (n *Runtime) gatedConn(peers []string) *conn {
	if n.gated == 0 {
		return nil
	}
	for _, p := range peers {
		id, ok := n.fsm.SessionConn(p)
		if !ok {
			continue
		}
		c := n.conns[id]
		if c == nil || !c.gated {
			continue
		}
		c.wmu.Lock()
		over := len(c.out) > n.cfg.SendBuffer && c.state == connOpen
		c.wmu.Unlock()
		if over {
			return c
		}
		c.gated = false
		n.gated--
	}
	return nil
}

// hasRepeat reports whether a lane is in lanes twice.
func hasRepeat(lanes []*lane) bool {
	seen := make(map[*lane]bool, len(lanes))
	for _, l := range lanes {
		if seen[l] {
			return true
		}
		seen[l] = true
	}
	return false
}
