package sim

import (
	"cmp"
	"encoding/json"
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
	ev   any
	g    spec.ConnID
	err  error
	acts []fsm.Action
}

// remember stores a step in the ring.
func (w *World) remember(n *simNode, ev any, g spec.ConnID, err error, acts []fsm.Action) {
	r := &w.ring[w.ringAt%len(w.ring)]
	w.ringAt++
	r.step, r.at, r.node, r.inc, r.ev, r.g, r.err = w.steps, w.now, n.id, n.inc, ev, g, err
	r.acts = append(r.acts[:0], acts...)
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
	fmt.Fprintf(&b, " <- %s", eventString(r.ev))
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
	case fsm.Accepted:
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

// eventKind is the event's type name, as in the trace's "ev" field.
func eventKind(ev any) string {
	switch ev.(type) {
	case crashEvent:
		return "Crash"
	}
	s := fmt.Sprintf("%T", ev)
	return s[strings.LastIndexByte(s, '.')+1:]
}

// tracer writes one NDJSON line per step. Until spec/TRACE.md fixes another
// format, a line is a traceLine: the step's index (from 0, one per fsm step
// and per crash, no gaps), the virtual time in ns, the node and its
// incarnation, the event type ("FrameReceived", "Tick", "Connect",
// "ConnClosed", "Crash", ...), the global connection id it concerns (absent
// for user commands and ticks), the frame received with its fields, a user
// command's argument, the error of a Malformed or ConnClosed, and the node's
// whole state after the step: its open connections (global id, peer id or "",
// state hello/join/welcome/established, session number) sorted by id, and
// its peers (id, kept, global id of the session or 0) sorted by id. Example:
//
//	{"i":7,"t":1082149152,"node":"n3","inc":1,"ev":"FrameReceived","conn":1,
//	 "frame":{"type":"HELLO","id":"n1","inc":1},
//	 "conns":[{"id":1,"peer":"n1","state":"established","sess":1}],
//	 "peers":[{"id":"n1","kept":true,"session":1}]}
type tracer struct {
	enc *json.Encoder
	i   int
}

func newTracer(out io.Writer) *tracer { return &tracer{enc: json.NewEncoder(out)} }

// traceLine is one step of a trace.
type traceLine struct {
	I     int         `json:"i"`
	T     int64       `json:"t"` // virtual time, ns
	Node  string      `json:"node"`
	Inc   uint64      `json:"inc"`
	Ev    string      `json:"ev"` // event type: FrameReceived, Tick, Connect, ...
	Conn  spec.ConnID `json:"conn,omitempty"`
	Arg   string      `json:"arg,omitempty"` // a user command's argument: address, peer, keep flag
	Frame *traceFrame `json:"frame,omitempty"`
	Err   string      `json:"err,omitempty"`
	Conns []traceConn `json:"conns"`
	Peers []tracePeer `json:"peers"`
}

type traceFrame struct {
	Type    string `json:"type"`
	ID      string `json:"id,omitempty"`
	Inc     uint64 `json:"inc,omitempty"`
	Closed  uint64 `json:"closed,omitempty"`
	Sess    uint64 `json:"sess,omitempty"`
	Keep    *bool  `json:"keep,omitempty"`
	Code    string `json:"code,omitempty"`
	Payload string `json:"payload,omitempty"`
}

type traceConn struct {
	ID    spec.ConnID `json:"id"`
	Peer  string      `json:"peer"`
	State string      `json:"state"`
	Sess  uint64      `json:"sess"`
}

type tracePeer struct {
	ID      string      `json:"id"`
	Kept    bool        `json:"kept"`
	Session spec.ConnID `json:"session"`
}

func (t *tracer) step(w *World, n *simNode, ev any, g spec.ConnID) {
	l := traceLine{I: t.i, T: int64(w.now), Node: n.id, Inc: n.inc, Ev: eventKind(ev), Conn: g, Conns: []traceConn{}, Peers: []tracePeer{}}
	t.i++
	switch e := ev.(type) {
	case fsm.FrameReceived:
		l.Frame = frameOf(&e.Frame)
	case fsm.Malformed:
		l.Err = e.Err.Error()
	case fsm.ConnClosed:
		l.Err = e.Err.Error()
	case fsm.Connect, fsm.Disconnect, fsm.SetKeep, fsm.Send, fsm.CancelConnect, fsm.Listening, fsm.Dialed, fsm.DialFailed:
		l.Arg = strings.TrimPrefix(eventString(ev), l.Ev+" ")
	}
	w.refresh(n)
	s := &w.snap.Nodes[n.idx]
	for _, c := range s.Conns {
		l.Conns = append(l.Conns, traceConn{ID: c.Global, Peer: c.Peer, State: c.State.String(), Sess: c.Sess})
	}
	for _, p := range s.Peers {
		l.Peers = append(l.Peers, tracePeer{ID: p.ID, Kept: p.Kept, Session: p.SessionGlobal})
	}
	slices.SortFunc(l.Conns, func(a, b traceConn) int { return cmp.Compare(a.ID, b.ID) })
	if err := t.enc.Encode(&l); err != nil {
		w.fail(fmt.Errorf("sim: writing trace: %w", err))
	}
}

func frameOf(f *wire.Frame) *traceFrame {
	tf := &traceFrame{Type: f.Type.String()}
	keep := f.Keep
	switch f.Type {
	case wire.Hello:
		tf.ID, tf.Inc = f.ID, f.Incarnation
	case wire.Join:
		tf.Closed, tf.Keep = f.Closed, &keep
	case wire.Welcome:
		tf.Sess, tf.Keep = f.Sess, &keep
	case wire.Keep:
		tf.Keep = &keep
	case wire.Data:
		tf.Payload = string(f.Payload)
	case wire.Bye:
		tf.Code, tf.Sess = f.Code.String(), f.Sess
	}
	return tf
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
