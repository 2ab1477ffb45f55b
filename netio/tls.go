package netio

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"

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
	sc := tls.Client(nc, n.cfg.TLS.Config)
	if err := sc.HandshakeContext(ctx); err != nil {
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

// prefixed is a net.Conn whose first bytes were already read: Read returns
// them first. The acceptor reads one byte to tell TLS from plaintext, then
// hands the connection with that byte to tls.Server.
type prefixed struct {
	net.Conn
	first []byte
}

// Read returns the bytes read ahead first, then reads the connection.
func (p *prefixed) Read(b []byte) (int, error) {
	if len(p.first) > 0 {
		k := copy(b, p.first)
		p.first = p.first[k:]
		return k, nil
	}
	return p.Conn.Read(b)
}
