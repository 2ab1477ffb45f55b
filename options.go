package masterless

import (
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/masterless-go/masterless/fsm"
	"github.com/masterless-go/masterless/netio"
)

// Option configures a Server in New. A zero value (0, "", nil) given to an
// option of a setting with a default (a host, a port, a size, a count, a
// duration, a logger) keeps that default; a negative size, count or duration
// is refused by New with ErrBadConfig. Where a zero value would more likely
// be a mistake than a wish, New refuses it with ErrBadConfig rather than
// carry on quietly: WithIncarnation(0) (0 means no incarnation, what 0.4.1
// nodes send), WithIncarnationFile(""), WithIdentity(nil) and WithTrust(nil)
// (a server meant to authenticate would otherwise run without TLS), and a
// nil Option.
type Option func(*settings) error

// notNegative refuses a negative size or count given to the option named,
// quoting every argument the option was given.
func notNegative(option string, values ...int) error {
	for _, v := range values {
		if v < 0 {
			args := make([]string, len(values))
			for i, a := range values {
				args[i] = fmt.Sprint(a)
			}
			return fmt.Errorf("%w: %s(%s): negative (0 keeps the default)", ErrBadConfig, option, strings.Join(args, ", "))
		}
	}
	return nil
}

// notNegativeDuration refuses a negative duration given to the option
// named, whose zero value keeps def.
func notNegativeDuration(option string, d, def time.Duration) error {
	if d < 0 {
		return fmt.Errorf("%w: %s(%v): negative (0 keeps the default %v)", ErrBadConfig, option, d, def)
	}
	return nil
}

// settings collects what the options set.
type settings struct {
	cfg    netio.Config
	events Events
	// Authentication (auth options below), checked together in secure.
	identity        *Identity
	trust           *Trust
	plaintextLegacy bool
}

// WithHost sets the address to listen on; default 127.0.0.1. Use "0.0.0.0"
// (with WithAdvertise) to accept connections from other machines. An IPv6
// link-local address needs its zone ("fe80::1%eth0"), which Info keeps.
func WithHost(host string) Option {
	return func(s *settings) error { s.cfg.Host = host; return nil }
}

// WithPort sets the port to listen on; default 0, any free port.
func WithPort(port int) Option {
	return func(s *settings) error {
		if port < 0 || port > 65535 {
			return fmt.Errorf("%w: WithPort(%d): out of range (1-65535, or 0 for any free port)", ErrBadConfig, port)
		}
		s.cfg.Port = port
		return nil
	}
}

// WithAdvertise sets the tcp://host:port address Info returns and peers are
// told to redial; default the listener's address. Needed when listening on
// 0.0.0.0 or behind NAT. New fails with ErrBadConfig if it is not
// tcp://host:port, not valid UTF-8, or longer than 1024 bytes (the most a
// HELLO carries). An empty info keeps the default.
func WithAdvertise(info string) Option {
	return func(s *settings) error { s.cfg.Advertise = info; return nil }
}

// WithIncarnation sets this process's incarnation, which must be greater than
// that of every earlier process with the same id (peers refuse a smaller one
// as stale while they remember the old one, ErrStaleIncarnation). It must not
// be zero. Use it when something outside the Server already numbers starts;
// otherwise see WithIncarnationFile.
//
// Default (neither option): the wall clock in nanoseconds. That holds as long
// as the clock does not step back across a restart; if it does, peers that
// still hold a session with the old process refuse the new one as stale
// (ErrStaleIncarnation) until that session times out, one peer timeout
// (WithPeerTimeout), and then accept it.
func WithIncarnation(inc uint64) Option {
	return func(s *settings) error {
		if inc == 0 {
			return fmt.Errorf("%w: incarnation 0 means none (it is what masterless 0.4.1 nodes send); use a positive number", ErrBadConfig)
		}
		s.cfg.FSM.Incarnation = inc
		return nil
	}
}

// WithIncarnationFile makes the incarnation survive a clock that steps back:
// it is the greater of the wall clock in nanoseconds and the number stored in
// the file at path plus one, and New stores it there before returning (a
// temporary file in the same directory, synced and renamed over the old one,
// so a crash leaves the old number or the new one). A missing file is
// created; a file New cannot read, or that holds anything but a number, makes
// New fail with ErrBadConfig. Give each id its own file, on local storage.
// It cannot be combined with WithIncarnation. See WithIncarnation for the
// default without either.
func WithIncarnationFile(path string) Option {
	return func(s *settings) error {
		if path == "" {
			return fmt.Errorf("%w: empty incarnation file path", ErrBadConfig)
		}
		s.cfg.IncarnationFile = path
		return nil
	}
}

// WithHeartbeat sets how often a session is pinged; default 1 s.
func WithHeartbeat(d time.Duration) Option {
	return func(s *settings) error {
		s.cfg.FSM.HeartbeatInterval = d
		return notNegativeDuration("WithHeartbeat", d, fsm.DefaultHeartbeatInterval)
	}
}

// WithPeerTimeout sets how long a silent peer is tolerated; default 5 s. It
// must exceed the heartbeat interval.
func WithPeerTimeout(d time.Duration) Option {
	return func(s *settings) error {
		s.cfg.FSM.PeerTimeout = d
		return notNegativeDuration("WithPeerTimeout", d, fsm.DefaultPeerTimeout)
	}
}

// WithHandshakeTimeout bounds a dial plus handshake; default 5 s.
func WithHandshakeTimeout(d time.Duration) Option {
	return func(s *settings) error {
		s.cfg.FSM.HandshakeTimeout = d
		return notNegativeDuration("WithHandshakeTimeout", d, fsm.DefaultHandshakeTimeout)
	}
}

// WithMaxFrameSize bounds a frame in bytes (type byte plus payload, for
// DATA); default 16 MiB, at most 4 GiB - 1 (a frame's length is 32 bits:
// New refuses more with ErrBadConfig). Send refuses a payload that would not fit, and a
// peer sending a larger frame is disconnected. Each node announces its limit
// in its HELLO: Send also refuses, with ErrPayloadTooLarge, a payload over
// the limit of the peer it goes to, and a message queued while the peer was
// away that its new session cannot take comes back with the Lost event.
func WithMaxFrameSize(n int) Option {
	return func(s *settings) error { s.cfg.MaxFrameSize = n; return notNegative("WithMaxFrameSize", n) }
}

// WithReconnectBackoff sets the first and the largest delay before redialing
// a kept peer; default 100 ms doubling to 10 s, with jitter (and a redial
// due may wait its turn: WithMaxRedials). A zero first
// keeps 100 ms; a zero max keeps 10 s, or first if that is longer (every
// delay is then first). New refuses with ErrBadConfig a negative delay, and a
// max below the first delay (below 100 ms if first is zero).
func WithReconnectBackoff(first, max time.Duration) Option {
	return func(s *settings) error {
		s.cfg.FSM.BackoffMin, s.cfg.FSM.BackoffMax = first, max
		switch {
		case first < 0:
			return fmt.Errorf("%w: WithReconnectBackoff(%v, %v): negative first delay (0 keeps the default %v)", ErrBadConfig, first, max, fsm.DefaultBackoffMin)
		case max < 0:
			return fmt.Errorf("%w: WithReconnectBackoff(%v, %v): negative max (0 keeps the default %v, or the first delay if longer)", ErrBadConfig, first, max, fsm.DefaultBackoffMax)
		case max > 0 && first == 0 && max < fsm.DefaultBackoffMin:
			return fmt.Errorf("%w: WithReconnectBackoff(%v, %v): the max is below the default first delay %v", ErrBadConfig, first, max, fsm.DefaultBackoffMin)
		case max > 0 && max < first:
			return fmt.Errorf("%w: WithReconnectBackoff(%v, %v): the max is below the first delay", ErrBadConfig, first, max)
		}
		return nil
	}
}

// WithReconnectGrace sets how long a kept peer may be away before it is
// reported disconnected and the messages not yet acknowledged handed back
// with the Lost event; default 5 s.
func WithReconnectGrace(d time.Duration) Option {
	return func(s *settings) error {
		s.cfg.FSM.ReconnectGrace = d
		return notNegativeDuration("WithReconnectGrace", d, fsm.DefaultReconnectGrace)
	}
}

// WithSendQueue bounds, per peer, the messages accepted and not yet
// acknowledged by it (sent and kept for a resend, or waiting for credit or
// for the session), by count and payload bytes; default 655,360 and 24 MiB
// with the default windows (in general at least 262,144 and 16 MiB,
// (W + M)/8 messages and 5 M + 4 W bytes, W the window and M the most it
// grows to: WithWindow, WithMaxWindow). SendContext may fill as much of it
// as the peer's credit lets out (one window, more while the peer's window
// has grown, at most M), and at most half of its bytes and half of its
// messages (payload plus 32 bytes a message; one message of any size into
// an empty queue); the rest is for Send from event callbacks (answers),
// which always has room under the conditions of fsm/stream.go ("Room for
// answers"): bounds smaller than (4 M + 3 W)/32 + 5 messages and
// 4 M + 3 W + twice the largest payload trade that away. Bounds set here
// without WithMaxWindow lower the default M to what they keep that room
// for. Past it Send returns false and SendContext waits; a payload larger
// than the byte bound could never fit and is refused at once with
// ErrPayloadTooLarge.
func WithSendQueue(messages, bytes int) Option {
	return func(s *settings) error {
		s.cfg.FSM.QueueMessages, s.cfg.FSM.QueueBytes = messages, bytes
		return notNegative("WithSendQueue", messages, bytes)
	}
}

// WithWindow sets the credit this server grants each peer: how many payload
// bytes (plus 32 per message) from it may wait for the event callbacks at
// once; default 1 MiB, growing to 4 MiB (WithMaxWindow). It bounds the
// memory a peer can make this server hold. A window set here alone stays
// as set: it does not grow.
func WithWindow(bytes int) Option {
	return func(s *settings) error { s.cfg.FSM.Window = bytes; return notNegative("WithWindow", bytes) }
}

// WithMaxWindow lets each peer's window grow up to bytes while the event
// callbacks consume that peer's messages fast: it doubles each time they
// take a whole window in under 2 ms, and halves each time one takes them
// over 8 ms, never below WithWindow's (fsm/window.go). The rule counts time,
// not round trips: over a network whose round trip is longer than about
// 2 ms the window does not grow; set WithWindow to the bandwidth-delay
// product there. A fast stream
// then does not wait for credit between bursts, and a peer whose messages
// the callbacks take slowly keeps the smaller window. Default 4 MiB (or
// the window, if WithWindow is set and this is not); at least the window.
// The bound on what a peer can make this server hold is this one.
func WithMaxWindow(bytes int) Option {
	return func(s *settings) error { s.cfg.FSM.MaxWindow = bytes; return notNegative("WithMaxWindow", bytes) }
}

// WithSendBuffer bounds the bytes waiting in the output buffer of a
// connection to a masterless 0.4.1 peer; default 4 MiB. Past it Send waits
// for the socket (see Server.Send). On a v2 session the peer's credit bounds
// that buffer instead, and the send queue: a peer acknowledges only what it
// read, so a buffer past the queue's bytes (with a frame header per message)
// and this bound means the peer acknowledged messages it never read, and
// the connection is closed as a protocol error.
func WithSendBuffer(bytes int) Option {
	return func(s *settings) error { s.cfg.SendBuffer = bytes; return notNegative("WithSendBuffer", bytes) }
}

// WithDispatchQueue bounds the events waiting for the handlers, by count and
// payload bytes; default 4096 and 8 MiB. Past it the server stops reading
// from its masterless 0.4.1 peers until the handlers catch up; a read under
// way on each of their connections still adds its events (at most a read
// buffer's worth each), so with many 0.4.1 peers the queue can pass the
// bound by that much (300 flooding peers: 3.3 times the count, 1.3 MiB, a
// black-box audit). A v2 peer may have at most its credit waiting
// (WithWindow, WithMaxWindow), so it is never stopped.
func WithDispatchQueue(events, bytes int) Option {
	return func(s *settings) error {
		s.cfg.DispatchQueue, s.cfg.DispatchBytes = events, bytes
		return notNegative("WithDispatchQueue", events, bytes)
	}
}

// WithMaxHandshakes bounds the connections handshaking at once; default 256.
// When they are full, a new accepted connection evicts a silent one (no
// HELLO read yet, ErrEvicted): the oldest of the address holding the most,
// if that is more than its share (WithMaxHandshakesPerSource), else the
// oldest of all; so a flood of silent connections cannot keep a real node
// out (spec/PROTOCOL.md, 3.6). When none is silent, the oldest past its
// HELLO and not yet a confirmed session goes the same way; a new
// connection is refused only when the node's own dials hold every slot.
// The bound is on what others open: the node's own dials take slots but
// never wait for one (a Connect dials at once; WithMaxRedials paces the
// redials), so Stats().Handshaking may exceed it.
func WithMaxHandshakes(n int) Option {
	return func(s *settings) error { s.cfg.FSM.MaxHandshakes = n; return notNegative("WithMaxHandshakes", n) }
}

// WithMaxHandshakesPerSource sets a source address's share of the handshake
// slots (an IPv4 address, or an IPv6 /64); default 64, or WithMaxHandshakes
// if lower. Below capacity an address may hold more; when the slots are
// full, the silent connections of the address holding the most beyond its
// share are evicted first.
func WithMaxHandshakesPerSource(n int) Option {
	return func(s *settings) error {
		s.cfg.FSM.MaxHandshakesPerSource = n
		return notNegative("WithMaxHandshakesPerSource", n)
	}
}

// WithMaxRedials bounds the dials in flight when the node starts one by
// itself; default 32. A kept peer's redial, or the retry of an address a
// Connect did not reach, waits for its turn (first come, first served)
// while n dials of any kind are in flight, so that a node which lost many
// sessions at once (a restart, a partition healing, a mesh forming on a
// loaded machine) does not open a descriptor for every one of them at once.
// A Connect dials at once and counts; discovery dials have their own bound
// (DiscoveryOptions). The dials toward targets whose last attempt went
// unanswered for half a handshake timeout or more (a blackholed or gone
// host) hold at most half of the n slots, and the other redials pass them.
// See spec/PROTOCOL.md, section 5.
func WithMaxRedials(n int) Option {
	return func(s *settings) error { s.cfg.FSM.MaxRedials = n; return notNegative("WithMaxRedials", n) }
}

// WithLogger sets the logger: protocol violations at Warn, abnormal closes at
// Info, normal events at Debug. Default slog.Default().
func WithLogger(l *slog.Logger) Option {
	return func(s *settings) error { s.cfg.Logger = l; return nil }
}

// WithEvents sets the event handlers. See Events for when they are called.
func WithEvents(e Events) Option {
	return func(s *settings) error { s.events = e; return nil }
}

// Protocol is a wire protocol a Server can dial with.
type Protocol uint8

const (
	// ProtocolV1 is masterless-go's own protocol (spec/PROTOCOL.md; its wire
	// version is now 2: reliable sessions), the default.
	ProtocolV1 Protocol = iota
	// Protocol041 is the protocol of the npm package masterless 0.4.1 (JSON
	// lines; spec/PROTOCOL.md, appendix), for meshes with 0.4.1 nodes.
	// Payloads to a 0.4.1 peer must be JSON objects (use SendJSON); Send
	// refuses anything else with ErrNotJSONObject.
	Protocol041
)

// WithProtocol sets the protocol this Server dials with: Connect, and the
// reconnects of a kept peer not yet heard from. A peer it has heard from is
// redialed in the protocol that peer last spoke. Default ProtocolV1.
//
// With Protocol041, New fails with ErrBadConfig if the id is not valid UTF-8:
// 0.4.1's HELLO is JSON.
//
// Whatever it is set to, a Server accepts both protocols: it tells from a
// connection's first bytes whether the dialer speaks v1 or 0.4.1, so one
// Server serves v1 and 0.4.1 peers at once. With 0.4.1 peers keep the peer
// timeout at 3 s or more (the default 5 s is fine): 0.4.1 sends its first
// heartbeat up to 2 s after its last message.
func WithProtocol(p Protocol) Option {
	return func(s *settings) error {
		switch p {
		case ProtocolV1, Protocol041:
			s.cfg.FSM.LegacyDial = p == Protocol041
			return nil
		}
		return fmt.Errorf("%w: unknown protocol %d", ErrBadConfig, p)
	}
}

// WithIdentity makes the server prove itself with id (NewIdentity, CA.Issue,
// LoadIdentity) and require the same of its peers: every v1 connection,
// dialed or accepted, runs TLS 1.3 before the first protocol byte, both ends
// present certificates, each checks the other's against its trust
// (WithTrust, required), and a peer's HELLO must name the id its certificate
// proved (else ErrIDMismatch). Plaintext peers are refused
// (ErrUnauthenticated); WithPlaintextLegacy lets masterless 0.4.1 ones in.
// The identity must name the server's own id, or New fails with
// ErrBadConfig.
func WithIdentity(id *Identity) Option {
	return func(s *settings) error {
		if id == nil {
			return fmt.Errorf("%w: nil identity", ErrBadConfig)
		}
		s.identity = id
		return nil
	}
}

// WithTrust sets whose certificates the server believes: TrustKeys (pinned
// keys) or TrustCA (a cluster CA). It goes with WithIdentity; New fails with
// ErrBadConfig for either without the other.
func WithTrust(t *Trust) Option {
	return func(s *settings) error {
		if t == nil {
			return fmt.Errorf("%w: nil trust", ErrBadConfig)
		}
		s.trust = t
		return nil
	}
}

// WithPlaintextLegacy lets masterless 0.4.1 peers, which speak plaintext
// only, into a server with an identity; without it a server with an
// identity refuses every plaintext connection. A 0.4.1 peer proves nothing:
// whoever reaches the port can claim any id no authenticated node has used
// with this server, read what is sent to that id and send as it. It can
// neither take nor evict the session of a node that authenticated (see the
// README). Dials with WithProtocol(Protocol041) need it. It requires
// WithIdentity.
func WithPlaintextLegacy() Option {
	return func(s *settings) error { s.plaintextLegacy = true; return nil }
}

// secure checks the authentication options together and sets the runtime's
// configuration from them.
func (s *settings) secure() error {
	if s.identity == nil {
		switch {
		case s.trust != nil:
			return fmt.Errorf("%w: WithTrust without WithIdentity: a server proves itself with an identity before it checks others", ErrBadConfig)
		case s.plaintextLegacy:
			return fmt.Errorf("%w: WithPlaintextLegacy without WithIdentity: a server without an identity speaks plaintext anyway", ErrBadConfig)
		}
		return nil
	}
	switch {
	case s.trust == nil:
		return fmt.Errorf("%w: WithIdentity without WithTrust: say whose certificates to believe (TrustKeys or TrustCA)", ErrBadConfig)
	case s.trust.empty():
		return fmt.Errorf("%w: the trust pins no key and names no CA: it would believe nobody", ErrBadConfig)
	case s.identity.ID() != s.cfg.FSM.ID:
		return fmt.Errorf("%w: the identity is %q's, the server's id is %q", ErrBadConfig, s.identity.ID(), s.cfg.FSM.ID)
	case s.cfg.FSM.LegacyDial && !s.plaintextLegacy:
		return fmt.Errorf("%w: WithProtocol(Protocol041) dials 0.4.1 peers, which speak plaintext only: add WithPlaintextLegacy", ErrBadConfig)
	}
	s.cfg.TLS = &netio.TLS{Config: tlsConfig(s.identity, s.trust), PeerID: peerID}
	s.cfg.FSM.RequireAuth = true
	s.cfg.FSM.PlaintextLegacy = s.plaintextLegacy
	return nil
}
