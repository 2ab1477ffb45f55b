package masterless

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/url"
	"os"
	"time"
	"unicode/utf8"

	"github.com/masterless-go/masterless/wire"
)

// An Identity is what a node proves itself with: its id, an Ed25519 private
// key, and an X.509 certificate for that key that names the id. With
// WithIdentity (and WithTrust, which says whose certificates this node
// believes), every connection of the node runs TLS 1.3 with both ends'
// certificates, and a peer's HELLO must name the id its certificate proved
// (spec/PROTOCOL.md, section 7).
//
// The certificate names the id in a URI subject alternative name
// "masterless:" followed by the id escaped as a URL path segment (an id
// "node-a" gives "masterless:node-a"; any byte string of 1 to 255 bytes
// can be named). Exactly one such name identifies a node certificate.
//
// NewIdentity makes a self-signed identity, for trust by pinned keys
// (TrustKeys); a CA issues identities for trust by CA (CA.Issue, TrustCA).
// WritePEM and ReadIdentity (WriteFile and LoadIdentity for files) store it.
type Identity struct {
	id    string
	key   ed25519.PrivateKey
	chain []*x509.Certificate // the node's certificate first, then any intermediates
}

// idScheme is the URI scheme of the subject alternative name that names a
// node's id in its certificate.
const idScheme = "masterless"

// noExpiry is the NotAfter of a self-signed identity: RFC 5280's "no well-
// defined expiration date". A pinned key is trusted until it is unpinned.
var noExpiry = time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC)

// NewIdentity returns a fresh identity for node id: a new Ed25519 key and a
// self-signed certificate naming id, valid from an hour ago (clock skew) with
// no expiry. Trust it elsewhere by pinning its key (TrustKeys with
// PublicKey). It fails with ErrBadConfig for an id that is empty or longer
// than 255 bytes.
func NewIdentity(id string) (*Identity, error) {
	if err := checkID(id); err != nil {
		return nil, err
	}
	pub, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("masterless: new identity for %q: %w", id, err)
	}
	tmpl := nodeTemplate(id, time.Now().Add(-time.Hour), noExpiry)
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, pub, key)
	if err != nil {
		return nil, fmt.Errorf("masterless: new identity for %q: %w", id, err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("masterless: new identity for %q: %w", id, err)
	}
	return &Identity{id: id, key: key, chain: []*x509.Certificate{cert}}, nil
}

func checkID(id string) error {
	if id == "" || len(id) > wire.MaxIDLen {
		return fmt.Errorf("%w: a node id is 1 to %d bytes, got %d", ErrBadConfig, wire.MaxIDLen, len(id))
	}
	return nil
}

// nodeTemplate is the certificate of node id, valid from notBefore to
// notAfter, for TLS at both ends.
func nodeTemplate(id string, notBefore, notAfter time.Time) *x509.Certificate {
	t := &x509.Certificate{
		SerialNumber:          serial(),
		URIs:                  []*url.URL{idURI(id)},
		NotBefore:             notBefore,
		NotAfter:              notAfter,
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
	}
	if utf8.ValidString(id) {
		t.Subject = pkix.Name{CommonName: id} // for people reading the certificate; the URI is what counts
	}
	return t
}

// serial returns a random 128-bit certificate serial number.
func serial() *big.Int {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on supported platforms
	b[0] &= 0x7f           // positive
	return new(big.Int).SetBytes(b[:])
}

// idURI is the subject alternative name that names node id.
func idURI(id string) *url.URL {
	return &url.URL{Scheme: idScheme, Opaque: url.PathEscape(id)}
}

// certID returns the node id cert names, or an error wrapping ErrUntrusted
// if it names none or more than one.
func certID(cert *x509.Certificate) (string, error) {
	id, n := "", 0
	for _, u := range cert.URIs {
		if u.Scheme != idScheme {
			continue
		}
		v, err := url.PathUnescape(u.Opaque)
		if err != nil || v == "" || u.Opaque == "" {
			return "", fmt.Errorf("%w: the certificate's node id %q is malformed", ErrUntrusted, u.String())
		}
		id, n = v, n+1
	}
	switch {
	case n == 0:
		return "", fmt.Errorf("%w: the certificate names no node id (no %s: URI)", ErrUntrusted, idScheme)
	case n > 1:
		return "", fmt.Errorf("%w: the certificate names %d node ids", ErrUntrusted, n)
	case len(id) > wire.MaxIDLen:
		return "", fmt.Errorf("%w: the certificate's node id is %d bytes, more than %d", ErrUntrusted, len(id), wire.MaxIDLen)
	}
	return id, nil
}

// ID returns the node id the identity's certificate names.
func (i *Identity) ID() string { return i.id }

// PublicKey returns the identity's public key, the one to pin for its id
// elsewhere (TrustKeys).
func (i *Identity) PublicKey() ed25519.PublicKey { return i.key.Public().(ed25519.PublicKey) }

// Certificate returns the identity's certificate.
func (i *Identity) Certificate() *x509.Certificate { return i.chain[0] }

// WritePEM writes the identity as PEM: its certificate (then any
// intermediates) as CERTIFICATE blocks, then its private key as a PKCS #8
// PRIVATE KEY block. Keep what it writes secret: it holds the key. Errors
// wrap ErrBadConfig and the writer's error.
func (i *Identity) WritePEM(w io.Writer) error {
	for _, c := range i.chain {
		if err := writeCert(w, c); err != nil {
			return err
		}
	}
	return writeKey(w, i.key)
}

// writeCert writes c as a PEM CERTIFICATE block; an error wraps
// ErrBadConfig, like every error of the identity and CA files.
func writeCert(w io.Writer, c *x509.Certificate) error {
	if err := pem.Encode(w, &pem.Block{Type: "CERTIFICATE", Bytes: c.Raw}); err != nil {
		return fmt.Errorf("%w: writing PEM: %w", ErrBadConfig, err)
	}
	return nil
}

// writeKey writes key as a PKCS #8 PRIVATE KEY block; an error wraps
// ErrBadConfig.
func writeKey(w io.Writer, key ed25519.PrivateKey) error {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err == nil {
		err = pem.Encode(w, &pem.Block{Type: "PRIVATE KEY", Bytes: der})
	}
	if err != nil {
		return fmt.Errorf("%w: writing PEM: %w", ErrBadConfig, err)
	}
	return nil
}

// ReadIdentity reads an identity WritePEM wrote: CERTIFICATE blocks (the
// node's first) and one PKCS #8 PRIVATE KEY block holding an Ed25519 key,
// which must be the certificate's. The id is the one the certificate names.
// Errors wrap ErrBadConfig.
func ReadIdentity(r io.Reader) (*Identity, error) {
	certs, key, err := readPEM(r)
	if err != nil {
		return nil, err
	}
	if len(certs) == 0 || key == nil {
		return nil, fmt.Errorf("%w: an identity needs a CERTIFICATE and a PRIVATE KEY block", ErrBadConfig)
	}
	pub, ok := certs[0].PublicKey.(ed25519.PublicKey)
	if !ok || !pub.Equal(key.Public()) {
		return nil, fmt.Errorf("%w: the private key is not the certificate's (an Ed25519 key is needed)", ErrBadConfig)
	}
	id, err := certID(certs[0])
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadConfig, err)
	}
	return &Identity{id: id, key: key, chain: certs}, nil
}

// readPEM reads every CERTIFICATE block and at most one Ed25519 PRIVATE KEY
// block from r; other blocks are skipped.
func readPEM(r io.Reader) ([]*x509.Certificate, ed25519.PrivateKey, error) {
	data, err := io.ReadAll(io.LimitReader(r, 1<<20))
	if err != nil { // a failing reader, or a path that is a directory
		return nil, nil, fmt.Errorf("%w: reading PEM: %w", ErrBadConfig, err)
	}
	var certs []*x509.Certificate
	var key ed25519.PrivateKey
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			break
		}
		switch b.Type {
		case "CERTIFICATE":
			c, err := x509.ParseCertificate(b.Bytes)
			if err != nil {
				return nil, nil, fmt.Errorf("%w: %w", ErrBadConfig, err)
			}
			certs = append(certs, c)
		case "PRIVATE KEY":
			if key != nil {
				return nil, nil, fmt.Errorf("%w: more than one PRIVATE KEY block", ErrBadConfig)
			}
			k, err := x509.ParsePKCS8PrivateKey(b.Bytes)
			if err != nil {
				return nil, nil, fmt.Errorf("%w: %w", ErrBadConfig, err)
			}
			ek, ok := k.(ed25519.PrivateKey)
			if !ok {
				return nil, nil, fmt.Errorf("%w: the private key is a %T, not Ed25519", ErrBadConfig, k)
			}
			key = ek
		}
	}
	return certs, key, nil
}

// WriteFile writes the identity as PEM (WritePEM) to a new file at path,
// readable by its owner only. It fails if the file exists, and a write that
// fails leaves no file behind. Errors wrap ErrBadConfig and the operating
// system's error (fs.ErrExist for a file that exists).
func (i *Identity) WriteFile(path string) error { return writeNewFile(path, i.WritePEM) }

// writeNewFile creates the file at path (mode 0600, not if it exists) and
// fills it with write; when that or closing fails, it removes the file, so
// that a retry does not find a partial one in its way.
func writeNewFile(path string, write func(io.Writer) error) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("%w: identity file: %w", ErrBadConfig, err)
	}
	err = write(f)
	if cerr := f.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("%w: identity file: %w", ErrBadConfig, cerr)
	}
	if err != nil {
		_ = os.Remove(path)
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}

// LoadIdentity reads the identity in the PEM file at path (ReadIdentity).
// Errors wrap ErrBadConfig (and fs.ErrNotExist when there is no such file).
func LoadIdentity(path string) (*Identity, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("%w: identity: %w", ErrBadConfig, err)
	}
	defer f.Close()
	id, err := ReadIdentity(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return id, nil
}

// ReadCertificate reads the first CERTIFICATE block of PEM data: a CA's
// certificate for TrustCA (from CA.WriteCertificatePEM), or a node's. Errors
// wrap ErrBadConfig.
func ReadCertificate(r io.Reader) (*x509.Certificate, error) {
	certs, _, err := readPEM(r)
	if err != nil {
		return nil, err
	}
	if len(certs) == 0 {
		return nil, fmt.Errorf("%w: no CERTIFICATE block", ErrBadConfig)
	}
	return certs[0], nil
}

// LoadCertificate reads the first certificate of the PEM file at path
// (ReadCertificate): the CA certificate every node of a CA trust loads.
// Errors wrap ErrBadConfig (and fs.ErrNotExist when there is no such file).
func LoadCertificate(path string) (*x509.Certificate, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("%w: certificate: %w", ErrBadConfig, err)
	}
	defer f.Close()
	c, err := ReadCertificate(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

// errNoKey is returned by ReadCA for PEM data without the CA's key.
var errNoKey = errors.New("no PRIVATE KEY block: the CA's key is needed to issue certificates")
