package fsm

// Trace points (spec/TRACE.md). Like etcd-raft's trace points, they are
// compiled in only with the build tag masterless_trace (trace_on.go); in a
// normal build (trace_off.go) every trace point is an empty method the
// compiler removes, the Node carries no tracer state, and SetTracer reports
// false. The trace is the node's own account of each step in the vocabulary
// of spec/TRACE.md, which tla/tracegen converts and tla/TraceMasterless.tla
// replays against the model; an adapter (the simulator) only writes it down.

// TraceCompiled reports whether this build has the trace points (build tag
// masterless_trace).
const TraceCompiled = traceCompiled

// Tracer receives the node's trace records, synchronously, during Step. The
// record and its slices are valid only during the call.
type Tracer func(*TraceRecord)

// TraceRecord is one line of spec/TRACE.md as the node reports it: one step
// (or, where TRACE.md asks for several lines, one part of a step) and the
// node's state right after it. Connection ids are the node's own; an
// adapter maps them to ids both ends share before writing the line.
//
// A Step reports:
//
//   - Incoming: "tick" for the connection it evicted to make room
//     (slots.go), if a record lists that one: to the model an early
//     handshake timeout. Refused at once: as for Accepted.
//   - Accepted: "accept"; refused at once (shutdown, no slot to be had):
//     "accept" listing the connection in state hello, then "tick" closing it.
//   - Dialed: "dialed" (Peer is empty: the adapter knows which node it
//     reached); refused at once (an abandoned dial): "dialed", then "tick".
//   - DialFailed: "dial-failed".
//   - FrameReceived on an open connection: "frame" (PING and DATA only if
//     the state changed, which they never do). A HELLO that binds a Connect
//     request to a peer not kept yet is preceded by a "keep" record: the
//     node keeps the peer (and says so with KEEP on their session) before it
//     handles the HELLO, exactly as SetKeep(peer, true) would.
//   - ConnClosed, Malformed on an open connection: "closed" (Reset for
//     Malformed; Err carries the adapter's reason, which only the adapter
//     can classify as a reset).
//   - Tick: one "tick" record per connection a timeout closed, with the state
//     right after that close; then a "tick" without a connection if anything
//     else the trace shows changed.
//   - Connect: "connect", or a "keep" record instead when it binds at once to
//     a known peer not kept yet.
//   - SetKeep, Disconnect: "keep", "disconnect", when the state changed.
//   - Shutdown: "shutdown" when the state changed (not a kind of TRACE.md: the
//     process exit that follows is the model's crash, which the adapter
//     writes).
//   - Listening, Send, CancelConnect: nothing, unless the state changed
//     ("dial-failed", a step the model takes as no protocol action).
//
// Connections that speak masterless 0.4.1 are reported the same way
// (TraceConn.Legacy; PeerInc is 0, Sess is 1 once established, and a JOIN's
// Closed carries the 0.4.1 priority as wire.SetLegacyPriority stores it);
// tla/TraceGoLegacy.tla replays them (spec/TRACE.md, "Connections in
// masterless 0.4.1").
//
// Steps that change nothing the trace shows write nothing, except the
// user's Connect and a DialFailed. Peers the node does not know, or knows
// with neither keep flag nor session, are equivalent in that comparison.
type TraceRecord struct {
	Kind   string // a kind of spec/TRACE.md, or "shutdown"
	Conn   ConnID // the connection the step is about; 0 if none
	Dialer bool   // this node dialed Conn
	Peer   string // keep, disconnect: the peer named; connect: the peer reached, if known
	Keep   bool   // keep: the new keep flag
	Reset  bool   // closed: the byte stream was malformed (the connection failed here)
	Err    error  // closed: the reason the adapter gave (ConnClosed.Err)
	Frame  TraceFrame

	Incarnation uint64 // the node's incarnation
	Conns       []TraceConn
	Peers       []TracePeer
}

// TraceFrame is the frame a "frame" record received, with the fields its
// type has (the others zero). Type is "" on other records.
type TraceFrame struct {
	Type        string // HELLO, JOIN, WELCOME, KEEP, PING, DATA, BYE
	ID          string // HELLO: the sender's id
	Incarnation uint64 // HELLO: the sender's incarnation
	Closed      uint64 // JOIN
	Sess        uint64 // WELCOME; BYE duplicate: the session that carries on
	Keep        bool   // JOIN, WELCOME, KEEP
	Code        uint8  // BYE
}

// TraceConn is one open connection of the node, as a record lists it. A
// connection in state hello shows no peer and no peer incarnation: they are
// known once the peer's HELLO was handled.
type TraceConn struct {
	Conn    ConnID
	Dialer  bool
	Peer    string
	PeerInc uint64 // the peer's incarnation, from its HELLO
	State   ConnState
	Sess    uint64 // the session number once established
	Legacy  bool   // speaks masterless 0.4.1
}

// TracePeer is one peer the node knows, as a record lists it.
type TracePeer struct {
	Peer        string
	Keep        bool
	SessionConn ConnID // the connection that is the session; 0 if none
}
