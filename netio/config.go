package netio

import (
	"fmt"
	"log/slog"
	"time"
	"unicode/utf8"

	"github.com/masterless-go/masterless/fsm"
	"github.com/masterless-go/masterless/wire"
)

// Defaults for the zero values of Config.
const (
	DefaultHost          = "127.0.0.1"
	DefaultSendBuffer    = 4 << 20 // bytes waiting in one connection's output buffer
	DefaultDispatchQueue = 4096    // events waiting for the handlers
	DefaultDispatchBytes = 8 << 20 // payload bytes waiting for the handlers
	readBufferSize       = 64 << 10
	maxLinger            = 2 * time.Second
)

// noTCPKeepAlive turns off the kernel's TCP keep-alive probes on the
// connections netio dials and accepts (Go enables them by default, four
// setsockopt calls per connection): the protocol's heartbeats and peer
// timeout (fsm.Config) already detect a dead peer and keep middleboxes
// from forgetting an idle connection, much sooner than the probes would.
// TCP_NODELAY is Go's default too, so netio sets no socket option at all.
const noTCPKeepAlive = -1

// Config configures a Runtime. Zero values take defaults.
type Config struct {
	// FSM configures the protocol: ID (required), timeouts, queue bounds.
	// Incarnation defaults to the wall clock in nanoseconds (see
	// IncarnationFile) and Seed to a value from crypto/rand.
	FSM fsm.Config

	// IncarnationFile, when set, makes the incarnation the greater of the
	// wall clock in nanoseconds and the number in this file plus one, and
	// records it there (atomically) before Start returns; a missing file is
	// created. Without it, a clock that steps back across a restart makes
	// peers refuse the new process as stale until its old session times out
	// (incarnation.go). It excludes FSM.Incarnation.
	IncarnationFile string

	// Host and Port to listen on; default 127.0.0.1 and port 0 (any free port).
	Host string
	Port int
	// Advertise is the tcp://host:port address sent to peers and returned by
	// Info. Default: the listener's own address. Set it when listening on
	// 0.0.0.0 or behind a NAT. It must be valid UTF-8 and at most
	// wire.MaxInfoLen bytes, the most a HELLO carries.
	Advertise string

	// TLS, when set, secures the connections: see TLS. With it set,
	// FSM.RequireAuth normally is too (the masterless package does so).
	TLS *TLS

	// MaxFrameSize bounds a received frame; default wire.DefaultMaxFrameSize.
	MaxFrameSize int
	// SendBuffer bounds the bytes waiting in the output buffer of a
	// connection to a masterless 0.4.1 peer: a Send that finds it over the
	// bound waits for the writer (see Runtime.Send). On a v2 session the
	// peer's credit bounds that buffer and Send never waits.
	SendBuffer int
	// DispatchQueue and DispatchBytes bound the events (and their payload
	// bytes) waiting for the handlers; past them the readers of 0.4.1
	// connections stop reading. A v2 peer is bounded by the credit it was
	// granted (fsm.Config.Window, grown to MaxWindow at most), so its reader never stops.
	DispatchQueue int
	DispatchBytes int

	// Logger receives protocol violations and closes (Info and Warn) and
	// normal events (Debug). Default slog.Default().
	Logger *slog.Logger

	// Events are called from the Runtime's dispatcher goroutine.
	Events Events
	// EventsGate, when not nil, holds back every event until it is closed,
	// so that a wrapper can finish building itself before its callbacks run.
	EventsGate <-chan struct{}
}

// Events are the callbacks a Runtime delivers to. They are called one at a time,
// from a single dispatcher goroutine per Runtime, in the order the fsm
// produced them, except that messages from different peers are handed over
// taking turns among the peers (dispatch.go); for one peer the order is
// Connected, Messages, Disconnected. A nil callback drops its events. A
// callback may call any Runtime method except Close.
type Events struct {
	// Listening: the listener is up at info (tcp://host:port).
	Listening func(info string)
	// Connected: peer has a session; info is its advertised address.
	Connected func(peer, info string)
	// Disconnected: peer is gone; err says why (nil when this node asked).
	Disconnected func(peer string, err error)
	// Message: payload arrived from peer. The handler owns payload.
	Message func(peer string, payload []byte)
	// Lost: the payloads, accepted by Send for peer, will never be
	// delivered (it restarted, or stayed away past the reconnect grace);
	// err wraps fsm.ErrMessagesLost. The handler owns them.
	Lost func(peer string, payloads [][]byte, err error)
	// Member (discovery): change is fsm.ActMemberUp (peer, or its newer
	// incarnation inc, is known, advertised at addr), fsm.ActMemberLeft (it
	// left gracefully) or fsm.ActMemberGone (forgotten: not heard of for the
	// member timeout; err says so).
	Member func(change fsm.ActionKind, peer string, inc uint64, addr string, err error)
}

// validate refuses what fsm.New cannot see: settings with which the node
// could not encode its own HELLO, and conflicting incarnation settings. Every
// error wraps fsm.ErrBadConfig and says what to change.
func (c Config) validate() error {
	if c.FSM.LegacyDial && !utf8.ValidString(c.FSM.ID) {
		return fmt.Errorf("%w: id %q is not valid UTF-8, which masterless 0.4.1's JSON HELLO needs (it is set to dial with Protocol041)", fsm.ErrBadConfig, c.FSM.ID)
	}
	if c.Advertise != "" {
		if err := checkInfo(c.Advertise); err != nil {
			return err
		}
	}
	if c.TLS != nil {
		if err := c.TLS.validate(); err != nil {
			return err
		}
	}
	if c.IncarnationFile != "" && c.FSM.Incarnation != 0 {
		return fmt.Errorf("%w: an incarnation (%d) and an incarnation file (%s) are both set; use one", fsm.ErrBadConfig, c.FSM.Incarnation, c.IncarnationFile)
	}
	return nil
}

// checkInfo refuses an advertised address that is not tcp://host:port or
// that no HELLO could carry: longer than wire.MaxInfoLen, or not UTF-8 (a
// 0.4.1 HELLO is JSON, and no host name needs bytes that are not UTF-8).
func checkInfo(info string) error {
	if len(info) > wire.MaxInfoLen {
		return fmt.Errorf("%w: the advertised address is %d bytes; a HELLO carries at most %d", fsm.ErrBadConfig, len(info), wire.MaxInfoLen)
	}
	if !utf8.ValidString(info) {
		return fmt.Errorf("%w: the advertised address %q is not valid UTF-8", fsm.ErrBadConfig, info)
	}
	if _, err := ParseAddr(info); err != nil {
		return fmt.Errorf("%w: the advertised address: %w", fsm.ErrBadConfig, err)
	}
	return nil
}

// checkHelloFits refuses a frame limit (WithMaxFrameSize) too small for the
// node's own HELLO: no handshake of it could ever complete, as the peer
// refuses a frame over the limit the HELLO announces (and the node refuses
// to receive one over its own).
func checkHelloFits(fc fsm.Config, info string) error {
	hello := wire.Frame{Type: wire.Hello, ID: fc.ID, Incarnation: fc.Incarnation, Info: info, MaxFrame: uint32(fc.MaxFrameSize)}
	enc, err := wire.Binary{}.AppendFrame(nil, &hello)
	if err != nil {
		return fmt.Errorf("%w: the HELLO: %w", fsm.ErrBadConfig, err)
	}
	if size := len(enc) - 4; size > fc.MaxFrameSize { // the 32-bit length is not part of the frame
		return fmt.Errorf("%w: max frame size %d is smaller than this node's HELLO (%d bytes with its id and address); raise WithMaxFrameSize", fsm.ErrBadConfig, fc.MaxFrameSize, size)
	}
	return nil
}

func (c Config) withDefaults() Config {
	if c.Host == "" {
		c.Host = DefaultHost
	}
	if c.SendBuffer <= 0 {
		c.SendBuffer = DefaultSendBuffer
	}
	if c.DispatchQueue <= 0 {
		c.DispatchQueue = DefaultDispatchQueue
	}
	if c.DispatchBytes <= 0 {
		c.DispatchBytes = DefaultDispatchBytes
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}
