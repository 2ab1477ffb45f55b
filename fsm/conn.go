package fsm

import (
	"time"

	"github.com/masterless-go/masterless/wire"
)

// ConnState is a connection's place in the handshake (spec/PROTOCOL.md, 3).
type ConnState uint8

// Connection states. A closed connection is forgotten, so it has no state.
const (
	StateDetect      ConnState = iota + 1 // accepted, the dialer's protocol not known yet: nothing sent
	StateHello                            // our HELLO sent, waiting for the peer's
	StateJoin                             // leader: waiting for the follower's JOIN
	StateWelcome                          // follower: JOIN sent, waiting for WELCOME
	StateEstablished                      // the pair's session
)

var stateNames = [...]string{StateDetect: "detect", StateHello: "hello", StateJoin: "join", StateWelcome: "welcome", StateEstablished: "established"}

// String returns the state's name as spec/PROTOCOL.md writes it.
func (s ConnState) String() string {
	if int(s) < len(stateNames) && stateNames[s] != "" {
		return stateNames[s]
	}
	return "invalid"
}

// conn is one TCP connection as this node sees it.
type conn struct {
	id       ConnID
	state    ConnState
	gone     bool  // forgotten: no longer in Node.conns (forget)
	dial     *dial // the dial that opened it; nil when accepted
	openedAt time.Duration
	// slot: it holds a handshake slot (slots.go): from its opening until it
	// is established, and a v1 session until the other end confirms it.
	slot bool
	// Accepted: the source address the adapter reported (Incoming), and
	// while it holds a slot, its eviction tier and its place in that tier's
	// lists, of all and of its source (slots.go).
	source   string
	tier     tier
	all, src links
	rules    *rules  // the protocol it speaks; nil until known (table.go)
	prio     float64 // 0.4.1 dialer: the priority sent in our JOIN
	// authID is the id the adapter's security handshake proved the remote
	// holds the key of (Dialed.Peer, Accepted.Peer); empty for plaintext.
	authID string

	// Known once the peer's HELLO arrived.
	peer    *peer
	peerInc uint64
	peerMax int  // the largest frame the peer accepts (its HELLO); 0 if unknown
	leader  bool // this node leads the pair (decides which connection is the session)
	members bool // both ends announced wire.FeatureMembers: MEMBERS may travel (discovery.go)

	// On a session.
	sess uint64 // the session number; granted by the leader
	// establishedAt is when it became the session (establish): the age
	// Stats shows for a session listed before it is confirmed.
	establishedAt time.Duration
	peerKeep      bool // the peer's latest keep flag
	sentKeep      bool // follower: the keep flag this node put in its JOIN
	// unconfirmed: a v1 session the other end has not yet confirmed
	// (session.go, confirm): the user hears of it only then.
	unconfirmed bool
	// readPaused: the adapter stopped reading it for its user (ReadPaused):
	// no peer timeout until it reads again.
	readPaused bool
	// Reliable streams on a v2 session (stream.go).
	resumed bool // the peer's first ACK arrived: our stream goes out
	// behind: the peer's first ACK said less than this node had had
	// acknowledged (resume), at behindAt; until an ACK reaches acked, ACKs
	// it sent before our RESUME reached it say the same (onAck).
	behind      bool
	behindAt    uint64
	peerResumed bool // the peer's RESUME arrived: its DATA may come
	askedAck    bool // an empty PING asked the peer for an ACK, none came since (askForAck)
	// ackBy: an ACK must go by then for the messages delivered since the
	// last one (ackDelay); 0: none waits.
	ackBy    time.Duration
	lastRecv time.Duration
	lastPing time.Duration
	// A late Tick's grace (peerTimeoutAt, "This node's own pause"): the
	// peer timeout of the silence that began at lastRecv graceFor ends at
	// graceUntil instead, once per silence; graceUntil 0: none given.
	graceFor, graceUntil time.Duration
	// The peer's latest PING stamp, to echo in our next PING, and when it
	// arrived (observe.go); echo 0: none to echo.
	echo   uint64
	echoAt time.Duration

	timer timer // its entry in the node's deadlines (deadlines.go)
}

// openConn registers a connection this node dialed and sends our HELLO on it.
func (n *Node) openConn(id ConnID, d *dial, legacy bool, authID string) {
	if id == 0 || n.conns[id] != nil {
		n.broken("connection id c%d is zero or reused", id)
	}
	c := &conn{id: id, state: StateHello, dial: d, openedAt: n.now, lastRecv: n.now, rules: rulesFor(legacy), authID: authID}
	n.conns[id] = c
	n.takeSlot(c)
	n.armConn(c, c.openedAt+n.cfg.HandshakeTimeout)
	n.sendHello(c)
}

func (n *Node) sendHello(c *conn) {
	n.write(c, wire.Frame{Type: wire.Hello, ID: n.cfg.ID, Incarnation: n.cfg.Incarnation, Info: n.info, MaxFrame: uint32(n.cfg.MaxFrameSize)})
}

// closeConn sends BYE with code and the reason, then closes c. A connection
// whose protocol is not known yet gets no BYE: the peer could not parse it.
func (n *Node) closeConn(c *conn, code wire.Code, why error) {
	if c.state == StateDetect {
		n.closeQuietly(c, why)
		return
	}
	f := wire.Frame{Type: wire.Bye, Code: code, Text: why.Error()}
	if code == wire.CodeDuplicate && c.peer != nil && c.peer.session != nil {
		f.Sess = c.peer.session.sess
	}
	n.write(c, f)
	n.emit(Action{Kind: ActClose, Conn: c.id, Err: why})
	n.forget(c, why)
}

// dropConn forgets c after the adapter reported it closed.
func (n *Node) dropConn(c *conn, why error) {
	if c.rules != nil {
		why = c.rules.closedByPeer(n, c, why)
	}
	n.forget(c, why)
}

// takes reports whether the peer of c accepts a DATA frame carrying n
// payload bytes (its HELLO's max frame; any when it said none).
func (c *conn) takes(n int) bool { return c.peerMax == 0 || n < c.peerMax }

// legacy reports whether c speaks masterless 0.4.1.
func (c *conn) legacy() bool { return c.rules != nil && c.rules.legacy }

// closeQuietly closes c without a BYE (the peer cannot parse one, or we have
// nothing to tell it).
func (n *Node) closeQuietly(c *conn, why error) {
	n.emit(Action{Kind: ActClose, Conn: c.id, Err: why})
	n.forget(c, why)
}

// forget removes c from every table and lets its dial, its peer and the
// requests waiting on it react.
func (n *Node) forget(c *conn, why error) {
	n.countClose(c, why)
	delete(n.conns, c.id)
	c.gone = true
	n.freeSlot(c)
	if d := c.dial; d != nil {
		n.dialEnded(d, c, why)
	}
	p := c.peer
	if p == nil {
		return
	}
	if c.state != StateEstablished {
		p.handshakes--
		if p.handshakes < 0 {
			n.broken("peer %s handshake count below zero after closing c%d", p.id, c.id)
		}
	}
	if p.session == c {
		n.sessionEnded(p, c, why)
	} else if p.kept && p.session == nil {
		n.armPeer(p, max(n.now, p.nextDialAt)) // a handshake failed: the redial is due again
	}
	n.maybeForgetPeer(p)
}

// where says where c goes or comes from, for an error message: the address
// it dialed, or the source the adapter reported for an accepted one.
func (c *conn) where() string {
	switch {
	case c.dial != nil:
		return "dialed to " + c.dial.addr
	case c.source != "":
		return "accepted from " + c.source
	}
	return "accepted"
}

// listed reports whether the session c is one the views the user reads
// (Sessions, a peer's state in Stats) show as a session. A leader's is
// shown once the follower confirmed it: until then the follower may still
// refuse it, as when a redial reaches this node at an address where the
// dialer expected another node, and that node's user must hear of nothing
// (README, "Every wait is bounded"). A follower's is shown from the grant
// it adopted: the leader had granted it and confirms it on the ACK this
// node answers with, so when the leader's Connect returns the follower
// already lists the pair.
func (c *conn) listed() bool { return !c.unconfirmed || !c.leader }
