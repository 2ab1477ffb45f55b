package netio

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"sync/atomic"

	"github.com/masterless-go/masterless/fsm"
)

// TLS secures a Runtime's connections (spec/PROTOCOL.md, section 7.2): every
// v1 dial runs a TLS client handshake before the preamble, and an accepted
// connection whose first byte starts a TLS record (wire.DetectTLS) runs a
// server handshake. netio reports the id the handshake proved to the
// connection layer (fsm.Dialed.Peer, fsm.Accepted.Peer) and the state machine
// decides: it checks the HELLO against that id, and refuses plaintext when
// fsm.Config.RequireAuth says so. A 0.4.1 dial stays plaintext (0.4.1 speaks
// nothing else), as does a plaintext dialer's accepted connection.
type TLS struct {
	// Config serves both ends: tls.Client on dials, tls.Server on accepted
	// connections. It must present the node's certificate, require the
	// peer's (ClientAuth tls.RequireAnyClientCert) and verify it in
	// VerifyConnection against the node's trust, and allow TLS 1.3 only
	// (MinVersion). Start checks the version and the client certificate.
	Config *tls.Config
	// PeerID returns the node id that the verified peer certificate of a
	// finished handshake names.
	PeerID func(cs tls.ConnectionState) (string, error)
}

// validate refuses a TLS setting that would leave connections
// unauthenticated or on an older TLS version.
func (t *TLS) validate() error {
	switch {
	case t.Config == nil || t.PeerID == nil:
		return fmt.Errorf("%w: TLS needs a tls.Config and a PeerID function", fsm.ErrBadConfig)
	case t.Config.MinVersion < tls.VersionTLS13:
		return fmt.Errorf("%w: TLS must be 1.3 only (MinVersion)", fsm.ErrBadConfig)
	case t.Config.ClientAuth != tls.RequireAnyClientCert && t.Config.ClientAuth != tls.RequireAndVerifyClientCert:
		return fmt.Errorf("%w: TLS must require the dialer's certificate (ClientAuth)", fsm.ErrBadConfig)
	case len(t.Config.Certificates) == 0 && t.Config.GetCertificate == nil:
		return fmt.Errorf("%w: TLS has no certificate to present", fsm.ErrBadConfig)
	}
	return nil
}

// clientHandshake runs the dialer's TLS handshake on nc, within ctx, and
// returns the session and the id the acceptor's certificate proved. Called
// without the core lock.
func (n *Runtime) clientHandshake(ctx context.Context, nc net.Conn) (*tls.Conn, string, error) {
	hc := newHandshakeConn(nc, nil)
	sc := tls.Client(hc, n.cfg.TLS.Config)
	err := sc.HandshakeContext(ctx)
	hc.finished()
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			// A peer that never answers the ClientHello (a 0.4.1 node waits
			// for a line) is a handshake that did not finish in time.
			return nil, "", fmt.Errorf("%w: TLS: %w", fsm.ErrHandshakeTimeout, err)
		}
		return nil, "", tlsError(err)
	}
	peer, err := n.cfg.TLS.PeerID(sc.ConnectionState())
	if err != nil {
		return nil, "", err
	}
	return sc, peer, nil
}

// tlsError says what a failed TLS handshake or read means for the user: the
// verification's own errors (ErrUntrusted, ErrCertificateExpired) pass as
// they are; a peer that answers without TLS has not authenticated
// (fsm.ErrUnauthenticated); a peer that aborts the handshake with an alert
// refused this node's certificate (ErrUntrusted; in TLS 1.3 the dialer hears
// of it at its first read after the handshake).
func tlsError(err error) error {
	var rh tls.RecordHeaderError
	var op *net.OpError
	switch {
	case errors.Is(err, ErrUntrusted), errors.Is(err, ErrCertificateExpired), errors.Is(err, fsm.ErrIDMismatch):
		return err
	case errors.As(err, &rh):
		return fmt.Errorf("%w: the peer does not speak TLS (%v)", fsm.ErrUnauthenticated, err)
	case errors.As(err, &op) && op.Op == "remote error":
		return fmt.Errorf("%w: the peer refused the TLS handshake, most likely this node's certificate (%v)", ErrUntrusted, err)
	}
	return err
}

// handshakeBudget bounds the bytes a TLS handshake reads from the socket,
// at either end, before it completes (handshakeConn); past it the handshake
// fails with errHandshakeTooLong. crypto/tls buffers a whole handshake
// message before it checks it, and a Certificate message may claim up to
// 256 KiB, so without a bound a dialer that proved nothing made an acceptor
// hold about 305 KiB for each handshake slot it took (a black-box audit: 77
// MiB for 256 slots), until the handshake timeout. A real handshake reads
// far less. The acceptor reads the ClientHello (about 1.5 KiB: its
// X25519MLKEM768 key share is 1.2 KiB) and the dialer's certificate flight
// (the chain, a signature, Finished) with perhaps the first frames behind
// it; the dialer reads the ServerHello (its key share about 1.1 KiB) and
// the acceptor's flight. An Ed25519 certificate is about 0.5 KiB, so a
// masterless chain (self-signed, or a leaf and the CA's) is 1-2 KiB, and
// even a chain through a few RSA-4096 intermediates of an outside CA (1.5-2
// KiB each) stays under 10 KiB. 32 KiB leaves that margin and more, and
// keeps what crypto/tls can hold for an unproven connection to about twice
// the budget (its record and message buffers).
const handshakeBudget = 32 << 10

// errHandshakeTooLong: a TLS handshake read more than handshakeBudget bytes.
// Its peer proved nothing, so it is refused as unauthenticated (Stats counts
// it as closed "unauthenticated", an acceptor logs it at Warn).
var errHandshakeTooLong = fmt.Errorf("%w: its TLS handshake went past %d bytes, the bound on a handshake (a masterless node's takes a few KiB)",
	fsm.ErrUnauthenticated, handshakeBudget)

// handshakeConn is the net.Conn a TLS handshake runs on (tls.Server on an
// accepted connection, tls.Client on a dial), and the tls.Conn's transport
// afterwards. Until finished is called it reads at most handshakeBudget
// bytes from the socket, then fails with errHandshakeTooLong, and it keeps
// the first error of the socket (ioErr): a handshake that failed without
// one was refused by crypto/tls itself, not lost. After finished it passes
// reads and writes through unchanged.
//
// An accepted connection's first byte was already read (to tell TLS from
// plaintext): Read returns first before reading the socket.
type handshakeConn struct {
	net.Conn
	first []byte
	left  int         // bytes the handshake may still read
	done  atomic.Bool // the handshake ended: no bound, nothing kept
	ioErr error       // the socket's first error during the handshake
}

// newHandshakeConn returns nc for a TLS handshake, with the bytes already
// read from it (first, nil on a dial).
func newHandshakeConn(nc net.Conn, first []byte) *handshakeConn {
	return &handshakeConn{Conn: nc, first: first, left: handshakeBudget - len(first)}
}

// finished lifts the bound once the handshake has ended (called by the
// goroutine that ran it, before the tls.Conn is used by any other).
func (h *handshakeConn) finished() { h.done.Store(true) }

// socketFailed reports whether a read or write of the socket failed during
// the handshake (a reset, the peer's FIN, a deadline), as opposed to a
// handshake crypto/tls refused or one over the budget.
func (h *handshakeConn) socketFailed() bool { return h.ioErr != nil }

// Read returns the bytes read ahead first, then reads the connection, at
// most the budget's remainder while the handshake runs.
func (h *handshakeConn) Read(b []byte) (int, error) {
	if len(h.first) > 0 {
		k := copy(b, h.first)
		h.first = h.first[k:]
		return k, nil
	}
	if h.done.Load() {
		return h.Conn.Read(b)
	}
	if h.left <= 0 {
		return 0, errHandshakeTooLong
	}
	if len(b) > h.left {
		b = b[:h.left]
	}
	k, err := h.Conn.Read(b)
	h.left -= k
	if err != nil && h.ioErr == nil {
		h.ioErr = err
	}
	return k, err
}

// Write writes to the connection, keeping the first error while the
// handshake runs.
func (h *handshakeConn) Write(b []byte) (int, error) {
	k, err := h.Conn.Write(b)
	if err != nil && !h.done.Load() && h.ioErr == nil {
		h.ioErr = err
	}
	return k, err
}
