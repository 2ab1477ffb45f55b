package masterless

import (
	"errors"

	"github.com/masterless-go/masterless/fsm"
	"github.com/masterless-go/masterless/netio"
	"github.com/masterless-go/masterless/wire"
)

// Sentinel errors. Every error the package returns or reports to a handler
// wraps one of these, or, when a context ends the call (Connect,
// SendContext, SendManyContext), the context's error; test for them with
// errors.Is. They are the same values
// as the ones packages fsm, wire and netio define (ErrJSON, of the JSON
// helpers, is this package's own).
var (
	// ErrSelfConnect: the address dialed is this server's own; or a
	// command (SendErr, SendMany, Keep, Disconnect) named this server's own
	// id, which it refuses with ErrUnknownPeer, wrapping this too.
	ErrSelfConnect = fsm.ErrSelfConnect
	// ErrDuplicateID: another live server uses this server's id.
	ErrDuplicateID = fsm.ErrDuplicateID
	// ErrHandshakeTimeout: the dial and handshake did not finish in time.
	ErrHandshakeTimeout = fsm.ErrHandshakeTimeout
	// ErrPeerTimeout: nothing was heard from a peer for the peer timeout, or
	// it read nothing this server wrote for that long (noticed once what
	// this server has for it fills the sockets' buffers between them, so a
	// peer that still sends but reads nothing, holding less than that, is
	// not: its own end then times this server out).
	ErrPeerTimeout = fsm.ErrPeerTimeout
	// ErrDuplicate: a connection duplicated the pair's session and was closed.
	ErrDuplicate = fsm.ErrDuplicate
	// ErrUnwanted: neither end keeps the pair, so the session was closed.
	ErrUnwanted = fsm.ErrUnwanted
	// ErrStaleIncarnation: a connection came from an older process of a peer.
	ErrStaleIncarnation = fsm.ErrStaleIncarnation
	// ErrReplaced: a newer connection or a restarted peer took over the session.
	ErrReplaced = fsm.ErrReplaced
	// ErrProtocol: a peer broke the protocol and its connection was closed.
	ErrProtocol = fsm.ErrProtocol
	// ErrPeerClosed: the peer closed the connection.
	ErrPeerClosed = fsm.ErrPeerClosed
	// ErrConnectionLost: the connection broke without a goodbye (reset, a
	// failed read or write); the wrapped error is the operating system's.
	ErrConnectionLost = fsm.ErrConnectionLost
	// ErrClosed: this server is closed. Create a new one.
	ErrClosed = fsm.ErrClosed
	// ErrUnknownPeer: no such peer is connected or kept. Connect to it first.
	ErrUnknownPeer = fsm.ErrUnknownPeer
	// ErrNotConnected: the peer has no session and is not being reconnected.
	ErrNotConnected = fsm.ErrNotConnected
	// ErrQueueFull: the peer's send queue is full of messages it has not
	// acknowledged yet (it reconnects, or its callbacks are slow).
	ErrQueueFull = fsm.ErrQueueFull
	// ErrMessagesLost: messages Send accepted will never be delivered; the
	// Lost event carries them.
	ErrMessagesLost = fsm.ErrMessagesLost
	// ErrPayloadTooLarge: a payload does not fit in one frame (WithMaxFrameSize),
	// or is larger than the whole send queue toward a peer (WithSendQueue).
	ErrPayloadTooLarge = fsm.ErrPayloadTooLarge
	// ErrNotJSONObject: a masterless 0.4.1 peer was sent a payload that is
	// not one JSON object in UTF-8, the only kind of message 0.4.1 carries.
	ErrNotJSONObject = fsm.ErrNotJSONObject
	// ErrJSON: SendJSON or SendManyJSON could not encode the value, or
	// DecodeJSON could not decode the payload into it (encoding/json's
	// error is wrapped too).
	ErrJSON = errors.New("masterless: the value and its JSON do not match; see the wrapped encoding/json error")
	// ErrTooManyHandshakes: too many connections were handshaking at once.
	ErrTooManyHandshakes = fsm.ErrTooManyHandshakes
	// ErrEvicted: an accepted connection that had not sent its HELLO was
	// closed to make room for a newer one (the handshake slots were full).
	ErrEvicted = fsm.ErrEvicted
	// ErrDialFailed: the TCP dial failed; the wrapped error says why.
	ErrDialFailed = fsm.ErrDialFailed
	// ErrDisconnected: the peer was disconnected while a Connect waited.
	ErrDisconnected = fsm.ErrDisconnected
	// ErrBadConfig: an option has an invalid value.
	ErrBadConfig = fsm.ErrBadConfig
	// ErrBadAddress: an address is not tcp://host:port.
	ErrBadAddress = netio.ErrBadAddress
	// ErrListen: New could not listen on the host and port it was given
	// (WithHost, WithPort): the port is taken, or the host is not an
	// address of this machine (then the error wraps ErrBadConfig too); the
	// wrapped error says which.
	ErrListen = netio.ErrListen
	// ErrVersionMismatch: the peer speaks another protocol version.
	ErrVersionMismatch = wire.ErrVersionMismatch
	// ErrBadMagic: the peer is not a masterless node.
	ErrBadMagic = wire.ErrBadMagic
	// ErrFrameTooLarge: a frame exceeded the max frame size.
	ErrFrameTooLarge = wire.ErrFrameTooLarge
	// ErrMalformedFrame: a peer sent bytes that are not a valid frame.
	ErrMalformedFrame = wire.ErrMalformedFrame

	// Authentication (WithIdentity, WithTrust). Connect returns them when
	// its dial's TLS handshake or HELLO is refused; for accepted connections
	// they are in the logs (Warn).

	// ErrUnauthenticated: a peer did not prove which node it is: it speaks
	// plaintext to a node that requires TLS (or this node dialed one that
	// does not speak TLS), its TLS handshake was refused before its
	// certificate was checked (none presented, an application protocol
	// other than masterless, TLS before 1.3) or read more than 32 KiB (a
	// node's takes a few), or it is a plaintext 0.4.1 peer naming a node
	// that has authenticated before.
	ErrUnauthenticated = fsm.ErrUnauthenticated
	// ErrIDMismatch: a peer's HELLO (or certificate) names another id than
	// the one its key is trusted for: it tried to speak for another node.
	ErrIDMismatch = fsm.ErrIDMismatch
	// ErrUntrusted: a certificate is not trusted: no key is pinned for its
	// id, its key is not the pinned one, or no trusted CA signed it; or the
	// peer refused this node's certificate.
	ErrUntrusted = netio.ErrUntrusted
	// ErrCertificateExpired: a certificate is outside its validity period.
	ErrCertificateExpired = netio.ErrCertificateExpired
)
