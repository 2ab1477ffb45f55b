package fsm

import (
	"errors"
	"fmt"

	"github.com/masterless-go/masterless/wire"
)

// Sentinel errors. Every error the fsm reports wraps one of these, so callers
// can test with errors.Is. The masterless package re-exports them.
var (
	// ErrSelfConnect: the address dialed is this node's own.
	ErrSelfConnect = errors.New("masterless: connected to itself; dial another node's address")
	// ErrDuplicateID: another live node uses this node's id. Give every node a unique id.
	ErrDuplicateID = errors.New("masterless: another node uses the same id; give every node a unique id")
	// ErrHandshakeTimeout: the handshake did not finish within the handshake
	// timeout. Check that the address is a masterless node and reachable, or
	// raise the handshake timeout.
	ErrHandshakeTimeout = errors.New("masterless: handshake timed out; check the address and that the peer is running, or raise the handshake timeout")
	// ErrPeerTimeout: nothing was heard from the peer for the peer timeout,
	// or the peer read nothing this node wrote for that long.
	ErrPeerTimeout = errors.New("masterless: peer silent for longer than the peer timeout")
	// ErrDuplicate: the connection duplicated the pair's session and was closed;
	// the session itself carries on. Not a failure for Connect.
	ErrDuplicate = errors.New("masterless: duplicate connection closed; the existing session carries on")
	// ErrUnwanted: neither end keeps the pair, so the session was closed.
	ErrUnwanted = errors.New("masterless: neither node keeps the other, connection discarded")
	// ErrStaleIncarnation: the connection comes from an older process with the
	// peer's id, which has been replaced by a newer one.
	ErrStaleIncarnation = errors.New("masterless: connection from an older incarnation of the peer")
	// ErrReplaced: a newer connection or a restarted peer took over the session.
	ErrReplaced = errors.New("masterless: session replaced by a newer connection")
	// ErrProtocol: a peer broke the protocol; the connection was closed. The
	// wrapped error says what it sent.
	ErrProtocol = errors.New("masterless: protocol violation")
	// ErrPeerClosed: the peer closed the connection: it disconnected or shut
	// down (BYE normal or shutdown), or closed it cleanly without a reason
	// (a FIN with no BYE: a process that exited, a proxy).
	ErrPeerClosed = errors.New("masterless: peer closed the connection")
	// ErrConnectionLost: the connection broke without a goodbye: it was
	// reset (a peer that died with data unread, a proxy, a NAT), or a read or
	// write failed. The wrapped error is the operating system's. The peer
	// may still be alive; a kept peer is redialed.
	ErrConnectionLost = errors.New("masterless: connection lost")
	// ErrClosed: this node is shut down. Create a new one.
	ErrClosed = errors.New("masterless: node closed")
	// ErrUnknownPeer: no such peer is connected or kept. Connect to it first.
	ErrUnknownPeer = errors.New("masterless: unknown peer; Connect to it first")
	// ErrNotConnected: the peer is known but has no session and is not kept,
	// or was unreachable for longer than the reconnect grace.
	ErrNotConnected = errors.New("masterless: peer not connected")
	// ErrQueueFull: the peer's send queue is full: it holds what the peer has
	// not yet acknowledged (while it reconnects, or reads slowly). Slow down,
	// wait for room (SendContext), or raise the send queue bound.
	ErrQueueFull = errors.New("masterless: send queue full: the peer has not acknowledged enough of what was sent; retry later, or wait for room with SendContext")
	// ErrMessagesLost: messages accepted for a peer will never be delivered:
	// the peer restarted (a new incarnation) before acknowledging them, or
	// stayed away longer than the reconnect grace. The Lost event carries them.
	ErrMessagesLost = errors.New("masterless: messages lost")
	// ErrPayloadTooLarge: the payload does not fit in one frame, or is larger
	// than the whole send queue toward a peer (Config.QueueBytes). Split it,
	// or raise the max frame size on every node (or the queue bound).
	ErrPayloadTooLarge = errors.New("masterless: payload too large for one frame or for the whole send queue; split it, or raise the limit it names")
	// ErrTooManyHandshakes: more connections are handshaking than allowed; the
	// new one was refused.
	ErrTooManyHandshakes = errors.New("masterless: too many connections handshaking; connection refused")
	// ErrDialFailed: the TCP dial failed. The wrapped error says why.
	ErrDialFailed = errors.New("masterless: dial failed")
	// ErrUnauthenticated: the connection did not prove which node it comes
	// from (no TLS, or no certificate this node trusts), and this node
	// requires it; or it is a plaintext 0.4.1 connection naming a node that
	// has authenticated here before.
	ErrUnauthenticated = errors.New("masterless: peer not authenticated; configure an identity and trust on every node")
	// ErrIDMismatch: the peer's HELLO names another id than the one its key
	// authenticated: it tried to speak for a node it has not the key of.
	ErrIDMismatch = errors.New("masterless: the peer's id differs from the id its key authenticates")
	// ErrUntrusted: a certificate is not trusted: its key is not the one
	// pinned for its id, no id is pinned for it, or no trusted CA signed it;
	// or the peer refused this node's certificate. The adapter's TLS
	// verification reports it (netio).
	ErrUntrusted = errors.New("masterless: untrusted certificate")
	// ErrCertificateExpired: a certificate is outside its validity period
	// (expired, or not valid yet). Issue a new one.
	ErrCertificateExpired = errors.New("masterless: certificate expired or not yet valid")
	// ErrDisconnected: the user disconnected the peer while the request was pending.
	ErrDisconnected = errors.New("masterless: peer disconnected by this node")
)

// byeSentinel maps a BYE code received from a peer onto the sentinel a local
// caller tests for; codes not listed (protocol error, unknown) give ErrProtocol.
var byeSentinel = map[wire.Code]error{
	wire.CodeNormal:          ErrPeerClosed,
	wire.CodeShutdown:        ErrPeerClosed,
	wire.CodeDuplicate:       ErrDuplicate,
	wire.CodeUnwanted:        ErrUnwanted,
	wire.CodeStale:           ErrStaleIncarnation,
	wire.CodeReplaced:        ErrReplaced,
	wire.CodeSelfConnect:     ErrSelfConnect,
	wire.CodeDuplicateID:     ErrDuplicateID,
	wire.CodeHandshake:       ErrHandshakeTimeout,
	wire.CodePeerTimeout:     ErrPeerTimeout,
	wire.CodeUnauthenticated: ErrUnauthenticated,
}

func errForCode(c wire.Code, text string) error {
	base, ok := byeSentinel[c]
	if !ok {
		base = ErrProtocol
	}
	return &ByeError{Code: c, Text: text, err: base}
}

// ByeError is the reason a peer gave in its BYE frame.
type ByeError struct {
	Code wire.Code // the peer's reason code
	Text string    // the peer's reason text
	err  error
}

// Error renders the peer's code and text.
func (e *ByeError) Error() string {
	if e.Text == "" {
		return fmt.Sprintf("peer said bye (%s)", e.Code)
	}
	return fmt.Sprintf("peer said bye (%s): %s", e.Code, e.Text)
}

// Unwrap returns the sentinel for the code, for errors.Is.
func (e *ByeError) Unwrap() error { return e.err }
