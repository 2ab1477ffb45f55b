package masterless

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"io"
	"time"
)

// A CA is a cluster certificate authority: it issues node identities whose
// certificates name their ids and expire, and the nodes trust each other by
// its certificate (TrustCA) rather than by a list of keys. Its key signs
// certificates only; keep it off the nodes. A node needs its own identity
// (CA.Issue, then Identity.WriteFile) and the CA's certificate
// (CA.WriteCertificatePEM, then ReadCertificate).
type CA struct {
	cert *x509.Certificate
	key  ed25519.PrivateKey
}

// NewCA returns a new CA with a fresh Ed25519 key and a self-signed
// certificate named name, valid from an hour ago until validFor from now.
func NewCA(name string, validFor time.Duration) (*CA, error) {
	pub, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("masterless: new CA: %w", err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(validFor),
		KeyUsage:              x509.KeyUsageCertSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true, // it signs node certificates, not other CAs
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, pub, key)
	if err != nil {
		return nil, fmt.Errorf("masterless: new CA: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("masterless: new CA: %w", err)
	}
	return &CA{cert: cert, key: key}, nil
}

// Certificate returns the CA's certificate, the one nodes trust (TrustCA).
func (ca *CA) Certificate() *x509.Certificate { return ca.cert }

// Issue returns a new identity for node id: a fresh Ed25519 key and a
// certificate naming id, signed by the CA, valid from an hour ago (clock
// skew; or from before notAfter if that is earlier) until notAfter. A node
// presenting it after notAfter is refused with ErrCertificateExpired.
func (ca *CA) Issue(id string, notAfter time.Time) (*Identity, error) {
	if err := checkID(id); err != nil {
		return nil, err
	}
	pub, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("masterless: issue %q: %w", id, err)
	}
	notBefore := min(time.Now().Add(-time.Hour).UnixNano(), notAfter.Add(-time.Hour).UnixNano())
	tmpl := nodeTemplate(id, time.Unix(0, notBefore), notAfter)
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, pub, ca.key)
	if err != nil {
		return nil, fmt.Errorf("masterless: issue %q: %w", id, err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("masterless: issue %q: %w", id, err)
	}
	return &Identity{id: id, key: key, chain: []*x509.Certificate{cert}}, nil
}

// WriteCertificatePEM writes the CA's certificate (not its key) as a PEM
// CERTIFICATE block: what every node reads (ReadCertificate) to trust the CA.
// Errors wrap ErrBadConfig and the writer's error.
func (ca *CA) WriteCertificatePEM(w io.Writer) error { return writeCert(w, ca.cert) }

// WritePEM writes the CA's certificate and private key as PEM, for ReadCA.
// Keep what it writes secret. Errors wrap ErrBadConfig and the writer's
// error.
func (ca *CA) WritePEM(w io.Writer) error {
	if err := ca.WriteCertificatePEM(w); err != nil {
		return err
	}
	return writeKey(w, ca.key)
}

// ReadCA reads a CA that WritePEM wrote. Errors wrap ErrBadConfig.
func ReadCA(r io.Reader) (*CA, error) {
	certs, key, err := readPEM(r)
	if err != nil {
		return nil, err
	}
	if len(certs) == 0 {
		return nil, fmt.Errorf("%w: no CERTIFICATE block", ErrBadConfig)
	}
	if key == nil {
		return nil, fmt.Errorf("%w: %w", ErrBadConfig, errNoKey)
	}
	if pub, ok := certs[0].PublicKey.(ed25519.PublicKey); !ok || !pub.Equal(key.Public()) || !certs[0].IsCA {
		return nil, fmt.Errorf("%w: not a CA certificate with its Ed25519 key", ErrBadConfig)
	}
	return &CA{cert: certs[0], key: key}, nil
}
