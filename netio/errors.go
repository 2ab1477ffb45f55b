package netio

import (
	"errors"

	"github.com/masterless-go/masterless/fsm"
)

// ErrBadAddress: an address is not of the form tcp://host:port. Use the
// string another node's Info returns.
var ErrBadAddress = errors.New("masterless: bad address; want tcp://host:port, as returned by Info")

// ErrListen: the node could not listen where it was told to (WithHost,
// WithPort): the port is taken, the host is not an address of this machine
// or does not resolve. The wrapped error says which.
var ErrListen = errors.New("masterless: cannot listen")

// TLS errors: why a connection's TLS handshake failed. The verification
// (TLS.Config's VerifyConnection) returns errors wrapping them; netio wraps
// a peer's refusal of this node's certificate in ErrUntrusted. They are the
// state machine's sentinels (fsm.ErrUntrusted, fsm.ErrCertificateExpired),
// which stops retrying an address kept since a Connect when a dial to it
// fails with one of them (fsm/seeds.go).
var (
	// ErrUntrusted: a certificate is not trusted: its key is not the one
	// pinned for its id, no id is pinned for it, or no trusted CA signed it;
	// or the peer refused this node's certificate.
	ErrUntrusted = fsm.ErrUntrusted
	// ErrCertificateExpired: a certificate is outside its validity period
	// (expired, or not valid yet). Issue a new one.
	ErrCertificateExpired = fsm.ErrCertificateExpired
)
