package fsm

import (
	"errors"
	"time"

	"github.com/masterless-go/masterless/wire"
)

// Observability: the protocol facts a node counts for its user's monitoring
// (Stats in package masterless). Counting happens where the facts are
// decided, here in the state machine; the adapter adds only what a socket
// knows (bytes on the wire). Nothing here changes a decision.

// peerCounters are the facts counted per peer, for as long as the node
// keeps its record (a peer neither end keeps is forgotten a while after its
// last session, and its counts with it).
type peerCounters struct {
	msgsIn, msgsOut   uint64        // DATA delivered from it; DATA frames sent to it (resends included)
	bytesIn, bytesOut uint64        // their payload bytes
	sessions          uint64        // sessions established with it
	since             time.Duration // when the current session was established
	lastEnd           error         // why the last session ended; nil before one did
	lastEndAt         time.Duration
	rtt, srtt         time.Duration // the last round-trip sample and the smoothed one; 0 before any
}

// nodeCounters are the node-wide facts.
type nodeCounters struct {
	handshakes        uint64 // sessions established
	handshakesFailed  uint64 // connections closed before they became the session
	msgsIn, msgsOut   uint64
	bytesIn, bytesOut uint64
	rttSamples        uint64
	pauseGraces       uint64 // sessions a late (or lagging) Tick did not time out (session.go, peerTimeoutAt)
	windowsGrown      uint64 // times a peer's window grew (window.go)
	// closed counts the connections this node closed, by reason; byPeer
	// those the peer closed, by the code of its BYE; lost those that ended
	// without a BYE from either end (EOF, reset, a failed write).
	closed [numReasons]uint64
	byPeer [numCodes]uint64
	lost   uint64
}

// numCodes bounds the BYE codes counted one by one; a larger (unknown) code
// counts as a protocol error.
const numCodes = 16

// Reason is why this node closed a connection, as Stats counts it.
type Reason uint8

// Reasons for closing a connection. Each matches the sentinel error the close
// wraps.
const (
	ReasonOther             Reason = iota // none of the below
	ReasonDisconnected                    // the user disconnected the peer (ErrDisconnected)
	ReasonDuplicate                       // another connection is the session (ErrDuplicate)
	ReasonStaleIncarnation                // from an older incarnation of the peer (ErrStaleIncarnation)
	ReasonReplaced                        // a newer connection or incarnation took over (ErrReplaced)
	ReasonSelfConnect                     // both ends are this node (ErrSelfConnect)
	ReasonDuplicateID                     // another live node uses this node's id (ErrDuplicateID)
	ReasonUnwanted                        // neither end keeps the pair (ErrUnwanted)
	ReasonProtocol                        // the peer broke the protocol (ErrProtocol)
	ReasonHandshakeTimeout                // the handshake took too long (ErrHandshakeTimeout)
	ReasonPeerTimeout                     // nothing heard for the peer timeout (ErrPeerTimeout)
	ReasonShutdown                        // this node is closing (ErrClosed)
	ReasonTooManyHandshakes               // refused when accepted: too many handshaking (ErrTooManyHandshakes)
	ReasonUnauthenticated                 // the peer did not prove the id it claims (ErrUnauthenticated, ErrIDMismatch)
	ReasonEvicted                         // a silent handshake evicted to make room for a new connection (ErrEvicted)
	numReasons
)

var reasonNames = [numReasons]string{
	ReasonOther: "other", ReasonDisconnected: "disconnected", ReasonDuplicate: "duplicate",
	ReasonStaleIncarnation: "stale incarnation", ReasonReplaced: "replaced", ReasonSelfConnect: "self-connect",
	ReasonDuplicateID: "duplicate id", ReasonUnwanted: "unwanted", ReasonProtocol: "protocol error",
	ReasonHandshakeTimeout: "handshake timeout", ReasonPeerTimeout: "peer timeout", ReasonShutdown: "shutdown",
	ReasonTooManyHandshakes: "too many handshakes", ReasonUnauthenticated: "unauthenticated", ReasonEvicted: "evicted",
}

// String names the reason.
func (r Reason) String() string {
	if r < numReasons {
		return reasonNames[r]
	}
	return "invalid"
}

// Refusal reports whether r refuses a connection that duplicates a pair or
// cannot be one: the duplicate-refusal reasons Stats groups.
func (r Reason) Refusal() bool {
	switch r {
	case ReasonDuplicate, ReasonStaleIncarnation, ReasonReplaced, ReasonSelfConnect, ReasonDuplicateID, ReasonUnauthenticated:
		return true
	}
	return false
}

// reasonSentinels maps each reason to its sentinel, in the order reasonOf
// tests them (ErrDisconnected before the others: a disconnect wraps only it).
var reasonSentinels = [...]struct {
	r   Reason
	err error
}{
	{ReasonDisconnected, ErrDisconnected}, {ReasonDuplicate, ErrDuplicate},
	{ReasonStaleIncarnation, ErrStaleIncarnation}, {ReasonReplaced, ErrReplaced},
	{ReasonSelfConnect, ErrSelfConnect}, {ReasonDuplicateID, ErrDuplicateID},
	{ReasonUnwanted, ErrUnwanted}, {ReasonProtocol, ErrProtocol},
	{ReasonHandshakeTimeout, ErrHandshakeTimeout}, {ReasonPeerTimeout, ErrPeerTimeout},
	{ReasonShutdown, ErrClosed}, {ReasonTooManyHandshakes, ErrTooManyHandshakes},
	{ReasonUnauthenticated, ErrUnauthenticated}, {ReasonUnauthenticated, ErrIDMismatch},
	{ReasonEvicted, ErrEvicted},
}

func reasonOf(why error) Reason {
	for _, s := range reasonSentinels {
		if errors.Is(why, s.err) {
			return s.r
		}
	}
	return ReasonOther
}

// countClose counts connection c's end, for reason why (forget calls it).
// A BYE from the peer is counted by its code; ErrPeerClosed or an error of
// the adapter's (EOF, reset) as lost; anything else as closed by this node.
func (n *Node) countClose(c *conn, why error) {
	if c.state != StateEstablished || !c.listed() { // a refused grant failed (session.go, confirm); a follower's counted as a session at the grant (establish)
		n.counters.handshakesFailed++
	}
	bye, isBye := errors.AsType[*ByeError](why) // (errors.As: its target escaped, an allocation per connection's end)
	switch {
	case isBye:
		code := bye.Code
		if !code.Known() || code >= numCodes {
			code = wire.CodeProtocol
		}
		n.counters.byPeer[code]++
	case errors.Is(why, ErrPeerClosed) || reasonOf(why) == ReasonOther:
		n.counters.lost++
	default:
		n.counters.closed[reasonOf(why)]++
	}
}

// countRefused counts a connection refused as it was accepted.
func (n *Node) countRefused() {
	n.counters.handshakesFailed++
	n.counters.closed[ReasonTooManyHandshakes]++
}

// countOut counts a DATA frame written to c's peer.
func (n *Node) countOut(c *conn, f *wire.Frame) {
	if f.Type == wire.Data {
		n.countData(c, 1, len(f.Payload))
	}
}

// countIn counts k messages of bytes payload bytes in all from p delivered
// to the user.
func (n *Node) countIn(p *peer, k, bytes int) {
	p.counters.msgsIn += uint64(k)
	p.counters.bytesIn += uint64(bytes)
	n.counters.msgsIn += uint64(k)
	n.counters.bytesIn += uint64(bytes)
}

// The round-trip time (spec/PROTOCOL.md, 4). Every heartbeat PING on a v2
// session carries the sender's clock (Stamp) and echoes the Stamp of the
// latest PING it received (Echo) with how long it held it (Held). The echo
// comes back at most one heartbeat interval later, on the peer's own
// heartbeat: it needs no frame of its own. The sender of a Stamp takes
// now − Echo − Held as a sample: the time its PING and the echo spent on the
// way and in both ends' queues, without the time the peer held it.

// stampPing fills a heartbeat PING for v2 session c.
func (n *Node) stampPing(c *conn, f *wire.Frame) {
	f.Stamp = uint64(n.now) // sessionTimers runs one heartbeat interval after establish, so now > 0
	if c.echo != 0 {
		f.Echo, f.Held = c.echo, uint64(n.now-c.echoAt)
		c.echo = 0 // each stamp is echoed once
	}
}

// onPing takes a round-trip sample from the echo and keeps the peer's stamp
// for the next heartbeat's echo. An echo this node cannot have sent (from
// the future, before the session, held longer than it was away) is ignored:
// it only ever feeds Stats.
func (n *Node) onPing(c *conn, f *wire.Frame) {
	if !c.legacy() && n.ackDue(c.peer) { // (v1 takes PING on a session only: table.go)
		// A PING is answered with an ACK when one is due: a sender whose
		// producers wait for room asks so (stream.go, askForAck).
		n.sendAck(c.peer, c)
	}
	if f.Stamp != 0 && !c.legacy() {
		c.echo, c.echoAt = f.Stamp, n.now
	}
	if f.Echo == 0 || c.legacy() || c.peer == nil {
		return
	}
	pc := &c.peer.counters
	sent := time.Duration(f.Echo)
	if f.Echo > uint64(n.now) || sent < pc.since {
		return
	}
	away := n.now - sent
	if f.Held > uint64(away) {
		return
	}
	sample := away - time.Duration(f.Held)
	pc.rtt = sample
	if pc.srtt == 0 {
		pc.srtt = sample
	} else {
		pc.srtt += (sample - pc.srtt) / 8 // RFC 6298's gain
	}
	n.counters.rttSamples++
}

// PeerState is where a peer stands, as Stats shows it.
type PeerState uint8

// Peer states.
const (
	PeerIdle         PeerState = iota // known, without a session, not kept (it will be forgotten)
	PeerConnecting                    // no session; a dial or handshake with it is under way, or a session this node leads that the follower has not confirmed yet (conn.listed)
	PeerConnected                     // it has a session (conn.listed)
	PeerReconnecting                  // kept, or waited for with messages not yet acknowledged, without a session, within the reconnect grace
	PeerUnreachable                   // kept, away for longer than the reconnect grace
)

var peerStateNames = [...]string{PeerIdle: "idle", PeerConnecting: "connecting", PeerConnected: "connected",
	PeerReconnecting: "reconnecting", PeerUnreachable: "unreachable"}

// String names the state.
func (s PeerState) String() string {
	if int(s) < len(peerStateNames) {
		return peerStateNames[s]
	}
	return "invalid"
}

func (p *peer) state() PeerState {
	switch {
	case p.session != nil && p.session.listed():
		return PeerConnected
	case p.session != nil:
		return PeerConnecting
	case p.unreachable:
		return PeerUnreachable
	case p.handshakes > 0 || p.dialing != nil:
		return PeerConnecting
	case p.kept || p.away:
		return PeerReconnecting
	}
	return PeerIdle
}

// PeerCounters are what a node counts about one peer for monitoring (the
// checkers' view is PeerStatus), since it learned of the peer: a peer record
// forgotten when unused takes its counts with it.
type PeerCounters struct {
	State       PeerState
	QueuedBytes int // payload bytes of the messages queued for it (PeerStatus.Queued)
	// ListedConn is the connection of the session the user's views show
	// (State PeerConnected; conn.listed), 0 without one: unlike
	// PeerStatus.SessionConn, not a session this node granted and the peer
	// has not confirmed, which it may still refuse. Since is when that
	// session was established (the node's clock; without one, when the last
	// confirmed session was), and SessionIncarnation the peer's incarnation
	// on it (0 without one). A follower shows its session from the grant,
	// before the leader confirms it and the peer's record takes its
	// incarnation (PeerStatus.Incarnation), so a view of the session takes
	// all three from here.
	ListedConn         ConnID
	Since              time.Duration
	SessionIncarnation uint64
	Sessions           uint64 // sessions established with it: more than one means it reconnected
	// MessagesIn, BytesIn: messages from it delivered to the user, and their
	// payload bytes; MessagesOut, BytesOut: DATA frames sent to it (resends
	// included), and theirs.
	MessagesIn, MessagesOut uint64
	BytesIn, BytesOut       uint64
	// RTT is the last round-trip sample taken from the heartbeat and
	// SmoothedRTT their moving average (gain 1/8); 0 before the first.
	RTT, SmoothedRTT time.Duration
	// LastEnd is why its last session ended (nil before one did), at
	// LastEndAt.
	LastEnd   error
	LastEndAt time.Duration
	// Window is the credit window this node grants it now (window.go):
	// what it may have waiting for the user.
	Window int
}

// PeerCounters returns what the node counted about peer id; false for a
// peer it does not know.
func (n *Node) PeerCounters(id string) (PeerCounters, bool) {
	p := n.peers[id]
	if p == nil {
		return PeerCounters{}, false
	}
	return n.peerCounters(p), true
}

// peerCounters is what the node counted about p, with the window it
// grants p now.
func (n *Node) peerCounters(p *peer) PeerCounters {
	k := &p.counters
	window := uint64(n.cfg.Window)
	if p.in != nil {
		window = n.windowOf(p.in)
	}
	listed, since, inc := ConnID(0), k.since, uint64(0)
	if c := p.session; c != nil && c.listed() {
		listed, since, inc = c.id, c.establishedAt, c.peerInc
	}
	return PeerCounters{
		State: p.state(), QueuedBytes: p.out.bytes, ListedConn: listed, Since: since, SessionIncarnation: inc, Sessions: k.sessions,
		MessagesIn: k.msgsIn, MessagesOut: k.msgsOut, BytesIn: k.bytesIn, BytesOut: k.bytesOut,
		RTT: k.rtt, SmoothedRTT: k.srtt, LastEnd: k.lastEnd, LastEndAt: k.lastEndAt,
		Window: int(window),
	}
}

// NodeCounters are the node-wide counts since the node started.
type NodeCounters struct {
	Handshakes       uint64 // sessions established
	HandshakesFailed uint64 // connections closed before they became a session (refused duplicates included)
	// DATA: messages delivered to the user and their payload bytes; DATA
	// frames sent (resends included) and theirs.
	MessagesIn, MessagesOut uint64
	BytesIn, BytesOut       uint64
	RTTSamples              uint64 // round-trip samples taken from heartbeats
	// PauseGraces counts the sessions a Tick that came more than a heartbeat
	// late, or whose Lag said so (this node was not running, or not reading),
	// did not time out, giving them a grace (spec/PROTOCOL.md 4, "A node's
	// own pause").
	PauseGraces uint64
	// WindowsGrown counts the times a peer's window grew because its user
	// consumed its stream faster than the window let it come (window.go).
	WindowsGrown uint64
	// Closed counts the connections this node closed, by reason (a BYE went
	// with each, if the peer could read one); PeerClosed those the peer
	// closed with a BYE, by its code (an unknown code counts as a protocol
	// error); Lost those that ended with neither (EOF, reset, a failed
	// write). A connection counts once.
	Closed     map[Reason]uint64
	PeerClosed map[wire.Code]uint64
	Lost       uint64
}

// Counters returns the node-wide counts.
func (n *Node) Counters() NodeCounters {
	k := &n.counters
	out := NodeCounters{
		Handshakes: k.handshakes, HandshakesFailed: k.handshakesFailed,
		MessagesIn: k.msgsIn, MessagesOut: k.msgsOut, BytesIn: k.bytesIn, BytesOut: k.bytesOut,
		RTTSamples: k.rttSamples, Lost: k.lost, PauseGraces: k.pauseGraces, WindowsGrown: k.windowsGrown,
		Closed: make(map[Reason]uint64), PeerClosed: make(map[wire.Code]uint64),
	}
	for r, v := range k.closed {
		if v != 0 {
			out.Closed[Reason(r)] = v
		}
	}
	for c, v := range k.byPeer {
		if v != 0 {
			out.PeerClosed[wire.Code(c)] = v
		}
	}
	return out
}
