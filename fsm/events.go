package fsm

import (
	"time"

	"github.com/masterless-go/masterless/wire"
)

// ConnID names a connection. The adapter (netio or sim) picks it when a
// connection opens; it must be unique for the node's lifetime and non-zero.
type ConnID uint64

// DialID names a dial the fsm asked for with an ActDial action.
type DialID uint64

// ReqID names a user's Connect request. The caller picks it; it must be
// unique among the node's pending requests and non-zero.
type ReqID uint64

// Event is an input to Node.Step: something that happened to the node. The
// concrete types below are the complete list.
type Event interface{ isEvent() }

// Listening: the node's listener is up; Info is the tcp://host:port address
// other nodes can dial (sent in HELLO, and refused as a Connect target).
type Listening struct{ Info string }

// Dialed: the dial Dial succeeded and its connection is Conn. The adapter has
// already written the codec's preamble (of the protocol the ActDial asked for).
// Peer is the node id the connection's security handshake authenticated (the
// acceptor proved it holds that id's key: TLS, spec/PROTOCOL.md section 7), or
// empty for a plaintext connection.
type Dialed struct {
	Dial DialID
	Conn ConnID
	Peer string
}

// DialFailed: the dial Dial failed with Err.
type DialFailed struct {
	Dial DialID
	Err  error
}

// Incoming: the listener accepted TCP connection Conn from Source, whose
// protocol is not known yet. It takes a handshake slot; when they are full
// it evicts a silent connection (slots.go; ActClose on the newcomer only
// when none can be evicted). It counts against the handshake timeout, and
// nothing is written on it: the acceptor must first read the dialer's first
// bytes to tell v1 from 0.4.1 (spec/PROTOCOL.md, 2.1), which ends with
// Accepted.
//
// Source is the dialer's address as the adapter sees it: the remote
// address of the TCP connection, port included (netio:
// net.Conn.RemoteAddr().String()), or the simulated host's name (sim). The
// node groups it into a source (source.go): an IPv4 address, an IPv6 /64,
// or a name as it is. When the slots are full, a source holding more than
// MaxHandshakesPerSource has its own silent connections evicted first. An
// empty Source is no source's.
type Incoming struct {
	Conn   ConnID
	Source string
	// IP is the dialer's IP address when Source is one, as 16 bytes (an
	// IPv4 address in its IPv4-mapped form, an IPv6 zone dropped), and
	// HasIP says it is set: the connection layer parses Source
	// (link.IncomingEvent), so that the state machine needs no address
	// parser to group dialers into sources (source.go).
	IP    [16]byte
	HasIP bool
}

// Accepted: the dialer's first bytes on accepted connection Conn told its
// protocol; the connection layer has already written the codec's preamble.
// Legacy says the dialer speaks masterless 0.4.1 (wire.DetectLegacy); the
// zero value is protocol v1. Conn is normally announced by Incoming first;
// an Accepted for a connection the node does not know registers it as an
// Incoming would (transcripts and unit tests start there). Peer is the node id
// the connection's security handshake authenticated, or empty for plaintext
// (as for Dialed).
type Accepted struct {
	Conn   ConnID
	Legacy bool
	Peer   string
}

// FrameReceived: a whole frame arrived on Conn.
type FrameReceived struct {
	Conn  ConnID
	Frame wire.Frame
}

// DataReceived: whole DATA frames of the binary protocol arrived on Conn
// together (one read), back to back in Frames as wire.AppendData encodes
// them, each within the max frame size (the adapter parsed them). It is a
// FrameReceived of each of them in order, taken in one step: the node stops
// at the first that closes the connection, and the actions of all of them
// come out of the one Ready, in the order the single steps would have made
// them (TestDataReceivedIsFramesInOrder). A step per frame costs the adapter
// its bookkeeping (collect, carry out, release) once per message; a run of
// a read's small messages pays it once. Bytes in Frames that are not a whole
// DATA frame are malformed: the node closes the connection (as for
// Malformed) once the frames before them are taken.
//
// FrameSize, when not 0, is the adapter's word that every frame in Frames
// is a whole DATA frame of that length, header included
// (wire.DataFrameSize), as it found in parsing them: a steady session then
// counts them, against its credit too, by arithmetic instead of parsing
// each frame (steadySized), with the same actions as steadyRun's. The node checks the word
// first (wire.IsDataRun: every frame's length and type, without parsing
// it) and, where it does not hold, reads the frames as without it. 0: the
// node reads them.
type DataReceived struct {
	Conn      ConnID
	Frames    []byte
	FrameSize int
}

// Malformed: the bytes on Conn could not be decoded (bad preamble, version,
// size or frame). The connection must be closed; Err says why.
type Malformed struct {
	Conn ConnID
	Err  error
}

// ConnClosed: Conn was closed by the peer or failed (EOF, reset, write error).
// The adapter sends it at most once per connection, and never for a
// connection the fsm itself closed with ActClose.
type ConnClosed struct {
	Conn ConnID
	Err  error
}

// Tick: time passed. Safe to send at any time, however early or often; an
// adapter sends it at NextDeadline. One that comes more than a heartbeat
// interval after NextDeadline tells the node that it was itself not running
// meanwhile (starved of CPU, stopped), and the sessions that Tick would time
// out get a grace instead (see the package's peer timeout rule in
// spec/PROTOCOL.md, section 4).
type Tick struct {
	// Lag is how late the adapter's own reading of the network is, as far
	// as it can tell (0: not late, or it cannot tell): a process starved by
	// its own goroutines runs its timer on time while the goroutines that
	// read its sockets wait. The node counts the Tick as late by
	// max(Lag, how late it came) for the same rule.
	Lag time.Duration
}

// Connect is the user's request to reach the node at Addr and keep it. It
// completes with an ActConnectDone action for Req.
type Connect struct {
	Req  ReqID
	Addr string
}

// CancelConnect withdraws request Req; no ActConnectDone follows for it.
type CancelConnect struct{ Req ReqID }

// Disconnect is the user's request to close the session with Peer and stop
// keeping it.
type Disconnect struct{ Peer string }

// SetKeep is the user's request to keep (reconnect on loss) or stop keeping Peer.
type SetKeep struct {
	Peer string
	Keep bool
}

// Send is the user's request to send Payload to Peer. The node keeps a copy
// until the peer acknowledges it (stream.go); on a 0.4.1 session it becomes
// an ActWrite carrying Payload itself, so the caller must encode it before
// the buffer is reused. Reserve is set by a caller that can wait for room
// (SendContext): it may not take the room kept for answers sent from event
// callbacks, which cannot wait, and is refused while the peer says its
// answers to this node back up (stream.go, "Room for answers"). A Reserve
// Send accepted, of at most LeaseMaxPayload bytes, on a node whose
// Config.Leases is set, also grants the peer's producers a lease, or more
// room on theirs, when one may be used: an ActLease, after which the
// adapter may stage the next ones (lease.go). An answer (no Reserve)
// accepted there, of at most LeaseMaxPayload bytes, into a queue of more
// than answerStream messages (a stream), grants room for answers when the
// queue's bounds leave slack for it (lease.go, "Room for answers").
//
// A Send is time-free: no rule it runs depends on the time (it queues,
// spends credit and writes; deadlines are kept by the other events), so Step
// ignores its now and the node's clock stays where the previous event left
// it. A Send stepped at a time t and one stepped at any other time have the
// same outcome (TestSendIsTimeFree), which lets an adapter skip reading the
// clock for each message.
type Send struct {
	Peer    string
	Payload []byte
	Reserve bool
	// After, when not nil, is what the adapter's lane toward Peer held
	// (lease.go): admitted first, in the same step, so that the message
	// follows them (an answer sent while its node's producers had messages
	// staged), as an Admit followed by the Send would.
	After *Admit
}

// SendMany is the user's request to send Payload to each of Peers, in one
// step: for each peer, in order, exactly what a Send with the same Payload
// and Reserve does (its checks, its queue, its DATA written when credit
// allows). The DATA frames this step writes for the new message carry
// Payload itself, the same slice for every peer, so the connection layer
// can encode it once (link.Layer.SendMany); as for Send, the caller must
// encode it before the buffer is reused. It is time-free, as Send. With
// Reserve, on a node with Config.Leases, a payload below SharedMin also
// asks for a lease toward each peer that took it, as a Send does, but
// after every peer took its message (lease.go).
//
// Errs, when not nil, must be as long as Peers: the step sets Errs[i] to
// what a Send to Peers[i] would have returned (nil: accepted), so that a
// producer can retry only the peers whose queue was full. Step returns the
// first of them that is not nil.
type SendMany struct {
	Peers   []string
	Payload []byte
	Reserve bool
	Errs    []error
}

// Consumed: the user took Messages messages, with Bytes of payload, from
// Peer's incarnation Incarnation off its delivery queue (the adapter handed
// them to the event callback). The node grants the peer credit for as much.
type Consumed struct {
	Peer        string
	Incarnation uint64
	Messages    int
	Bytes       int
}

// Shutdown is the user's request to close every connection and stop.
type Shutdown struct{}

// FrameInProgress: bytes arrived on connection Conn that do not complete
// its next frame (a large message still arriving). They count as hearing
// from the peer: its peer timeout starts over, since a frame in progress
// holds back the peer's heartbeats, and a message that takes longer than
// the peer timeout to arrive (16 MiB at under 3.2 MiB/s with the
// defaults) would otherwise end the session each time it is resent.
type FrameInProgress struct {
	Conn ConnID
}

// ReadPaused: the adapter stopped reading connection Conn (Paused) or
// started again (not Paused) for its own user's sake: a 0.4.1 session has no
// credit, so its reader waits while the user's delivery queue is over its
// bound. Silence while paused is this node's, not the peer's: the session is
// not timed out then, and its peer timeout starts over when reading resumes.
type ReadPaused struct {
	Conn   ConnID
	Paused bool
}

func (Listening) isEvent()       {}
func (FrameInProgress) isEvent() {}
func (Dialed) isEvent()          {}
func (DialFailed) isEvent()      {}
func (Incoming) isEvent()        {}
func (Accepted) isEvent()        {}
func (FrameReceived) isEvent()   {}
func (DataReceived) isEvent()    {}
func (Malformed) isEvent()       {}
func (ConnClosed) isEvent()      {}
func (Tick) isEvent()            {}
func (Connect) isEvent()         {}
func (CancelConnect) isEvent()   {}
func (Disconnect) isEvent()      {}
func (SetKeep) isEvent()         {}
func (Send) isEvent()            {}
func (SendMany) isEvent()        {}
func (Consumed) isEvent()        {}
func (Shutdown) isEvent()        {}
func (ReadPaused) isEvent()      {}
