package masterless

import (
	"crypto/ed25519"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"time"
)

// A Trust says whose certificates a node believes, and so which node ids
// can take part: either a pinned map of id to public key (TrustKeys), or a
// cluster CA whose certificates name the ids (TrustCA). Set it with
// WithTrust, beside WithIdentity.
type Trust struct {
	keys  map[string]ed25519.PublicKey // pinned; nil for a CA trust
	roots *x509.CertPool               // nil for pinned keys
	cas   int                          // CA certificates in roots
}

// empty reports whether t believes nobody: no key pinned, no CA.
func (t *Trust) empty() bool { return len(t.keys) == 0 && t.cas == 0 }

// TrustKeys trusts exactly the nodes of keys: a peer is taken for node id
// only if its certificate names id and holds keys[id] (the certificate's
// signature and issuer do not matter: the TLS handshake proves the peer
// holds the key). A certificate whose key is pinned for another id is
// refused with ErrIDMismatch (and ErrUntrusted), any other with
// ErrUntrusted; one outside its validity period with ErrCertificateExpired.
// The map is copied. Pinning the node's own id too is harmless.
func TrustKeys(keys map[string]ed25519.PublicKey) *Trust {
	t := &Trust{keys: make(map[string]ed25519.PublicKey, len(keys))}
	for id, k := range keys {
		t.keys[id] = append(ed25519.PublicKey(nil), k...)
	}
	return t
}

// TrustCA trusts every node whose certificate one of cas signed (directly,
// or through intermediates the peer presents) for an Ed25519 key, and takes
// the peer for the id that certificate names. A certificate no trusted CA
// signed is refused with ErrUntrusted; one outside its validity period (or
// signed by a CA outside its own) with ErrCertificateExpired.
func TrustCA(cas ...*x509.Certificate) *Trust {
	t := &Trust{roots: x509.NewCertPool()}
	for _, c := range cas {
		if c != nil {
			t.roots.AddCert(c)
			t.cas++
		}
	}
	return t
}

// verify checks a peer's certificate chain (its own first) at time now and
// returns the node id it proves.
func (t *Trust) verify(chain []*x509.Certificate, now time.Time) (string, error) {
	if len(chain) == 0 {
		return "", fmt.Errorf("%w: the peer presented no certificate", ErrUntrusted)
	}
	leaf := chain[0]
	id, err := certID(leaf)
	if err != nil {
		return "", err
	}
	pub, ok := leaf.PublicKey.(ed25519.PublicKey)
	if !ok {
		return "", fmt.Errorf("%w: %q's certificate holds a %T, not an Ed25519 key", ErrUntrusted, id, leaf.PublicKey)
	}
	if t.roots != nil {
		inter := x509.NewCertPool()
		for _, c := range chain[1:] {
			inter.AddCert(c)
		}
		_, err := leaf.Verify(x509.VerifyOptions{Roots: t.roots, Intermediates: inter, CurrentTime: now,
			KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}})
		var invalid x509.CertificateInvalidError
		switch {
		case errors.As(err, &invalid) && invalid.Reason == x509.Expired:
			return "", fmt.Errorf("%w: %q's certificate: %w", ErrCertificateExpired, id, err)
		case err != nil:
			return "", fmt.Errorf("%w: %q's certificate: %w", ErrUntrusted, id, err)
		}
		return id, nil
	}
	if want, ok := t.keys[id]; !ok || !pub.Equal(want) {
		for other, k := range t.keys {
			if pub.Equal(k) {
				return "", fmt.Errorf("%w: %w: the certificate names %q, its key is pinned for %q", ErrUntrusted, ErrIDMismatch, id, other)
			}
		}
		if !ok {
			return "", fmt.Errorf("%w: no key is pinned for %q", ErrUntrusted, id)
		}
		return "", fmt.Errorf("%w: the key of %q's certificate is not the one pinned for %q", ErrUntrusted, id, id)
	}
	if now.Before(leaf.NotBefore) || now.After(leaf.NotAfter) {
		return "", fmt.Errorf("%w: %q's certificate is valid from %s to %s", ErrCertificateExpired, id,
			leaf.NotBefore.UTC().Format(time.RFC3339), leaf.NotAfter.UTC().Format(time.RFC3339))
	}
	return id, nil
}

// alpn is the TLS application protocol both ends offer (spec/PROTOCOL.md,
// 7.2): a TLS peer offering only other protocols is refused by the server.
const alpn = "masterless"

// tlsConfig returns the TLS configuration of a node with identity id and
// trust t, for both ends of its connections: TLS 1.3 only, both
// certificates required, the peer's checked against t; no session
// resumption, so every connection proves its certificate afresh.
func tlsConfig(id *Identity, t *Trust) *tls.Config {
	cert := tls.Certificate{PrivateKey: id.key, Leaf: id.chain[0]}
	for _, c := range id.chain {
		cert.Certificate = append(cert.Certificate, c.Raw)
	}
	return &tls.Config{
		Certificates: []tls.Certificate{cert},
		MinVersion:   tls.VersionTLS13,
		ClientAuth:   tls.RequireAnyClientCert,
		// The peer is checked against the trust in VerifyConnection, at
		// both ends; there is no host name to check.
		InsecureSkipVerify: true,
		VerifyConnection: func(cs tls.ConnectionState) error {
			_, err := t.verify(cs.PeerCertificates, time.Now())
			return err
		},
		NextProtos:             []string{alpn},
		SessionTicketsDisabled: true,
	}
}

// peerID returns the node id of a verified connection's peer.
func peerID(cs tls.ConnectionState) (string, error) {
	if len(cs.PeerCertificates) == 0 {
		return "", fmt.Errorf("%w: the peer presented no certificate", ErrUntrusted)
	}
	return certID(cs.PeerCertificates[0])
}
