package sim

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/masterless-go/masterless/fsm"
	"github.com/masterless-go/masterless/spec"
	"github.com/masterless-go/masterless/wire"
)

// record is one step in the ring of recent steps shown with a failure. It
// keeps the event and the actions themselves and renders them only when a
// failure is reported, so recording costs no formatting.
type record struct {
	step int
	at   time.Duration
	node string
	inc  uint64
	ev   any               // the event, unless it is a frame (see frame)
	fr   fsm.FrameReceived // the event when it is a frame: most steps, kept unboxed
	isFr bool
	g    spec.ConnID
	err  error
	acts []fsm.Action
	// bytes holds copies of the payloads in fr and acts: they alias the
	// connection layer's input buffer, which moves on.
	bytes []byte
}

// remember stores a step in the ring.
func (w *World) remember(n *simNode, ev any, g spec.ConnID, err error, acts []fsm.Action) {
	r := &w.ring[w.ringAt%len(w.ring)]
	w.ringAt++
	r.step, r.at, r.node, r.inc, r.g, r.err = w.steps, w.now, n.id, n.inc, g, err
	r.bytes = r.bytes[:0]
	if fr, ok := ev.(fsm.FrameReceived); ok {
		r.fr, r.isFr, r.ev = fr, true, nil
		r.fr.Frame.Payload = r.keep(fr.Frame.Payload)
	} else {
		r.ev, r.isFr = copyEvent(ev), false
	}
	r.acts = append(r.acts[:0], acts...)
	for i := range r.acts {
		if a := &r.acts[i]; a.Kind == fsm.ActMessage {
			a.Frame.Payload = r.keep(a.Frame.Payload)
		}
	}
}

// keep copies p into the record's own bytes. A record that outgrows its
// bytes gets a new array; the older copies keep theirs.
func (r *record) keep(p []byte) []byte {
	if len(p) == 0 {
		return p
	}
	if cap(r.bytes)-len(r.bytes) < len(p) {
		r.bytes = make([]byte, 0, max(2*cap(r.bytes), len(p), 256))
	}
	start := len(r.bytes)
	r.bytes = append(r.bytes, p...)
	return r.bytes[start:len(r.bytes):len(r.bytes)]
}

// copyEvent returns a copy of ev in a box of its own. Storing ev itself in
// the ring would make every event passed to World.step escape to the heap, a
// allocation per simulated step; copying the concrete value keeps the frame
// path, by far the most common, free of them.
func copyEvent(ev any) any {
	switch e := ev.(type) {
	case fsm.Incoming:
		return e
	case fsm.Accepted:
		return e
	case fsm.Dialed:
		return e
	case fsm.DialFailed:
		return e
	case fsm.Malformed:
		return e
	case fsm.ConnClosed:
		return e
	case fsm.Tick:
		return e
	case fsm.Listening:
		return e
	case fsm.Connect:
		return e
	case fsm.Disconnect:
		return e
	case fsm.SetKeep:
		return e
	case fsm.Send:
		return e
	case fsm.CancelConnect:
		return e
	case fsm.Shutdown:
		return e
	case crashEvent:
		return e
	}
	return note("(an event type copyEvent does not know: add it)")
}

// note is a ring entry that is not an fsm step: an injected fault.
type note string

func (n note) String() string { return string(n) }

// noteFault records an injected fault in the ring of recent steps.
func (w *World) noteFault(format string, args ...any) {
	r := &w.ring[w.ringAt%len(w.ring)]
	w.ringAt++
	*r = record{step: w.steps, at: w.now, node: "net", ev: note("FAULT " + fmt.Sprintf(format, args...)), acts: r.acts[:0]}
}

func (r *record) String() string {
	if n, ok := r.ev.(note); ok {
		return fmt.Sprintf("   %v %s", r.at, n)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "#%d %v %s/%d", r.step, r.at, r.node, r.inc)
	if r.g != 0 {
		fmt.Fprintf(&b, " g%d", r.g)
	}
	ev := r.ev
	if r.isFr {
		ev = r.fr
	}
	fmt.Fprintf(&b, " <- %s", eventString(ev))
	if r.err != nil {
		fmt.Fprintf(&b, " => error %v", r.err)
	}
	for i := range r.acts {
		a := &r.acts[i]
		s := a.String()
		if a.Conn != 0 {
			s = strings.Replace(s, fmt.Sprintf("c%d", a.Conn), fmt.Sprintf("g%d", globalOf(a.Conn)), 1)
		}
		if len(s) > 160 {
			s = s[:160] + "..."
		}
		fmt.Fprintf(&b, "\n      -> %s", s)
	}
	return b.String()
}

// Recent returns the last steps, oldest first, rendered for a report.
func (w *World) Recent() []string {
	var out []string
	for i := max(0, w.ringAt-len(w.ring)); i < w.ringAt; i++ {
		out = append(out, w.ring[i%len(w.ring)].String())
	}
	return out
}

// eventString renders an event with global connection ids.
func eventString(ev any) string {
	switch e := ev.(type) {
	case fsm.FrameReceived:
		return "FrameReceived " + e.Frame.String()
	case fsm.Incoming:
		return "Incoming"
	case fsm.Accepted:
		if e.Legacy {
			return "Accepted 0.4.1"
		}
		return "Accepted"
	case fsm.Dialed:
		return fmt.Sprintf("Dialed d%d", e.Dial)
	case fsm.DialFailed:
		return fmt.Sprintf("DialFailed d%d %v", e.Dial, e.Err)
	case fsm.Malformed:
		return fmt.Sprintf("Malformed %v", e.Err)
	case fsm.ConnClosed:
		return fmt.Sprintf("ConnClosed %v", e.Err)
	case fsm.Tick:
		return "Tick"
	case fsm.Listening:
		return "Listening " + e.Info
	case fsm.Connect:
		return fmt.Sprintf("Connect r%d %s", e.Req, e.Addr)
	case fsm.Disconnect:
		return "Disconnect " + e.Peer
	case fsm.SetKeep:
		return fmt.Sprintf("SetKeep %s %t", e.Peer, e.Keep)
	case fsm.Send:
		return fmt.Sprintf("Send %s %q", e.Peer, e.Payload)
	case fsm.CancelConnect:
		return fmt.Sprintf("CancelConnect r%d", e.Req)
	case fsm.Shutdown:
		return "Shutdown"
	case fmt.Stringer:
		return e.String()
	}
	return fmt.Sprintf("%T", ev)
}

// tracer writes the trace of a run in the NDJSON format of spec/TRACE.md,
// which tla/tracegen converts and tla/TraceMasterless.tla replays against
// the model of PROTOCOL.md. It maps the simulator's steps onto the kinds of
// TRACE.md:
//
//   - Steps that change nothing the model tracks write no line: Listening of
//     a first incarnation, Send, PING and DATA received, heartbeat Ticks, and
//     events for connections the node no longer holds.
//   - A Connect to the address of a known node names that node in "peer".
//     The fsm keeps the peer a Connect reaches only when the peer's HELLO
//     arrives on the dial (or at once if it has a session with it), and tells
//     it with KEEP if they have a session: exactly Keep(peer, true). So a
//     Connect that binds at once is a "keep" line if it sent KEEP, and a HELLO
//     that binds one is preceded by a "keep" line (the flag set, and the
//     KEEP sent, before the HELLO is handled, as in the fsm).
//   - A Tick that closes several connections is one "tick" line per
//     connection closed, with the intermediate states.
//   - A ConnClosed caused by a reset, and a Malformed stream, are "closed"
//     lines with "reset": the connection failed at this end, bytes in flight
//     may be lost (the model's fault of a live connection).
//   - A Dialed or Accepted the fsm refuses (abandoned dial, shutdown, too many
//     handshakes) opens the connection and closes it at once: two lines, the
//     open and a "tick" that closes it.
//   - Shutdown followed by the crash is the "crash" line; the restart's
//     Listening is the "restart" line.
//
// Every line lists every other node of the world in "peers", with the fsm's
// keep flag and the session (0 if none), so that the model's keep flags
// follow the fsm's exactly.
type tracer struct {
	enc      *json.Encoder
	line     int
	ids      []string
	prev     []traceState           // per node: the state its last line showed
	acceptor map[spec.ConnID]string // the node that accepted a connection, until the dialer hears Dialed
}

// traceState is one node's state as a line shows it.
type traceState struct {
	conns []traceConn
	keep  map[string]bool
	sess  map[string]spec.ConnID
}

func newTracer(out io.Writer) *tracer {
	return &tracer{enc: json.NewEncoder(out), acceptor: map[spec.ConnID]string{}}
}

// traceable reports whether the model can replay a run of k: not with
// nodes that dial in 0.4.1 (the model has no 0.4.1 connections) nor with a
// deliberately broken fsm.
func traceable(k Knobs) bool { return k.LegacyPM == 0 && k.Mutation == 0 }

// traceLine is one line of spec/TRACE.md.
type traceLine struct {
	Step   int         `json:"step"`
	T      int64       `json:"t"`
	Node   string      `json:"node"`
	Inc    uint64      `json:"inc"`
	Kind   string      `json:"kind"`
	Conn   spec.ConnID `json:"conn"`
	Dialer bool        `json:"dialer"`
	Reset  bool        `json:"reset,omitempty"`
	Peer   string      `json:"peer"`
	Frame  *traceFrame `json:"frame,omitempty"`
	Keep   bool        `json:"keep"`
	Conns  []traceConn `json:"conns"`
	Peers  []tracePeer `json:"peers"`
}

type traceFrame struct {
	Type   string `json:"type"`
	Sess   uint64 `json:"sess,omitempty"`
	Closed uint64 `json:"closed,omitempty"`
	Keep   bool   `json:"keep,omitempty"`
	Code   int    `json:"code,omitempty"`
}

type traceConn struct {
	Conn  spec.ConnID `json:"conn"`
	Peer  string      `json:"peer"`
	State string      `json:"state"`
	Sess  uint64      `json:"sess"`
	local fsm.ConnID  // the end: both ends of a self-dial are listed
}

type tracePeer struct {
	Peer    string      `json:"peer"`
	Keep    bool        `json:"keep"`
	Session spec.ConnID `json:"session"`
}

func (t *tracer) init(w *World) {
	if t.ids != nil {
		return
	}
	for _, n := range w.nodes {
		t.ids = append(t.ids, n.id)
		t.prev = append(t.prev, traceState{keep: map[string]bool{}, sess: map[string]spec.ConnID{}})
	}
}

// current is n's state after its step.
func (t *tracer) current(w *World, n *simNode) traceState {
	w.refresh(n)
	s := &w.snap.Nodes[n.idx]
	st := traceState{keep: map[string]bool{}, sess: map[string]spec.ConnID{}}
	for _, c := range s.Conns {
		if c.State == fsm.StateDetect {
			continue // its protocol not known yet: the model has no such state
		}
		st.conns = append(st.conns, traceConn{Conn: c.Global, Peer: c.Peer, State: c.State.String(), Sess: c.Sess, local: c.ID})
	}
	slices.SortFunc(st.conns, func(a, b traceConn) int { return cmp.Compare(a.local, b.local) })
	for _, p := range s.Peers {
		st.keep[p.ID], st.sess[p.ID] = p.Kept, p.SessionGlobal
	}
	return st
}

func (s traceState) has(local fsm.ConnID) bool {
	return slices.ContainsFunc(s.conns, func(c traceConn) bool { return c.local == local })
}

func (s traceState) clone() traceState {
	return traceState{conns: slices.Clone(s.conns), keep: maps.Clone(s.keep), sess: maps.Clone(s.sess)}
}

// same reports whether two states show the same thing to the model.
func (t *tracer) same(a, b traceState) bool {
	if !slices.Equal(a.conns, b.conns) {
		return false
	}
	for _, id := range t.ids {
		if a.keep[id] != b.keep[id] || a.sess[id] != b.sess[id] {
			return false
		}
	}
	return true
}

// emit writes one line for n showing st, which becomes n's last state.
func (t *tracer) emit(w *World, n *simNode, l traceLine, st traceState) {
	t.line++
	l.Step, l.T, l.Node = t.line, int64(w.now), n.id
	if l.Inc == 0 {
		l.Inc = n.inc
	}
	l.Conns = append([]traceConn{}, st.conns...)
	l.Peers = []tracePeer{}
	for _, id := range t.ids {
		if id != n.id {
			l.Peers = append(l.Peers, tracePeer{Peer: id, Keep: st.keep[id], Session: st.sess[id]})
		}
	}
	t.prev[n.idx] = st
	if err := t.enc.Encode(&l); err != nil {
		w.fail(fmt.Errorf("sim: writing trace: %w", err))
	}
}

func isDialer(local fsm.ConnID) bool { return local%2 == 0 }

// step writes the lines of one fsm step of n.
func (t *tracer) step(w *World, n *simNode, ev fsm.Event, g spec.ConnID, acts []fsm.Action) {
	t.init(w)
	i := n.idx
	before, after := t.prev[i], t.current(w, n)
	switch e := ev.(type) {
	case fsm.Listening:
		if n.inc > 1 {
			t.emit(w, n, traceLine{Kind: "restart"}, after)
		} else {
			t.prev[i] = after
		}
	case fsm.Connect:
		peer := ""
		if to, ok := w.byAddr[e.Addr]; ok {
			peer = w.nodes[to].id
		}
		if slices.ContainsFunc(acts, func(a fsm.Action) bool { return a.Kind == fsm.ActWrite && a.Frame.Type == wire.Keep }) {
			// It reached a peer it has a session with: Connect keeps it and
			// says so with KEEP, as Keep(peer, true) does.
			t.emit(w, n, traceLine{Kind: "keep", Peer: peer, Keep: true}, after)
			return
		}
		t.emit(w, n, traceLine{Kind: "connect", Peer: peer}, after)
	case fsm.CancelConnect, fsm.Send, fsm.DialFailed:
		if _, failed := ev.(fsm.DialFailed); failed || !t.same(before, after) {
			t.emit(w, n, traceLine{Kind: "dial-failed"}, after)
		}
	case fsm.Incoming:
		// The model meets an accepted connection once its protocol is known
		// (Accepted, below), unless it is refused right away.
		if slices.ContainsFunc(acts, func(a fsm.Action) bool { return a.Kind == fsm.ActClose && a.Conn == e.Conn }) {
			open := before.clone()
			open.conns = append(open.conns, traceConn{Conn: g, State: "hello", local: e.Conn})
			t.emit(w, n, traceLine{Kind: "accept", Conn: g, Dialer: isDialer(e.Conn)}, open)
			t.emit(w, n, traceLine{Kind: "tick", Conn: g, Dialer: isDialer(e.Conn)}, after)
		}
	case fsm.Dialed, fsm.Accepted:
		local, kind, peer := fsm.ConnID(0), "accept", ""
		if d, ok := ev.(fsm.Dialed); ok {
			local, kind, peer = d.Conn, "dialed", t.acceptor[g]
			delete(t.acceptor, g)
		} else {
			local = ev.(fsm.Accepted).Conn
		}
		l := traceLine{Kind: kind, Conn: g, Dialer: isDialer(local), Peer: peer}
		if after.has(local) {
			if kind == "dialed" {
				t.emit(w, n, l, after)
			} else {
				t.emit(w, n, l, after)
			}
			return
		}
		// Refused at once: opened, then closed.
		open := before.clone()
		open.conns = append(open.conns, traceConn{Conn: g, State: "hello", local: local})
		t.emit(w, n, l, open)
		t.emit(w, n, traceLine{Kind: "tick", Conn: g, Dialer: isDialer(local)}, after)
	case fsm.FrameReceived:
		if !before.has(e.Conn) || ((e.Frame.Type == wire.Ping || e.Frame.Type == wire.Data) && t.same(before, after)) {
			return
		}
		f := &e.Frame
		if f.Type == wire.Hello {
			t.bind(w, n, before, after)
			before = t.prev[i]
		}
		tf := &traceFrame{Type: f.Type.String()}
		switch f.Type {
		case wire.Join:
			tf.Closed, tf.Keep = f.Closed, f.Keep
		case wire.Welcome:
			tf.Sess, tf.Keep = f.Sess, f.Keep
		case wire.Keep:
			tf.Keep = f.Keep
		case wire.Bye:
			tf.Code, tf.Sess = int(f.Code), f.Sess
		}
		t.emit(w, n, traceLine{Kind: "frame", Conn: g, Dialer: isDialer(e.Conn), Frame: tf}, after)
	case fsm.Malformed:
		if before.has(e.Conn) {
			t.emit(w, n, traceLine{Kind: "closed", Reset: true, Conn: g, Dialer: isDialer(e.Conn)}, after)
		}
	case fsm.ConnClosed:
		if before.has(e.Conn) {
			t.emit(w, n, traceLine{Kind: "closed", Reset: errors.Is(e.Err, errReset), Conn: g, Dialer: isDialer(e.Conn)}, after)
		}
	case fsm.Tick:
		cur := before.clone()
		for _, c := range before.conns {
			if after.has(c.local) {
				continue
			}
			cur.conns = slices.DeleteFunc(cur.conns, func(x traceConn) bool { return x.local == c.local })
			cur.sess = maps.Clone(cur.sess)
			for id, s := range cur.sess {
				if s == c.Conn {
					cur.sess[id] = 0
				}
			}
			t.emit(w, n, traceLine{Kind: "tick", Conn: c.Conn, Dialer: isDialer(c.local)}, cur)
			cur = cur.clone()
		}
		if !t.same(cur, after) {
			t.emit(w, n, traceLine{Kind: "tick"}, after)
		}
	case fsm.SetKeep:
		if !t.same(before, after) {
			t.emit(w, n, traceLine{Kind: "keep", Peer: e.Peer, Keep: e.Keep}, after)
		}
	case fsm.Disconnect:
		if before.keep[e.Peer] || before.sess[e.Peer] != 0 || !t.same(before, after) {
			t.emit(w, n, traceLine{Kind: "disconnect", Peer: e.Peer}, after)
		}
	case fsm.Shutdown:
		// Written with the crash that follows: the model's crash closes every
		// connection with a FIN after what was sent, as Shutdown's BYEs do.
	}
}

// bind writes the "keep" line of a Connect bound by a HELLO: the fsm kept
// the peer (and told it with KEEP on their session) before handling the
// HELLO.
func (t *tracer) bind(w *World, n *simNode, before, after traceState) {
	for _, id := range t.ids {
		if id != n.id && after.keep[id] && !before.keep[id] {
			st := before.clone()
			st.keep[id] = true
			t.emit(w, n, traceLine{Kind: "keep", Peer: id, Keep: true}, st)
		}
	}
}

// crash writes the crash of n (after a Shutdown, or without one).
func (t *tracer) crash(w *World, n *simNode) {
	t.init(w)
	st := traceState{keep: maps.Clone(t.prev[n.idx].keep), sess: map[string]spec.ConnID{}}
	t.emit(w, n, traceLine{Kind: "crash"}, st)
}

// sortedConnIDs returns m's keys in order: every loop that can act does so
// in a fixed order.
func sortedConnIDs(m map[fsm.ConnID]*simConn) []fsm.ConnID {
	out := make([]fsm.ConnID, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
