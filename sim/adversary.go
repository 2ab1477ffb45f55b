package sim

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"time"

	"github.com/masterless-go/masterless/fsm"
	"github.com/masterless-go/masterless/spec"
	"github.com/masterless-go/masterless/wire"
)

// Authentication and the adversary (spec/PROTOCOL.md, 7 and 7.1).
//
// With Knobs.Auth, every honest node runs with fsm.Config.RequireAuth and the
// simulated network plays the part of TLS with one key per process: the
// network knows which process holds which key, so each end of a connection
// between two honest processes is reported to its connection layer (and so
// to its fsm, as Accepted.Peer and Dialed.Peer) with the id of the process
// at the other end.
//
// An adversary is a process that is not an honest member: it has no fsm and
// is not among the snapshot's nodes, so the checkers of package spec see its
// connection ends as held by a process no honest id belongs to. Every
// AttackEvery or so it opens a connection to a random honest node and writes
// a script of frames on it, built with package wire:
//
//   - forge: a HELLO naming a random honest id (sometimes the target's own)
//     with a larger incarnation than that node's, then what the target would
//     need to make the connection that id's session (WELCOME if the target
//     follows, JOIN if it leads), then RESUME, ACK and DATA;
//   - replay: a HELLO recorded from an honest connection, then frames of
//     every type recorded from honest connections (JOIN, WELCOME, DATA, ACK,
//     RESUME, KEEP, BYE, PING), in random order;
//   - insider: its connections authenticate as its own id (x1, x2, ...): a
//     trusted member with a key of its own that forges other ids in its
//     HELLOs. An outsider's connections are plaintext (no id), as a TLS
//     handshake without a trusted key would leave them.
//   - idle: connections that say nothing at all (an idle flood): each holds
//     one of the target's handshake slots (spec/PROTOCOL.md, 3.6) until it
//     is closed or evicted. DrawAdversaryKnobs never draws it (the sweeps'
//     seeds are what they were before it); -attacks=idle asks for it, with
//     a short -attackevery to fill the slots.
//
// It writes in up to three segments, some round trips apart, and closes the
// connection within a handshake timeout. It never reads: the frames it needs
// come from the honest connections, which it watches (replay) or knows the
// shape of (forge). Its attacks stop with the safety phase.
//
// What it must never achieve is spec.NoImpersonation (checked after every
// step) and spec.NoEviction (checked on every session an honest node
// closes); without faults, it must change nothing the honest users see
// (TestSweepAdversaryChangesNothing). A world with adversaries needs Auth: without it the adversary wins
// at once, which is the negative control (TestSweepCatchesUnauthenticated),
// and only a test can ask for it (Options.unauthAdversary, export_test.go).

// Attack is one kind of adversary behaviour; Knobs.Attacks is a set of them.
type Attack uint8

// The attack kinds.
const (
	AttackForge   Attack = 1 << iota // HELLOs forging honest ids with larger incarnations
	AttackReplay                     // frames recorded from honest connections
	AttackInsider                    // authenticated as its own id (a trusted key), forging others in HELLO
	AttackIdle                       // connections that say nothing, holding handshake slots
	attackEnd
)

var attackNames = []string{"forge", "replay", "insider", "idle"}

// String lists the attack kinds in a, comma-separated, as -attacks reads them.
func (a Attack) String() string { return flagNames(uint(a), attackNames) }

// ParseAttacks parses a comma-separated list of attack names ("none" or ""
// for none, "all" for all).
func ParseAttacks(s string) (Attack, error) {
	a, err := parseFlags(s, "attack", attackNames)
	return Attack(a), err
}

// DrawAdversaryKnobs is DrawKnobs(seed) with authentication on and one or
// two adversaries drawn from a stream of their own (so the rest of the knobs
// are the seed's usual ones): forging, replaying or both, outsiders or
// insiders.
func DrawAdversaryKnobs(seed uint64) Knobs {
	k := DrawKnobs(seed)
	c := NewPRNG(seed ^ 0x6164766572736172) // "adversar"
	k.Auth = true
	k.Adversaries = between(c, 1, 2)
	k.Attacks = Attack(between(c, 1, int(AttackInsider)<<1-1)) // forge, replay, insider: never idle
	if k.Attacks&(AttackForge|AttackReplay) == 0 {
		k.Attacks |= AttackForge
	}
	k.AttackEvery = between(c, 10*time.Millisecond, time.Second)
	return k
}

// checkAdversaryKnobs refuses adversaries in a world without authentication,
// unless a test asks for exactly that (the negative control).
func checkAdversaryKnobs(k Knobs, opt Options) error {
	switch {
	case k.Adversaries < 0:
		return fmt.Errorf("sim: negative number of adversaries %d", k.Adversaries)
	case k.Adversaries > 0 && k.Attacks&(AttackForge|AttackReplay|AttackIdle) == 0:
		return fmt.Errorf("sim: adversaries need an attack: -attacks=forge, replay, idle or several (insider is a property of the first two)")
	case k.Adversaries > 0 && k.AttackEvery <= 0:
		return fmt.Errorf("sim: adversaries need -attackevery > 0")
	case k.Adversaries > 0 && !k.Auth && !opt.unauthAdversary:
		return fmt.Errorf("sim: adversaries need -auth=true (without authentication they win at once: only the negative control runs that)")
	}
	return nil
}

// adversary is one adversary process.
type adversary struct {
	id string // x1, x2, ...: never an honest id
}

// AdversaryStats counts what the adversaries did, so that a green sweep is
// not green for want of attacks.
type AdversaryStats struct {
	Conns   int // connections opened to honest nodes
	Frames  int // frames written on them
	Refused int // of those connections, closed by an honest node for failing authentication (ErrUnauthenticated, ErrIDMismatch)
	Evicted int // of those connections, evicted by an honest node whose handshake slots were full (ErrEvicted)
}

// Add adds o to s.
func (s *AdversaryStats) Add(o *AdversaryStats) {
	s.Conns += o.Conns
	s.Frames += o.Frames
	s.Refused += o.Refused
	s.Evicted += o.Evicted
}

// recordedPerType bounds the frames of each type kept for replay.
const recordedPerType = 16

// recorder keeps the latest frames honest nodes received on honest
// connections, by type, for the adversaries to replay.
type recorder struct {
	frames [wire.LastType + 1][]wire.Frame
	next   [wire.LastType + 1]int
}

func (r *recorder) add(f *wire.Frame) {
	t := f.Type
	if t > wire.LastType {
		return
	}
	g := *f
	g.Payload = slices.Clone(f.Payload) // the connection layer reuses its buffer
	if len(r.frames[t]) < recordedPerType {
		r.frames[t] = append(r.frames[t], g)
		return
	}
	r.frames[t][r.next[t]] = g
	r.next[t] = (r.next[t] + 1) % recordedPerType
}

// any returns a recorded frame of one of types (nil if none is recorded).
func (r *recorder) any(c Chooser, types ...wire.Type) *wire.Frame {
	var all []*wire.Frame
	for _, t := range types {
		for i := range r.frames[t] {
			all = append(all, &r.frames[t][i])
		}
	}
	if len(all) == 0 {
		return nil
	}
	return all[c.Intn(len(all))]
}

// startAdversaries creates the adversaries and schedules their first attacks.
// Every draw of theirs, and the latency of their connections, comes from a
// generator of their own (w.advC), so that the honest nodes draw exactly
// what they would draw without them: with authentication and no faults,
// their run must be the same (TestSweepAdversaryChangesNothing).
func (w *World) startAdversaries() {
	if w.k.Adversaries == 0 {
		return
	}
	w.advC = NewPRNG(w.k.Seed ^ 0x78616476) // "xadv"
	for i := range w.k.Adversaries {
		a := &adversary{id: fmt.Sprintf("x%d", i+1)}
		w.adv = append(w.adv, a)
		w.schedule(event{at: w.now + w.advInterval(), kind: evFunc, fn: func() { w.attack(a) }})
	}
}

// advInterval draws the wait before an adversary's next connection.
func (w *World) advInterval() time.Duration { return between(w.advC, 1, 2*w.k.AttackEvery) }

// connLatency draws one one-way delay on c: from the adversaries' generator
// on theirs.
func (w *World) connLatency(c *simConn) time.Duration {
	if c.ends[0].adv != nil {
		return w.k.Latency + between(w.advC, 0, w.k.Jitter) + 1
	}
	return w.latency()
}

// authAs is the id a connection end is reported authenticated as when the
// process at its other end is p: p's own with Auth, none without.
func (w *World) authAs(p *process) string {
	if w.k.Auth {
		return p.id
	}
	return ""
}

// attack opens one adversary connection to a random honest node and
// schedules its script and its close.
func (w *World) attack(a *adversary) {
	if w.phase != PhaseSafety {
		return
	}
	w.schedule(event{at: w.now + w.advInterval(), kind: evFunc, fn: func() { w.attack(a) }})
	t := w.nodes[w.advC.Intn(len(w.nodes))]
	if !t.alive {
		return
	}
	segs := w.script(t)
	w.nextG++
	w.stats.Adversary.Conns++
	c := &simConn{id: w.nextG}
	// The adversary's end names the target as its node only so that the
	// network's bookkeeping (partitions, resets) has an index; adv marks it.
	c.ends[0] = simEnd{node: t.idx, open: true, adv: a}
	c.ends[1] = simEnd{node: t.idx, inc: t.inc, open: true, known: true}
	w.conns = append(w.conns, c)
	t.conns[localID(c.id, 1)] = c
	peer := ""
	if w.k.Attacks&AttackInsider != 0 && w.k.Auth {
		peer = a.id // a trusted key of its own: authenticated as itself
	}
	rtt := 2 * (w.k.Latency + w.k.Jitter)
	at := w.now
	for i, seg := range segs {
		if i > 0 {
			at += between(w.advC, 0, 2*rtt+1)
		}
		w.schedule(event{at: at, kind: evFunc, fn: func() { w.advWrite(c, seg, i == 0) }})
	}
	w.schedule(event{at: at + between(w.advC, 0, w.handshakeTimeout()), kind: evFunc, fn: func() { w.closeEnd(c, 0) }})
	t.link.IncomingAuth(w.now, localID(c.id, 1), a.id, peer) // its simulated host is its id
}

// advWrite sends frames from the adversary's end of c, if still open, after
// the preamble if first.
func (w *World) advWrite(c *simConn, frames []wire.Frame, first bool) {
	e := &c.ends[0]
	if !e.open {
		return
	}
	var codec wire.Binary
	if first {
		e.wbuf = codec.AppendPreamble(e.wbuf)
	}
	for i := range frames {
		b, err := codec.AppendFrame(e.wbuf, &frames[i])
		if err != nil {
			w.fail(fmt.Errorf("sim: adversary frame %s does not encode: %w", frames[i].String(), err))
			return
		}
		e.wbuf = b
	}
	w.stats.Adversary.Frames += len(frames)
	e.wctl = true
	w.sendBytes(c, 0)
}

// script draws what the adversary writes on a connection to t, in segments
// (none on an idle connection).
func (w *World) script(t *process) [][]wire.Frame {
	kinds := []Attack{}
	for _, k := range []Attack{AttackForge, AttackReplay, AttackIdle} {
		if w.k.Attacks&k != 0 {
			kinds = append(kinds, k)
		}
	}
	var segs [][]wire.Frame
	switch kinds[w.advC.Intn(len(kinds))] {
	case AttackIdle:
		return nil
	case AttackForge:
		v := w.nodes[w.advC.Intn(len(w.nodes))]
		inc := v.inc + uint64(between(w.advC, 1, 1000))
		if w.advC.Intn(8) == 0 {
			inc = uint64(between(w.advC, 0, int(v.inc))) // now and then an old or equal one
		}
		hello := wire.Frame{Type: wire.Hello, ID: v.id, Incarnation: inc, Info: v.addr, MaxFrame: wire.DefaultMaxFrameSize}
		segs = append(segs, []wire.Frame{hello})
		var claim wire.Frame
		if t.id > v.id {
			claim = wire.Frame{Type: wire.Join, Keep: true} // t leads: it grants on HELLO or JOIN
		} else {
			claim = wire.Frame{Type: wire.Welcome, Sess: uint64(between(w.advC, 1, 1<<20)), Keep: true} // t follows: the grant
		}
		segs = append(segs, []wire.Frame{claim})
		tail := []wire.Frame{{Type: wire.Resume, Next: 1}, {Type: wire.Ack, Delivered: 0, Credit: 1 << 20}}
		if d := w.rec.any(w.advC, wire.Data); d != nil {
			tail = append(tail, *d)
		}
		segs = append(segs, tail)
	default:
		hello := w.rec.any(w.advC, wire.Hello)
		if hello == nil {
			v := w.nodes[w.advC.Intn(len(w.nodes))]
			hello = &wire.Frame{Type: wire.Hello, ID: v.id, Incarnation: v.inc, Info: v.addr}
		}
		segs = append(segs, []wire.Frame{*hello})
		for range between(w.advC, 1, 2) {
			var seg []wire.Frame
			for range between(w.advC, 1, 4) {
				if f := w.rec.any(w.advC, wire.Join, wire.Welcome, wire.Keep, wire.Ping, wire.Data, wire.Bye, wire.Ack, wire.Resume); f != nil {
					seg = append(seg, *f)
				}
			}
			if len(seg) > 0 {
				segs = append(segs, seg)
			}
		}
	}
	return segs
}

// watchAdversary runs after every step of an honest node n in a world with
// adversaries, before the snapshot is refreshed (so the cached view is the
// node before the step): it records the frames honest connections carry for
// replay, counts authentication refusals and evictions, and checks spec.NoEviction on
// every session the step closed.
func (w *World) watchAdversary(n *process, ev fsm.Event, acts []fsm.Action) {
	cause, causeSide := eventLocal(ev)
	var causeConn *simConn
	if cause != 0 {
		causeConn = w.connByID(globalOf(cause))
	}
	if fr, ok := ev.(fsm.FrameReceived); ok && causeConn != nil && causeConn.ends[1-causeSide].adv == nil {
		w.rec.add(&fr.Frame)
	}
	if dr, ok := ev.(fsm.DataReceived); ok && causeConn != nil && causeConn.ends[1-causeSide].adv == nil {
		eachData(dr.Frames, func(p []byte) { w.rec.add(&wire.Frame{Type: wire.Data, Payload: p}) })
	}
	view := &w.snap.Nodes[n.idx]
	for i := range acts {
		a := &acts[i]
		if a.Kind != fsm.ActClose {
			continue
		}
		c := w.connByID(globalOf(a.Conn))
		if c == nil {
			continue
		}
		side := int(a.Conn % 2)
		if c.ends[1-side].adv != nil && authError(a.Err) {
			w.stats.Adversary.Refused++
		}
		if c.ends[1-side].adv != nil && errors.Is(a.Err, fsm.ErrEvicted) {
			w.stats.Adversary.Evicted++
		}
		for _, p := range view.Peers {
			if p.SessionConn != a.Conn {
				continue
			}
			sc := spec.SessionClosed{Node: n.id, Peer: p.ID, Conn: c.id, PeerEnd: w.endName(c, 1-side), Err: a.Err}
			if causeConn != nil {
				sc.Cause, sc.CauseEnd = causeConn.id, w.endName(causeConn, 1-causeSide)
			}
			w.fail(spec.NoEviction(&w.snap, sc)) // its node list is the honest processes

		}
	}
}

// endName names the process holding side of c.
func (w *World) endName(c *simConn, side int) string {
	if a := c.ends[side].adv; a != nil {
		return a.id
	}
	return w.nodes[c.ends[side].node].id
}

// connByID finds connection g among those with an end still open (or closed
// during the current step): w.conns is in id order.
func (w *World) connByID(g spec.ConnID) *simConn {
	i := sort.Search(len(w.conns), func(i int) bool { return w.conns[i].id >= g })
	if i < len(w.conns) && w.conns[i].id == g {
		return w.conns[i]
	}
	return nil
}

// eventLocal returns the local id of the connection ev concerns and the side
// of it the node holds, or 0.
func eventLocal(ev fsm.Event) (fsm.ConnID, int) {
	var l fsm.ConnID
	switch e := ev.(type) {
	case fsm.FrameReceived:
		l = e.Conn
	case fsm.DataReceived:
		l = e.Conn
	case fsm.Incoming:
		l = e.Conn
	case fsm.Accepted:
		l = e.Conn
	case fsm.Dialed:
		l = e.Conn
	case fsm.Malformed:
		l = e.Conn
	case fsm.ConnClosed:
		l = e.Conn
	case fsm.FrameInProgress:
		l = e.Conn
	}
	return l, int(l % 2)
}

// authRefused reports whether acts close conn for failing authentication: a
// HELLO refused so is not taken, and the node learns no address from it.
func authRefused(conn fsm.ConnID, acts []fsm.Action) bool {
	for i := range acts {
		if a := &acts[i]; a.Kind == fsm.ActClose && a.Conn == conn && authError(a.Err) {
			return true
		}
	}
	return false
}

// authError reports whether err is a refusal by the authentication rule.
func authError(err error) bool {
	return errors.Is(err, fsm.ErrUnauthenticated) || errors.Is(err, fsm.ErrIDMismatch)
}
