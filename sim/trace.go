package sim

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
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
func (w *World) remember(n *process, ev any, g spec.ConnID, err error, acts []fsm.Action) {
	r := &w.ring[w.ringAt%len(w.ring)]
	w.ringAt++
	r.step, r.at, r.node, r.inc, r.g, r.err = w.steps, w.now, n.id, n.inc, g, err
	r.bytes = r.bytes[:0]
	if fr, ok := ev.(fsm.FrameReceived); ok {
		r.fr, r.isFr, r.ev = fr, true, nil
		r.fr.Frame.Payload = r.keep(fr.Frame.Payload)
	} else if dr, ok := ev.(fsm.DataReceived); ok {
		r.ev, r.isFr = dataRun{frames: eachData(dr.Frames, nil), bytes: len(dr.Frames)}, false // its frames alias the input buffer
	} else {
		r.ev, r.isFr = ev, false // the connection layer hands the observer a box of its own (link.rebox)
	}
	r.acts = r.acts[:0]
	for i := range acts {
		a := &acts[i]
		switch a.Kind {
		case fsm.ActMessage:
			r.acts = append(r.acts, *a)
			r.acts[len(r.acts)-1].Frame.Payload = r.keep(a.Frame.Payload)
		case fsm.ActMessages: // shown as the ActMessage of each
			k := len(r.acts)
			r.acts = a.Split(r.acts)
			for j := k; j < len(r.acts); j++ {
				r.acts[j].Frame.Payload = r.keep(r.acts[j].Frame.Payload)
			}
		case fsm.ActWriteData: // shown as the ActWrite of each, as ActWrite unkept
			r.acts = a.Split(r.acts)
		default:
			r.acts = append(r.acts, *a)
		}
	}
}

// keep copies p into the record's own bytes. A record that outgrows its
// bytes gets a new array; the older copies keep theirs.
func (r *record) keep(p []byte) []byte {
	if len(p) == 0 {
		return p
	}
	if len(p) > 64 { // a load run's large payload: its start names it
		p = fmt.Appendf(p[:40:40], "…(%d bytes)", len(p))
	}
	if cap(r.bytes)-len(r.bytes) < len(p) {
		r.bytes = make([]byte, 0, max(2*cap(r.bytes), len(p), 256))
	}
	start := len(r.bytes)
	r.bytes = append(r.bytes, p...)
	return r.bytes[start:len(r.bytes):len(r.bytes)]
}

// dataRun is how the ring keeps a DataReceived: how many frames, how many
// bytes (the messages themselves are in the actions).
type dataRun struct{ frames, bytes int }

// eachData calls f with the payload of each whole DATA frame at the start
// of b, in order (a DataReceived's frames), and returns how many there were.
func eachData(b []byte, f func(payload []byte)) int {
	k := 0
	for {
		p, rest, ok := wire.NextData(b)
		if !ok {
			return k
		}
		if f != nil {
			f(p)
		}
		b, k = rest, k+1
	}
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
	case dataRun:
		return fmt.Sprintf("DataReceived %d DATA frames (%d bytes)", e.frames, e.bytes)
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
// the model of PROTOCOL.md. The lines are the fsm's own trace records
// (fsm.TraceRecord, compiled in with the build tag masterless_trace): the
// tracer only writes them down, adding what a node cannot know and the
// network does:
//
//   - global connection ids (the same at both ends) for the fsm's local ones;
//   - on a "dialed" line, the node the dial reached;
//   - on a "closed" line, whether the connection was reset (the simulator's
//     own error);
//   - in "peers", every other node of the world that the node does not list
//     (keep false, no session), so the model checks those too;
//   - the kinds no fsm sees: "crash" (the process dies; a Shutdown's record
//     is left out, as the crash that follows closes the same connections
//     with a FIN after what was sent) and "restart" (a new process, with a
//     new incarnation).
type tracer struct {
	enc  *json.Encoder
	line int
	keep []map[string]bool // per node: the keep flags of its last line, for its crash line
}

func newTracer(out io.Writer, nodes int) *tracer {
	t := &tracer{enc: json.NewEncoder(out), keep: make([]map[string]bool, nodes)}
	for i := range t.keep {
		t.keep[i] = map[string]bool{}
	}
	return t
}

// traceable reports whether the model can replay a run of k: not with
// nodes that dial in 0.4.1 (Masterless.tla has no 0.4.1 connections, and
// GoLegacy.tla's other ends are real 0.4.1 nodes, not Go nodes that dial in
// 0.4.1; spec/TRACE.md), nor with a deliberately broken fsm, nor with
// adversaries (the model has none).
func traceable(k Knobs) bool { return k.LegacyPM == 0 && k.Mutation == 0 && k.Adversaries == 0 }

// record writes one trace record of n's fsm.
func (t *tracer) record(w *World, n *process, r *fsm.TraceRecord) {
	if r.Kind == "shutdown" {
		return // written as the crash that follows (see tracer)
	}
	g := globalOf(r.Conn)
	l := spec.TraceLine{Kind: r.Kind, Inc: r.Incarnation, Conn: g, Dialer: r.Dialer, Peer: r.Peer, Keep: r.Keep,
		Reset: r.Reset || errors.Is(r.Err, errReset), Conns: []spec.TraceConn{}}
	if r.Kind == "dialed" {
		l.Peer = w.acceptorOf(g)
	}
	if f := &r.Frame; f.Type != "" {
		l.Frame = &spec.TraceFrame{Type: f.Type, ID: f.ID, Inc: f.Incarnation, Sess: f.Sess, Closed: f.Closed, Keep: f.Keep, Code: int(f.Code)}
	}
	for _, c := range r.Conns {
		l.Conns = append(l.Conns, spec.TraceConn{Conn: globalOf(c.Conn), Peer: c.Peer, PInc: c.PeerInc, State: c.State.String(), Sess: c.Sess})
	}
	keep := map[string]bool{}
	sess := map[string]spec.ConnID{}
	for _, p := range r.Peers {
		keep[p.Peer] = p.Keep
		if p.SessionConn != 0 {
			sess[p.Peer] = globalOf(p.SessionConn)
		}
	}
	t.keep[n.idx] = keep
	t.emit(w, n, l, keep, sess)
}

// emit writes l for n, listing every other node in "peers".
func (t *tracer) emit(w *World, n *process, l spec.TraceLine, keep map[string]bool, sess map[string]spec.ConnID) {
	t.line++
	l.Step, l.T, l.Node = t.line, int64(w.now), n.id
	l.Peers = []spec.TracePeer{}
	for _, o := range w.nodes {
		if o != n {
			l.Peers = append(l.Peers, spec.TracePeer{Peer: o.id, Keep: keep[o.id], Session: sess[o.id]})
		}
	}
	if err := t.enc.Encode(&l); err != nil {
		w.fail(fmt.Errorf("sim: writing trace: %w", err))
	}
}

// acceptorOf returns the id of the node that accepted connection g.
func (w *World) acceptorOf(g spec.ConnID) string {
	for _, c := range w.conns {
		if c.id == g {
			return w.nodes[c.ends[1].node].id
		}
	}
	return ""
}

// crash writes the crash of n (after a Shutdown, or without one): every
// connection closed, the keep flags of its last line.
func (t *tracer) crash(w *World, n *process) {
	t.emit(w, n, spec.TraceLine{Kind: "crash", Inc: n.inc, Conns: []spec.TraceConn{}}, t.keep[n.idx], nil)
}

// restart writes the start of n's new process (incarnation n.inc), whose
// fsm knows nothing yet.
func (t *tracer) restart(w *World, n *process) {
	t.keep[n.idx] = map[string]bool{}
	t.emit(w, n, spec.TraceLine{Kind: "restart", Inc: n.inc, Conns: []spec.TraceConn{}}, nil, nil)
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
