package netio

import (
	"log/slog"
	"time"

	"github.com/masterless-go/masterless/fsm"
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

// Config configures a Node. Zero values take defaults.
type Config struct {
	// FSM configures the protocol: ID (required), timeouts, queue bounds.
	// Incarnation defaults to the wall clock in nanoseconds and Seed to a
	// value from crypto/rand.
	FSM fsm.Config

	// Host and Port to listen on; default 127.0.0.1 and port 0 (any free port).
	Host string
	Port int
	// Advertise is the tcp://host:port address sent to peers and returned by
	// Info. Default: the listener's own address. Set it when listening on
	// 0.0.0.0 or behind a NAT.
	Advertise string

	// MaxFrameSize bounds a received frame; default wire.DefaultMaxFrameSize.
	MaxFrameSize int
	// SendBuffer bounds the bytes waiting in one connection's output buffer.
	// A Send that finds it over the bound waits for the writer (see Node.Send).
	SendBuffer int
	// DispatchQueue and DispatchBytes bound the events (and their payload
	// bytes) waiting for the handlers; past them readers stop reading.
	DispatchQueue int
	DispatchBytes int

	// Logger receives protocol violations and closes (Info and Warn) and
	// normal events (Debug). Default slog.Default().
	Logger *slog.Logger

	// Events are called from the Node's dispatcher goroutine.
	Events Events
	// EventsGate, when not nil, holds back every event until it is closed,
	// so that a wrapper can finish building itself before its callbacks run.
	EventsGate <-chan struct{}
}

// Events are the callbacks a Node delivers to. They are called one at a time,
// in the order the fsm produced them, from a single dispatcher goroutine per
// Node; for one peer that order is Connected, Messages, Disconnected. A nil
// callback drops its events. A callback may call any Node method except Close.
type Events struct {
	// Listening: the listener is up at info (tcp://host:port).
	Listening func(info string)
	// Connected: peer has a session; info is its advertised address.
	Connected func(peer, info string)
	// Disconnected: peer is gone; err says why (nil when this node asked).
	Disconnected func(peer string, err error)
	// Message: payload arrived from peer. The handler owns payload.
	Message func(peer string, payload []byte)
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
