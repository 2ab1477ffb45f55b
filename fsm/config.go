package fsm

import (
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/masterless-go/masterless/wire"
)

// Defaults for the zero values of Config.
const (
	DefaultHeartbeatInterval = 1 * time.Second
	DefaultPeerTimeout       = 5 * time.Second
	DefaultHandshakeTimeout  = 5 * time.Second
	DefaultBackoffMin        = 100 * time.Millisecond
	DefaultBackoffMax        = 10 * time.Second
	DefaultReconnectGrace    = 5 * time.Second
	DefaultQueueMessages     = 1 << 18  // and at least (MaxWindow+Window)/8 (room for answers: stream.go)
	DefaultQueueBytes        = 16 << 20 // and at least 5 MaxWindow + 4 Window (room for answers: stream.go)
	DefaultWindow            = 1 << 20
	DefaultMaxWindow         = 4 << 20
	DefaultMaxHandshakes     = 256
	// DefaultMaxRedials bounds the dials in flight when a node starts one
	// of its own (redials.go).
	DefaultMaxRedials = 32
	// DefaultMaxHandshakesPerSource is a quarter of the slots: while a
	// source address holds more when the slots are full, its own silent
	// connections are evicted first (slots.go).
	DefaultMaxHandshakesPerSource = 64
)

// Config fixes a Node's identity and limits. Zero durations and sizes take
// the defaults above.
type Config struct {
	// ID is the node's unique id: 1 to 255 bytes.
	ID string
	// Incarnation must grow every time a process with this ID starts.
	Incarnation uint64
	// Seed seeds the node's own generator (reconnect jitter). Same seed, same
	// inputs: same outputs.
	Seed uint64

	HeartbeatInterval time.Duration // PING period on a session
	PeerTimeout       time.Duration // silence after which a session is closed
	HandshakeTimeout  time.Duration // deadline for dial plus handshake
	BackoffMin        time.Duration // first reconnect delay of a kept peer
	BackoffMax        time.Duration // reconnect delay cap; zero: DefaultBackoffMax, or BackoffMin if longer
	ReconnectGrace    time.Duration // how long a kept peer may be away before it is reported disconnected
	// QueueMessages and QueueBytes bound, per peer, the messages accepted
	// and not yet acknowledged, by count and payload bytes. Answers sent
	// from callbacks always have room when QueueMessages >= (4 MaxWindow +
	// 3 Window)/32 + 5 and QueueBytes >= 4 MaxWindow + 3 Window + twice the
	// largest message (stream.go, "Room for answers"); the defaults hold it
	// for messages up to a window.
	QueueMessages int
	QueueBytes    int
	// Window is how many payload bytes from one peer this node lets wait for
	// its user (delivered, not yet consumed), plus one message: the credit
	// it grants (stream.go), at first. MaxWindow is how far that window may
	// grow while the user consumes the peer's stream fast (window.go), at
	// least Window. Zero Window: DefaultWindow, or MaxWindow if smaller.
	// Zero MaxWindow: Window if Window is set (a window set alone stays
	// fixed), else DefaultMaxWindow, lowered to what QueueMessages and
	// QueueBytes keep room for answers for (see them) if they are set.
	Window    int
	MaxWindow int
	// MaxHandshakes bounds the connections handshaking at once. When they
	// are full, a new accepted connection evicts a silent one (accepted,
	// no HELLO yet): the oldest of the source address holding the most,
	// if that is more than MaxHandshakesPerSource, else the oldest of all;
	// with none to evict it is refused (slots.go).
	MaxHandshakes          int
	MaxHandshakesPerSource int
	// MaxRedials bounds the dials in flight, of any kind, when the node
	// starts one of its own: a kept peer's redial or a kept address's retry
	// waits for its turn while as many are in flight (redials.go). A
	// Connect's dial never waits; discovery dials have their own bound.
	// Those toward targets that went unanswered last time hold at most
	// half of them (redials.go, "Targets that do not answer").
	MaxRedials int
	// MaxFrameSize is the largest frame this node sends or accepts, in bytes
	// (type byte plus body), at most 4 GiB - 1 (the frame length is 32
	// bits); Send refuses a payload that would not fit.
	MaxFrameSize int
	// LegacyDial makes this node dial with masterless 0.4.1's protocol instead
	// of v1 (Connect, and redials of a peer not yet heard from; a known peer
	// is redialed in the protocol it last spoke). See legacy.go.
	LegacyDial bool
	// Leases says the adapter stages producers' messages under leases
	// (lease.go): a producer's Send (Reserve) accepted, of at most
	// LeaseMaxPayload bytes, then grants one, or more room on the one
	// held, when a lease may be used. Without it the node grants a lease
	// only when asked (Admit with Renew).
	Leases bool
	// RequireAuth refuses the HELLO of any connection the adapter did not
	// authenticate (Dialed.Peer and Accepted.Peer empty): only nodes that
	// proved they hold their id's key take part. PlaintextLegacy relaxes it
	// for masterless 0.4.1 connections, which cannot authenticate; see
	// auth.go for what an unauthenticated 0.4.1 peer can still do.
	RequireAuth     bool
	PlaintextLegacy bool

	// Discovery turns on member discovery (discovery.go, spec/PROTOCOL.md
	// section 8): the node announces wire.FeatureMembers, exchanges MEMBERS
	// with peers that announce it too, and keeps every live member it learns
	// of. Off by default.
	Discovery bool
	// DiscoveryDials bounds the discovery dials in flight at once.
	DiscoveryDials int
	// DiscoveryGap spaces successive discovery dials: each gap is drawn from
	// [DiscoveryGap/2, DiscoveryGap).
	DiscoveryGap time.Duration
	// LeaderDelay is how long the leader of a discovered pair (the greater
	// id) leaves the dialing to the follower before it dials too (default:
	// the handshake timeout).
	LeaderDelay time.Duration
	// GossipInterval is the mean period at which the node pushes its full
	// member view to one session drawn at random.
	GossipInterval time.Duration
	// MemberTimeout: a member not heard of for this long is forgotten, and a
	// left member's record is dropped after it.
	MemberTimeout time.Duration
	// MaxMembers bounds the member table.
	MaxMembers int
	// ConnectOnce makes a Connect whose dial fails leave nothing behind, as
	// in masterless 0.4.1. By default the address of every Connect is kept
	// until a node answers there, retried with the reconnect backoff
	// (seeds.go). Discovery keeps addresses regardless.
	ConnectOnce bool

	// mutation is a deliberately wrong rule, for the checkers' negative
	// controls. Only a build with the masterless_mutation tag can set it
	// (Config.WithMutation in mutation.go); in any other build its type is
	// empty and every check of it is the constant false (mutation_off.go).
	mutation mutation
}

// ErrBadConfig reports an invalid Config field.
var ErrBadConfig = errors.New("masterless: invalid configuration")

// InFlight is how many bytes a peer that follows the protocol can have
// sent on a connection beyond what this node has read, once the node stops
// reading it: its credit, a window (MaxWindow at most), and a message of up
// to the max frame size past it (a 0.4.1 peer has no credit; its messages
// are bounded by the same frame size only). The adapter reads and drops at most about
// this much from a connection it closed (netio's linger), so that a peer's
// last bytes do not turn the close into a reset, and no more from a peer
// that keeps sending. c must have its defaults (Node.Config).
func (c Config) InFlight() int { return c.MaxWindow + c.MaxFrameSize }

// Unacknowledged is the most bytes of DATA frames this node can hold toward
// one peer that follows the protocol, not yet acknowledged: its send queue
// full (QueueBytes) with a frame header for each message it may hold
// (QueueMessages). A peer acknowledges only what it read, so no more DATA
// than this can wait in the adapter's output buffer toward it, whatever
// credit it grants; more is a peer that acknowledged what it never read
// (netio closes the connection then). c must have its defaults
// (Node.Config).
func (c Config) Unacknowledged() int { return c.QueueBytes + c.QueueMessages*wire.HeaderSize }

func (c Config) withDefaults() (Config, error) {
	if len(c.ID) == 0 || len(c.ID) > wire.MaxIDLen {
		return c, fmt.Errorf("%w: id must be 1 to %d bytes, got %d", ErrBadConfig, wire.MaxIDLen, len(c.ID))
	}
	durations := []struct {
		name string
		p    *time.Duration
		def  time.Duration
	}{
		{"HeartbeatInterval", &c.HeartbeatInterval, DefaultHeartbeatInterval},
		{"PeerTimeout", &c.PeerTimeout, DefaultPeerTimeout},
		{"HandshakeTimeout", &c.HandshakeTimeout, DefaultHandshakeTimeout},
		{"BackoffMin", &c.BackoffMin, DefaultBackoffMin},
		{"BackoffMax", &c.BackoffMax, max(DefaultBackoffMax, c.BackoffMin)}, // a zero max follows a longer min
		{"ReconnectGrace", &c.ReconnectGrace, DefaultReconnectGrace},
	}
	for _, d := range durations {
		if *d.p < 0 {
			return c, fmt.Errorf("%w: %s %v: negative duration (0 keeps the default)", ErrBadConfig, d.name, *d.p)
		}
		if *d.p == 0 {
			*d.p = d.def
		}
	}
	maxDefault := c.MaxWindow <= 0
	if maxDefault {
		c.MaxWindow = DefaultMaxWindow
		if c.Window > 0 {
			c.MaxWindow = c.Window // a window set alone stays as set
		}
	}
	if c.Window <= 0 {
		c.Window = min(DefaultWindow, c.MaxWindow)
	}
	if c.MaxWindow < c.Window {
		return c, fmt.Errorf("%w: MaxWindow %d below Window %d", ErrBadConfig, c.MaxWindow, c.Window)
	}
	if c.QueueMessages <= 0 {
		c.QueueMessages = max(DefaultQueueMessages, (c.MaxWindow+c.Window)/8)
	}
	if c.QueueBytes <= 0 {
		c.QueueBytes = max(DefaultQueueBytes, 5*c.MaxWindow+4*c.Window) // room for answers, and more for a lease's (lease.go)
	}
	if maxDefault {
		// The window grows only as far as the queue bounds keep room for
		// answers for payloads up to a window (stream.go).
		c.MaxWindow = max(c.Window, min(c.MaxWindow, (c.QueueBytes-5*c.Window)/4, (msgCost*(c.QueueMessages-5)-3*c.Window)/4))
	}
	if c.MaxFrameSize <= 0 {
		c.MaxFrameSize = wire.DefaultMaxFrameSize
	}
	if uint64(c.MaxFrameSize) > math.MaxUint32 {
		return c, fmt.Errorf("%w: max frame size %d: a frame's length is 32 bits (at most %d)", ErrBadConfig, c.MaxFrameSize, uint32(math.MaxUint32))
	}
	if c.MaxHandshakes <= 0 {
		c.MaxHandshakes = DefaultMaxHandshakes
	}
	if c.MaxRedials <= 0 {
		c.MaxRedials = DefaultMaxRedials
	}
	if c.MaxHandshakesPerSource <= 0 {
		c.MaxHandshakesPerSource = min(DefaultMaxHandshakesPerSource, c.MaxHandshakes)
	}
	if c.PeerTimeout <= c.HeartbeatInterval {
		return c, fmt.Errorf("%w: the peer timeout %v (WithPeerTimeout; default %v) must exceed the heartbeat interval %v (WithHeartbeat; default %v)", ErrBadConfig, c.PeerTimeout, DefaultPeerTimeout, c.HeartbeatInterval, DefaultHeartbeatInterval)
	}
	if err := c.discoveryDefaults(); err != nil {
		return c, err
	}
	if c.BackoffMax < c.BackoffMin {
		return c, fmt.Errorf("%w: BackoffMax %v below BackoffMin %v", ErrBadConfig, c.BackoffMax, c.BackoffMin)
	}
	return c, nil
}
