package spec

// TraceLine is one line of a trace (TRACE.md, next to this file): one step of
// one node and its state right after it. The simulator and the interop test
// encode it with encoding/json, one object per line; tla/tracegen decodes it
// (rejecting unknown fields). Fields tagged omitempty are left out when
// unset, as TRACE.md allows.
type TraceLine struct {
	Step int    `json:"step"` // step index, for messages only
	T    int64  `json:"t"`    // time in ns, informational
	Node string `json:"node"` // the node that takes the step
	Inc  uint64 `json:"inc"`  // its incarnation after the step (crash: the one that died)
	Kind string `json:"kind"` // the event: "dial", "frame", "crash", ... (TRACE.md, Kinds)
	// Conn is the connection of the event, 0 if none: a global id in the
	// simulator's traces, the node's own id in a one-node trace.
	Conn   ConnID      `json:"conn"`
	Dialer bool        `json:"dialer"`          // this node dialed Conn
	Reset  bool        `json:"reset,omitempty"` // closed only: the connection failed at this end
	Peer   string      `json:"peer"`            // dialed: the node dialed; connect, keep, disconnect: the peer named
	Frame  *TraceFrame `json:"frame,omitempty"` // the frame received, on frame lines only
	Keep   bool        `json:"keep"`            // keep only: the new keep flag
	Conns  []TraceConn `json:"conns"`           // the node's open connections after the step
	Peers  []TracePeer `json:"peers"`           // the node's peer table after the step
}

// TraceFrame is the frame a "frame" line received; only the fields its type
// carries are set (TRACE.md).
type TraceFrame struct {
	Type   string `json:"type"`             // HELLO, JOIN, WELCOME, KEEP, PING, DATA or BYE
	ID     string `json:"id,omitempty"`     // HELLO: the sender's id
	Inc    uint64 `json:"inc,omitempty"`    // HELLO: the sender's incarnation
	Sess   uint64 `json:"sess,omitempty"`   // WELCOME, BYE
	Closed uint64 `json:"closed,omitempty"` // JOIN (0.4.1: the priority's float64 bits)
	Keep   bool   `json:"keep,omitempty"`   // JOIN, WELCOME, KEEP
	Code   int    `json:"code,omitempty"`   // BYE
}

// TraceConn is one open connection of a line's node after its step.
type TraceConn struct {
	Conn  ConnID `json:"conn"`
	Peer  string `json:"peer"`  // the peer's id once its HELLO arrived, else ""
	PInc  uint64 `json:"pinc"`  // the peer's incarnation from that HELLO, else 0
	State string `json:"state"` // hello, join, welcome or established
	Sess  uint64 `json:"sess"`  // the session number once established, else 0
	// Legacy marks a connection that speaks masterless 0.4.1 (TRACE.md,
	// "Connections in masterless 0.4.1").
	Legacy bool `json:"legacy,omitempty"`
}

// TracePeer is one entry of a line's node's peer table after its step.
type TracePeer struct {
	Peer    string `json:"peer"`
	Keep    bool   `json:"keep"`
	Session ConnID `json:"session"` // the connection of the established session, 0 if none
}
