package masterless

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"testing/iotest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/masterless-go/masterless/wire"
)

// Authentication over real loopback TCP: nodes with identities, the attacks
// of issue 11 (wrong key, unknown key, forged id, replayed HELLO of an old
// incarnation, plaintext where TLS is required, expired certificate) and the
// plaintext opt-in for 0.4.1 peers. Each asserts what the refused side
// reports (errors.Is on the sentinel) and what sessions exist afterwards.

// identities makes self-signed identities for ids and a trust pinning all
// of their keys.
func identities(t testing.TB, ids ...string) (map[string]*Identity, *Trust) {
	t.Helper()
	out := map[string]*Identity{}
	keys := map[string]ed25519.PublicKey{}
	for _, id := range ids {
		i, err := NewIdentity(id)
		require.NoError(t, err)
		out[id], keys[id] = i, i.PublicKey()
	}
	return out, TrustKeys(keys)
}

// errLog is a slog handler that keeps the errors logged under "err", for
// errors.Is on what an acceptor refused.
type errLog struct {
	mu     sync.Mutex
	errs   []error
	levels []slog.Level // of errs
	next   slog.Handler
}

func newErrLog() *errLog { return &errLog{next: newLogger(&logSink{}).Handler()} }

func (h *errLog) Enabled(context.Context, slog.Level) bool { return true }
func (h *errLog) Handle(ctx context.Context, r slog.Record) error {
	r.Attrs(func(a slog.Attr) bool {
		if err, ok := a.Value.Any().(error); ok && (a.Key == "err" || a.Key == "reason") {
			h.mu.Lock()
			h.errs = append(h.errs, err)
			h.levels = append(h.levels, r.Level)
			h.mu.Unlock()
		}
		return true
	})
	return h.next.Handle(ctx, r)
}
func (h *errLog) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *errLog) WithGroup(string) slog.Handler      { return h }

// has reports whether an error wrapping target was logged.
func (h *errLog) has(target error) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, e := range h.errs {
		if errors.Is(e, target) {
			return true
		}
	}
	return false
}

// hasAt reports whether an error wrapping target was logged at level.
func (h *errLog) hasAt(level slog.Level, target error) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	for i, e := range h.errs {
		if h.levels[i] == level && errors.Is(e, target) {
			return true
		}
	}
	return false
}

func (h *errLog) option() Option { return WithLogger(slog.New(h)) }

// secured starts a server with identity and trust (and opts).
func secured(t testing.TB, id *Identity, trust *Trust, opts ...Option) (*Server, *recorder) {
	t.Helper()
	return newServer(t, id.ID(), append([]Option{WithIdentity(id), WithTrust(trust)}, opts...)...)
}

func TestSecuredMeshExchangesMessages(t *testing.T) {
	ids, trust := identities(t, "a", "b", "c")
	a, ra := secured(t, ids["a"], trust)
	b, rb := secured(t, ids["b"], trust)
	c, rc := secured(t, ids["c"], trust)
	for _, p := range [][2]*Server{{a, b}, {b, c}, {c, a}} {
		peer, err := p[0].Connect(ctxT(t), p[1].Info())
		require.NoError(t, err)
		require.Equal(t, p[1].ID(), peer)
	}
	for _, s := range []*Server{a, b, c} {
		eventually(t, s.ID()+" connected to both others", func() bool { return len(s.Connections()) == 2 })
	}
	for _, s := range []*Server{a, b, c} {
		for _, to := range s.Connections() {
			require.NoError(t, s.SendErr(to, []byte("from "+s.ID())))
		}
	}
	for _, r := range []struct {
		rec  *recorder
		from []string
	}{{ra, []string{"b", "c"}}, {rb, []string{"a", "c"}}, {rc, []string{"a", "b"}}} {
		for _, f := range r.from {
			eventually(t, "message from "+f, func() bool { return len(r.rec.messages(f)) == 1 })
			require.Equal(t, "from "+f, string(r.rec.messages(f)[0]))
		}
	}
	// Every node requires authentication (RequireAuth): a session exists
	// only over a TLS connection that proved the peer's id.
}

// forge returns an identity naming id whose certificate holds key's public
// key: what someone holding key (and not id's) can make.
func forge(t testing.TB, id string, key ed25519.PrivateKey) *Identity {
	t.Helper()
	tmpl := nodeTemplate(id, time.Now().Add(-time.Hour), noExpiry)
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	require.NoError(t, err)
	cert, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	return &Identity{id: id, key: key, chain: []*x509.Certificate{cert}}
}

// refusedBothWays has intruder dial victim and victim dial intruder, and
// checks that each dial fails (intruderErr for the intruder's Connect,
// victimErr for the victim's, and victimErr in the victim's log for the
// connection it accepted) and that no session exists at either end.
func refusedBothWays(t *testing.T, victim *Server, victimLog *errLog, intruder *Server, victimErr, intruderErr error) {
	t.Helper()
	_, err := intruder.Connect(ctxT(t), victim.Info())
	require.ErrorIs(t, err, intruderErr, "the intruder's Connect")
	eventually(t, "the victim logs why it refused the connection", func() bool { return victimLog.has(victimErr) })
	_, err = victim.Connect(ctxT(t), intruder.Info())
	require.ErrorIs(t, err, victimErr, "the victim's Connect")
	require.NotContains(t, victim.Connections(), intruder.ID())
	require.Empty(t, intruder.Connections())
	_ = victim.Disconnect(intruder.ID()) // stop redialing
	_ = intruder.Disconnect(victim.ID())
}

// TestWrongKey: a node presenting a certificate for "b" with another key than
// the one pinned for b is refused (ErrUntrusted), whichever end dials; so is
// a certificate naming "b" for the key pinned for "m" (ErrIDMismatch: a
// trusted node cannot claim another's id in its certificate either).
func TestWrongKey(t *testing.T) {
	ids, trust := identities(t, "a", "b", "m")
	log := newErrLog()
	a, _ := secured(t, ids["a"], trust, log.option())

	impostor, err := NewIdentity("b") // a key of its own, not b's
	require.NoError(t, err)
	trustsA := TrustKeys(map[string]ed25519.PublicKey{"a": ids["a"].PublicKey()})
	b2, _ := secured(t, impostor, trustsA)
	refusedBothWays(t, a, log, b2, ErrUntrusted, ErrUntrusted)
	b2.Close()

	m := forge(t, "b", ids["m"].key) // m's key, b's name
	m2, _ := secured(t, m, trustsA)
	refusedBothWays(t, a, log, m2, ErrIDMismatch, ErrUntrusted)
}

// TestUnknownKey: a node whose key nobody pinned, or whose certificate no
// trusted CA signed, is refused with ErrUntrusted.
func TestUnknownKey(t *testing.T) {
	ids, trust := identities(t, "a")
	log := newErrLog()
	a, _ := secured(t, ids["a"], trust, log.option())
	x, err := NewIdentity("x")
	require.NoError(t, err)
	sx, _ := secured(t, x, TrustKeys(map[string]ed25519.PublicKey{"a": ids["a"].PublicKey()}))
	refusedBothWays(t, a, log, sx, ErrUntrusted, ErrUntrusted)
	// The connection a accepted and refused is counted as closed by a for
	// want of authentication, not as lost (it was counted lost).
	st := a.Stats()
	require.Positive(t, st.Closed["unauthenticated"], "Closed: %v", st.Closed)
	require.Zero(t, st.Lost, "Closed: %v", st.Closed)

	// The same with CAs: nodes of two CAs do not trust each other.
	ca1, err := NewCA("one", time.Hour)
	require.NoError(t, err)
	ca2, err := NewCA("two", time.Hour)
	require.NoError(t, err)
	c1, err := ca1.Issue("c1", time.Now().Add(time.Hour))
	require.NoError(t, err)
	c2, err := ca2.Issue("c2", time.Now().Add(time.Hour))
	require.NoError(t, err)
	log1 := newErrLog()
	s1, _ := secured(t, c1, TrustCA(ca1.Certificate()), log1.option())
	s2, _ := secured(t, c2, TrustCA(ca2.Certificate()))
	refusedBothWays(t, s1, log1, s2, ErrUntrusted, ErrUntrusted)
}

// TestExpiredCertificate: a CA-issued certificate past its NotAfter is
// refused with ErrCertificateExpired by the end that checks it; while nodes
// with valid certificates of the same CA form a session.
func TestExpiredCertificate(t *testing.T) {
	ca, err := NewCA("cluster", time.Hour)
	require.NoError(t, err)
	trust := TrustCA(ca.Certificate())
	issue := func(id string, notAfter time.Time) *Identity {
		i, err := ca.Issue(id, notAfter)
		require.NoError(t, err)
		return i
	}
	log := newErrLog()
	a, _ := secured(t, issue("a", time.Now().Add(time.Hour)), trust, log.option())
	b, _ := secured(t, issue("b", time.Now().Add(time.Hour)), trust)
	peer, err := b.Connect(ctxT(t), a.Info())
	require.NoError(t, err)
	require.Equal(t, "a", peer)
	eventually(t, "a has b's session", func() bool { return sameSet(a.Connections(), "b") })

	e, _ := secured(t, issue("e", time.Now().Add(-time.Minute)), trust)
	// e's dial: a refuses e's certificate as expired (its log), and e hears
	// a refusal (TLS says no more than "bad certificate").
	refusedBothWays(t, a, log, e, ErrCertificateExpired, ErrUntrusted)
	require.Equal(t, []string{"b"}, a.Connections(), "the valid session is untouched")
}

// TestPlaintextPeerRefused: a node without an identity cannot join a node
// that has one, whichever dials: the secured acceptor refuses its plaintext
// HELLO (BYE unauthenticated: the plaintext dialer's Connect fails with
// ErrUnauthenticated too), and the secured dialer finds no TLS at the other
// end (ErrUnauthenticated).
func TestPlaintextPeerRefused(t *testing.T) {
	ids, trust := identities(t, "a")
	log := newErrLog()
	a, _ := secured(t, ids["a"], trust, log.option())
	p, _ := newServer(t, "p")
	refusedBothWays(t, a, log, p, ErrUnauthenticated, ErrUnauthenticated)
}

// rawHello dials addr (over TLS as who, trusting trust, or in plaintext
// when who is nil), sends the v1 preamble and hello, and returns the frames
// the node answers with until it closes the connection (or 30 s pass).
func rawHello(t *testing.T, addr string, who *Identity, trust *Trust, hello wire.Frame) []wire.Frame {
	t.Helper()
	hostport := strings.TrimPrefix(addr, "tcp://")
	nc, err := net.DialTimeout("tcp", hostport, waitFor)
	require.NoError(t, err)
	defer nc.Close()
	var c net.Conn = nc
	if who != nil {
		tc := tls.Client(nc, tlsConfig(who, trust))
		require.NoError(t, tc.HandshakeContext(ctxT(t)))
		c = tc
	}
	require.NoError(t, c.SetDeadline(time.Now().Add(waitFor)))
	var codec wire.Binary
	out, err := codec.AppendFrame(codec.AppendPreamble(nil), &hello)
	require.NoError(t, err)
	_, err = c.Write(out)
	require.NoError(t, err)
	in, _ := io.ReadAll(c) // until the node closes
	k, err := codec.ParsePreamble(in)
	require.NoError(t, err)
	require.NotZero(t, k, "no preamble in %q", in)
	in = in[k:]
	var frames []wire.Frame
	for len(in) > 0 {
		f, k, err := codec.ParseFrame(in)
		require.NoError(t, err)
		if k == 0 {
			break
		}
		frames = append(frames, f)
		in = in[k:]
	}
	return frames
}

// bye returns the BYE among frames, failing the test if there is none.
func bye(t *testing.T, frames []wire.Frame) wire.Frame {
	t.Helper()
	for _, f := range frames {
		if f.Type == wire.Bye {
			return f
		}
	}
	t.Fatalf("no BYE in %v", frames)
	return wire.Frame{}
}

// TestForgedID: a trusted node ("m", its own valid certificate) whose HELLO
// claims another node's id ("b") is refused with BYE unauthenticated
// (ErrIDMismatch in the victim's log), whether or not b has a session, and
// b's session survives: a key speaks only for its own id.
func TestForgedID(t *testing.T) {
	ids, trust := identities(t, "a", "b", "m")
	log := newErrLog()
	a, ra := secured(t, ids["a"], trust, log.option())
	b, _ := secured(t, ids["b"], trust, WithIncarnation(1000))
	_, err := b.Connect(ctxT(t), a.Info())
	require.NoError(t, err)
	eventually(t, "a has b's session", func() bool { return sameSet(a.Connections(), "b") })

	for _, inc := range []uint64{999, 1000, 1 << 62} { // older, same, newer than b's
		frames := rawHello(t, a.Info(), ids["m"], trust, wire.Frame{Type: wire.Hello, ID: "b", Incarnation: inc, Info: b.Info()})
		f := bye(t, frames)
		require.Equal(t, wire.CodeUnauthenticated, f.Code, "inc %d: %v", inc, frames)
		for _, g := range frames {
			require.NotEqual(t, wire.Welcome, g.Type, "inc %d: the forger was granted a session", inc)
		}
	}
	require.True(t, log.has(ErrIDMismatch))
	require.Equal(t, []string{"b"}, a.Connections())
	// (The event may still be on its way to the callback: a returned
	// Connect does not wait for it. A replacement would make it two.)
	eventually(t, "a's user heard of b", func() bool { return ra.connectCount("b") > 0 })
	require.Equal(t, 1, ra.connectCount("b"), "b's session was never replaced")
	require.Empty(t, ra.disconnects("b"))
	require.True(t, a.Send("b", []byte("still here")))
}

// TestReplayedHello: the HELLO of an old incarnation of b, replayed in
// plaintext (what anyone who recorded b's pre-TLS traffic could send) or
// over TLS by a stale process holding b's key, takes nothing from b's
// current session: plaintext is refused (ErrUnauthenticated), the old
// incarnation as stale (ErrStaleIncarnation).
func TestReplayedHello(t *testing.T) {
	ids, trust := identities(t, "a", "b")
	log := newErrLog()
	a, ra := secured(t, ids["a"], trust, log.option())
	b, rb := secured(t, ids["b"], trust, WithIncarnation(1000))
	_, err := b.Connect(ctxT(t), a.Info())
	require.NoError(t, err)
	eventually(t, "a has b's session", func() bool { return sameSet(a.Connections(), "b") })

	old := wire.Frame{Type: wire.Hello, ID: "b", Incarnation: 999, Info: b.Info()}
	f := bye(t, rawHello(t, a.Info(), nil, nil, old))
	require.Equal(t, wire.CodeUnauthenticated, f.Code)
	require.True(t, log.has(ErrUnauthenticated))

	f = bye(t, rawHello(t, a.Info(), ids["b"], trust, old))
	require.Equal(t, wire.CodeStale, f.Code)
	require.True(t, log.has(ErrStaleIncarnation))

	require.Equal(t, []string{"b"}, a.Connections())
	eventually(t, "a's user heard of b", func() bool { return ra.connectCount("b") > 0 }) // as above
	require.Equal(t, 1, ra.connectCount("b"))
	require.Empty(t, ra.disconnects("b"))
	require.Empty(t, rb.disconnects("a"))
	require.True(t, b.Send("a", []byte("still here")))
	eventually(t, "b's message on the surviving session", func() bool { return len(ra.messages("b")) == 1 })
}

// legacyDialer speaks to addr as a masterless 0.4.1 node with id would (JSON
// lines in plaintext; a Go node dialing with Protocol041 would be upgraded
// to v1 by the acceptor, so the bytes are written here by hand). It returns
// the connection and a reader on it, after the HELLO.
func legacyDialer(t *testing.T, addr, id string) (net.Conn, *bufio.Reader) {
	t.Helper()
	nc, err := net.DialTimeout("tcp", strings.TrimPrefix(addr, "tcp://"), waitFor)
	require.NoError(t, err)
	t.Cleanup(func() { nc.Close() })
	require.NoError(t, nc.SetDeadline(time.Now().Add(waitFor)))
	_, err = fmt.Fprintf(nc, "{\"id\":%q,\"info\":\"tcp://127.0.0.1:1\"}\r\n", id)
	require.NoError(t, err)
	return nc, bufio.NewReader(nc)
}

// legacyJoined is legacyDialer past the handshake: the node's HELLO read,
// priority sent, its confirm read.
func legacyJoined(t *testing.T, addr, id string) net.Conn {
	t.Helper()
	nc, r := legacyDialer(t, addr, id)
	_, err := r.ReadString('\n')
	require.NoError(t, err)
	_, err = io.WriteString(nc, `{"priority":1}`+"\r\n")
	require.NoError(t, err)
	line, err := r.ReadString('\n')
	require.NoError(t, err)
	require.Equal(t, `{"confirm":true}`+"\r\n", line)
	return nc
}

// TestPlaintextLegacyOptIn: a masterless 0.4.1 dialer, which can only speak
// plaintext, is refused by a node with an identity (ErrUnauthenticated in
// its log; 0.4.1 has no BYE, it sees the connection close), and let in with
// WithPlaintextLegacy, where it can still not take the id of a node that
// authenticated.
func TestPlaintextLegacyOptIn(t *testing.T) {
	ids, trust := identities(t, "a", "b")
	log := newErrLog()
	a, _ := secured(t, ids["a"], trust, log.option())
	_, r := legacyDialer(t, a.Info(), "j")
	line, err := r.ReadString('\n')
	require.ErrorIs(t, err, io.EOF, "refused: closed without a word (got %q)", line)
	require.True(t, log.has(ErrUnauthenticated))
	require.Empty(t, a.Connections())

	log = newErrLog()
	a2, ra2 := secured(t, ids["a"], trust, WithPlaintextLegacy(), log.option())
	nc, r := legacyDialer(t, a2.Info(), "j")
	line, err = r.ReadString('\n')
	require.NoError(t, err)
	require.Contains(t, line, `"id":"a"`, "a answers the 0.4.1 HELLO with its id")
	_, err = io.WriteString(nc, `{"priority":1}`+"\r\n")
	require.NoError(t, err)
	line, err = r.ReadString('\n')
	require.NoError(t, err)
	require.Equal(t, `{"confirm":true}`+"\r\n", line)
	eventually(t, "a has j's 0.4.1 session", func() bool { return sameSet(a2.Connections(), "j") })
	_, err = io.WriteString(nc, `{"hi":"a"}`+"\r\n")
	require.NoError(t, err)
	eventually(t, "j's message", func() bool { return len(ra2.messages("j")) == 1 })

	// b authenticates; a 0.4.1 dialer claiming "b" is refused.
	b, _ := secured(t, ids["b"], trust)
	_, err = b.Connect(ctxT(t), a2.Info())
	require.NoError(t, err)
	eventually(t, "a has b's session", func() bool { return sameSet(a2.Connections(), "b", "j") })
	_, r = legacyDialer(t, a2.Info(), "b")
	line, err = r.ReadString('\n')
	require.ErrorIs(t, err, io.EOF, "refused (got %q)", line)
	require.True(t, log.has(ErrUnauthenticated))
	require.True(t, sameSet(a2.Connections(), "b", "j"))
}

// TestAuthConfig: the authentication options are checked together in New.
func TestAuthConfig(t *testing.T) {
	ids, trust := identities(t, "a")
	for name, opts := range map[string][]Option{
		"identity of another id":     {WithIdentity(ids["a"]), WithTrust(trust)},
		"identity without trust":     {WithIdentity(ids["a"])},
		"trust without identity":     {WithTrust(trust)},
		"plaintext without identity": {WithPlaintextLegacy()},
		"0.4.1 dials without opt-in": {WithIdentity(ids["a"]), WithTrust(trust), WithProtocol(Protocol041)},
		"nil identity":               {WithIdentity(nil), WithTrust(trust)},
		"empty pinned trust":         {WithIdentity(ids["a"]), WithTrust(TrustKeys(nil))},
		"empty CA trust":             {WithIdentity(ids["a"]), WithTrust(TrustCA())},
	} {
		id := "a"
		if name == "identity of another id" {
			id = "z"
		}
		_, err := New(id, append(opts, WithLogger(slog.New(slog.DiscardHandler)))...)
		require.ErrorIs(t, err, ErrBadConfig, name)
	}
	s, err := New("a", WithIdentity(ids["a"]), WithTrust(trust), WithProtocol(Protocol041), WithPlaintextLegacy(),
		WithLogger(slog.New(slog.DiscardHandler)))
	require.NoError(t, err)
	require.NoError(t, s.Close())
}

// TestIdentityPEM: identities and CAs survive a round trip through PEM and
// files, ids of any bytes are named and read back exactly, and keys that do
// not belong together are refused.
func TestIdentityPEM(t *testing.T) {
	for _, id := range []string{"a", "node-7", "a/b c:d%e?f#g", "\x00\xff\n", "été", strings.Repeat("x", 255)} {
		i, err := NewIdentity(id)
		require.NoError(t, err, "%q", id)
		var buf strings.Builder
		require.NoError(t, i.WritePEM(&buf))
		j, err := ReadIdentity(strings.NewReader(buf.String()))
		require.NoError(t, err, "%q", id)
		require.Equal(t, id, j.ID())
		require.True(t, i.PublicKey().Equal(j.PublicKey()))
		got, err := certID(j.Certificate())
		require.NoError(t, err)
		require.Equal(t, id, got)
	}
	_, err := NewIdentity("")
	require.ErrorIs(t, err, ErrBadConfig)
	_, err = NewIdentity(strings.Repeat("x", 256))
	require.ErrorIs(t, err, ErrBadConfig)

	path := t.TempDir() + "/a.pem"
	a, err := NewIdentity("a")
	require.NoError(t, err)
	require.NoError(t, a.WriteFile(path))
	require.Error(t, a.WriteFile(path), "an existing identity file is not overwritten")
	back, err := LoadIdentity(path)
	require.NoError(t, err)
	require.Equal(t, "a", back.ID())

	// A certificate with another key than the private key is refused.
	b, err := NewIdentity("b")
	require.NoError(t, err)
	var mixed strings.Builder
	require.NoError(t, pem.Encode(&mixed, &pem.Block{Type: "CERTIFICATE", Bytes: a.Certificate().Raw}))
	require.NoError(t, writeKey(&mixed, b.key))
	_, err = ReadIdentity(strings.NewReader(mixed.String()))
	require.ErrorIs(t, err, ErrBadConfig)

	ca, err := NewCA("cluster", time.Hour)
	require.NoError(t, err)
	var cbuf, certOnly strings.Builder
	require.NoError(t, ca.WritePEM(&cbuf))
	require.NoError(t, ca.WriteCertificatePEM(&certOnly))
	ca2, err := ReadCA(strings.NewReader(cbuf.String()))
	require.NoError(t, err)
	_, err = ReadCA(strings.NewReader(certOnly.String()))
	require.ErrorIs(t, err, ErrBadConfig, "a CA without its key cannot issue")
	root, err := ReadCertificate(strings.NewReader(certOnly.String()))
	require.NoError(t, err)
	caPath := t.TempDir() + "/ca.pem"
	require.NoError(t, os.WriteFile(caPath, []byte(certOnly.String()), 0o644))
	fromFile, err := LoadCertificate(caPath)
	require.NoError(t, err)
	require.True(t, fromFile.Equal(root))
	n, err := ca2.Issue("n", time.Now().Add(time.Hour))
	require.NoError(t, err)
	got, err := TrustCA(root).verify(n.chain, time.Now())
	require.NoError(t, err, "a node the read-back CA issued is trusted by the CA's certificate")
	require.Equal(t, "n", got)
	_, err = TrustCA(root).verify(n.chain, time.Now().Add(2*time.Hour))
	require.ErrorIs(t, err, ErrCertificateExpired)
	_, err = TrustCA(root).verify(b.chain, time.Now())
	require.ErrorIs(t, err, ErrUntrusted, "a self-signed certificate is not the CA's")
}

// TestIdentityReadErrors: every way reading an identity, a certificate or a
// CA can fail wraps ErrBadConfig, as documented, including a read that
// fails (a black-box audit: a directory's path, or a failing reader, gave
// the bare read error).
func TestIdentityReadErrors(t *testing.T) {
	dir := t.TempDir()
	_, err := LoadIdentity(dir)
	require.ErrorIs(t, err, ErrBadConfig, "LoadIdentity of a directory")
	_, err = LoadCertificate(dir)
	require.ErrorIs(t, err, ErrBadConfig, "LoadCertificate of a directory")
	_, err = LoadIdentity(dir + "/missing.pem")
	require.ErrorIs(t, err, ErrBadConfig)
	require.ErrorIs(t, err, fs.ErrNotExist)

	broken := errors.New("the disk is on fire")
	_, err = ReadIdentity(iotest.ErrReader(broken))
	require.ErrorIs(t, err, ErrBadConfig, "ReadIdentity")
	require.ErrorIs(t, err, broken, "ReadIdentity")
	_, err = ReadCertificate(iotest.ErrReader(broken))
	require.ErrorIs(t, err, ErrBadConfig, "ReadCertificate")
	require.ErrorIs(t, err, broken, "ReadCertificate")
	_, err = ReadCA(iotest.ErrReader(broken))
	require.ErrorIs(t, err, ErrBadConfig, "ReadCA")
	require.ErrorIs(t, err, broken, "ReadCA")
}

// failAfter is a writer that takes limit bytes, then fails with err.
type failAfter struct {
	limit int
	err   error
}

func (w *failAfter) Write(b []byte) (int, error) {
	if len(b) > w.limit {
		k := w.limit
		w.limit = 0
		return k, w.err
	}
	w.limit -= len(b)
	return len(b), nil
}

// TestIdentityWriteErrors: writing an identity or a CA wraps ErrBadConfig
// (errors.go: every error wraps a sentinel), and an identity file whose
// write fails is removed, so that writing it again succeeds, with mode 0600
// (a black-box audit: bare OS and writer errors, and a partial file left
// behind).
func TestIdentityWriteErrors(t *testing.T) {
	a, err := NewIdentity("a")
	require.NoError(t, err)
	ca, err := NewCA("cluster", time.Hour)
	require.NoError(t, err)
	broken := errors.New("the disk is full")
	for name, write := range map[string]func(io.Writer) error{
		"Identity.WritePEM": a.WritePEM, "CA.WritePEM": ca.WritePEM, "CA.WriteCertificatePEM": ca.WriteCertificatePEM,
	} {
		var whole strings.Builder
		require.NoError(t, write(&whole))
		for _, limit := range []int{0, 100, whole.Len() - 1} { // in the first block, or the last
			err := write(&failAfter{limit: limit, err: broken})
			require.ErrorIs(t, err, ErrBadConfig, "%s, failing after %d bytes", name, limit)
			require.ErrorIs(t, err, broken, "%s, failing after %d bytes", name, limit)
		}
	}

	path := t.TempDir() + "/a.pem"
	err = writeNewFile(path, func(w io.Writer) error { return a.WritePEM(io.MultiWriter(w, &failAfter{limit: 300, err: broken})) })
	require.ErrorIs(t, err, ErrBadConfig)
	require.ErrorIs(t, err, broken)
	_, err = os.Stat(path)
	require.ErrorIs(t, err, fs.ErrNotExist, "a failed write left a partial file behind")

	require.NoError(t, a.WriteFile(path))
	info, err := os.Stat(path)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), info.Mode().Perm())
	err = a.WriteFile(path)
	require.ErrorIs(t, err, ErrBadConfig, "an existing identity file")
	require.ErrorIs(t, err, fs.ErrExist, "an existing identity file")
	back, err := LoadIdentity(path)
	require.NoError(t, err, "the existing file is left as it was")
	require.Equal(t, "a", back.ID())
}

// TestStalledTLSHandshake: a dialer that starts a TLS handshake and never
// finishes it holds one handshake slot, and only until the handshake
// timeout, or until a newer connection needs the slot: it is silent (no
// HELLO), so a node with one slot evicts it for a real node
// (spec/PROTOCOL.md 3.6).
func TestStalledTLSHandshake(t *testing.T) {
	t.Parallel() // it mostly waits out timeouts: beside the others that do (make test's time)
	ids, trust := identities(t, "a", "b")
	logs := newErrLog()
	a, _ := secured(t, ids["a"], trust, WithMaxHandshakes(1), WithHandshakeTimeout(shortHandshake), logs.option())
	b, _ := secured(t, ids["b"], trust, WithHandshakeTimeout(shortHandshake))
	stall := func() net.Conn {
		nc, err := net.DialTimeout("tcp", strings.TrimPrefix(a.Info(), "tcp://"), waitFor)
		require.NoError(t, err)
		t.Cleanup(func() { nc.Close() })
		_, err = nc.Write([]byte{wire.TLSRecordHandshake, 3, 1}) // a TLS record header, cut short
		require.NoError(t, err)
		eventually(t, "the stalled connection holds a's slot", func() bool { return a.Stats().Handshaking == 1 })
		require.NoError(t, nc.SetReadDeadline(time.Now().Add(waitFor)))
		return nc
	}

	// Alone, it is closed at the handshake timeout.
	nc := stall()
	start := time.Now()
	_, err := io.ReadAll(nc)
	requireClosedByPeer(t, err)
	held := time.Since(start)
	require.GreaterOrEqual(t, held, shortHandshake-200*time.Millisecond, "closed before the handshake timeout")
	require.Less(t, held, shortHandshake+10*time.Second, "held far past the handshake timeout")
	eventually(t, "the slot is free", func() bool { return a.Stats().Handshaking == 0 })

	// When a real node needs the slot, the stalled connection makes room.
	nc = stall()
	peer, err := b.Connect(ctxT(t), a.Info())
	require.NoError(t, err)
	require.Equal(t, "a", peer)
	_, err = io.ReadAll(nc)
	requireClosedByPeer(t, err)
	require.True(t, logs.has(ErrEvicted), "the stalled connection was evicted")
}

// requireClosedByPeer checks that reading a raw connection ended because
// the node closed it: EOF (ReadAll's nil), or a reset when the node closed
// with the stalled bytes still unread in its socket (the kernel then sends
// RST instead of FIN); not the test's read deadline.
func requireClosedByPeer(t *testing.T, err error) {
	t.Helper()
	if err == nil || errors.Is(err, syscall.ECONNRESET) {
		return
	}
	require.NoError(t, err, "a closes the stalled connection, not the test's deadline")
}

// TestCloseWithTLSPeerNotReading: Close stays prompt on a TLS session whose
// peer stopped reading while a write to it is blocked (the goodbyes get
// closeGrace, whatever tls.Conn would wait for), and leaves no goroutine
// behind (goleak, TestMain). The peer is a raw TLS client with a trusted
// certificate that handshakes, grants a huge credit, then reads nothing.
func TestCloseWithTLSPeerNotReading(t *testing.T) {
	ids, trust := identities(t, "a", "0")
	a, err := New("a", WithIdentity(ids["a"]), WithTrust(trust), WithPeerTimeout(30*time.Second),
		WithHeartbeat(time.Second), WithSendQueue(4096, 64<<20), WithLogger(newLogger(&logSink{})))
	require.NoError(t, err)
	nc, err := net.Dial("tcp", strings.TrimPrefix(a.Info(), "tcp://"))
	require.NoError(t, err)
	defer nc.Close()
	tc := tls.Client(nc, tlsConfig(ids["0"], trust))
	require.NoError(t, tc.HandshakeContext(ctxT(t)))
	closePromptWithPeerNotReading(t, a, tc)
}

// TestUntrustedConnectIsNotRetried: a Connect refused because the two nodes
// cannot authenticate each other does not leave its address kept: retrying
// cannot help until someone changes a configuration, so the victim sees no
// further handshake from the intruder (a refused dial or a timeout, by
// contrast, is retried: TestConnectRetriedUntilAnswered).
func TestUntrustedConnectIsNotRetried(t *testing.T) {
	ids, trust := identities(t, "a")
	log := newErrLog()
	a, _ := secured(t, ids["a"], trust, log.option())
	x, err := NewIdentity("x")
	require.NoError(t, err)
	intruder, _ := secured(t, x, TrustKeys(map[string]ed25519.PublicKey{"a": ids["a"].PublicKey()}))
	_, err = intruder.Connect(ctxT(t), a.Info())
	require.ErrorIs(t, err, ErrUntrusted)
	eventually(t, "a counts the refused handshake", func() bool { return a.Stats().HandshakesFailed >= 1 })
	before := a.Stats().HandshakesFailed
	time.Sleep(500 * time.Millisecond) // many reconnect backoffs (20 ms doubling to 200 ms)
	require.Equal(t, before, a.Stats().HandshakesFailed, "the intruder dialed again")
	require.False(t, intruder.IsKept("a"))
}

// A Connect in 0.4.1 (Protocol041) between two Go nodes switches to v1 once
// they recognise each other; when only one of them has an identity, the v1
// attempt fails its authentication, and that must end the Connect with
// ErrUnauthenticated at once and leave nothing retried, as for a v1 Connect.
// (A black-box audit: the Connect waited for the handshake timeout, 5 s, and
// returned ErrHandshakeTimeout; the peer was redialed, even under
// WithConnectOnce.) Both ways: a secured dialer and a plaintext target, and
// a plaintext dialer and a secured target that takes 0.4.1.
func TestLegacyConnectSwitchedToV1FailsAuthentication(t *testing.T) {
	ids, trust := identities(t, "a", "b")
	cases := map[string]func() (dialer *Server, target string){
		"secured dialer": func() (*Server, string) {
			plain, _ := newServer(t, "b")
			d, _ := secured(t, ids["a"], trust, WithPlaintextLegacy(), WithProtocol(Protocol041), WithHandshakeTimeout(10*time.Second))
			return d, plain.Info()
		},
		"secured target": func() (*Server, string) {
			target, _ := secured(t, ids["b"], trust, WithPlaintextLegacy())
			d, _ := newServer(t, "a", WithProtocol(Protocol041), WithHandshakeTimeout(10*time.Second))
			return d, target.Info()
		},
	}
	for name, setup := range cases {
		t.Run(name, func(t *testing.T) {
			d, target := setup()
			start := time.Now()
			_, err := d.Connect(ctxT(t), target)
			require.ErrorIs(t, err, ErrUnauthenticated)
			require.Less(t, time.Since(start), 5*time.Second, "the Connect waited for a timeout")
			require.Empty(t, d.Stats().Connecting)
			require.False(t, d.IsKept("b"), "a peer nothing can reach stays kept, redialed on")
		})
	}
}

// The bytes a hog's client Certificate message claims, and how many of them
// it writes before it stalls: more than crypto/tls's own bound would let an
// acceptor buffer without the node's (256 KiB claimed, 200 KB sent).
const (
	hogCertClaimed = 250_000
	hogCertSent    = 200_000
)

// stallConn passes the first limit bytes written through, then blocks the
// writer until stop is closed.
type stallConn struct {
	net.Conn
	limit   int
	stop    chan struct{}
	reached func() // called once, when the limit is reached or a write fails
	once    sync.Once
}

func (s *stallConn) Write(b []byte) (int, error) {
	if s.limit <= 0 {
		<-s.stop
		return 0, net.ErrClosed
	}
	cut := len(b) > s.limit
	if cut {
		b = b[:s.limit]
	}
	k, err := s.Conn.Write(b)
	s.limit -= k
	if err != nil || s.limit <= 0 {
		s.once.Do(s.reached)
	}
	if err != nil {
		return k, err
	}
	if cut {
		<-s.stop
		return k, net.ErrClosed
	}
	return k, nil
}

// childTLSHog opens n connections to addr, each of which completes the TLS
// key exchange (it needs no trusted key) and sends hogCertSent bytes of a
// client Certificate message claiming hogCertClaimed, then stalls; it
// returns once every one has sent them (or failed to).
func childTLSHog(addr string, n int) (func(), error) {
	id, err := NewIdentity("hog")
	if err != nil {
		return nil, err
	}
	cert := tls.Certificate{PrivateKey: id.key, Certificate: [][]byte{id.chain[0].Raw, make([]byte, hogCertClaimed)}}
	cfg := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS13,
		InsecureSkipVerify: true, NextProtos: []string{alpn}}
	stopc := make(chan struct{})
	var conns []net.Conn
	var hs, sent sync.WaitGroup
	stop := func() {
		close(stopc)
		for _, nc := range conns {
			_ = nc.Close()
		}
		hs.Wait()
	}
	for range n {
		nc, err := net.DialTimeout("tcp", addr, 10*time.Second)
		if err != nil {
			stop()
			return nil, err
		}
		conns = append(conns, nc)
		sent.Add(1)
		hs.Add(1)
		sc := &stallConn{Conn: nc, limit: hogCertSent, stop: stopc, reached: sent.Done}
		go func() {
			defer hs.Done()
			_ = tls.Client(sc, cfg).Handshake()
			sc.once.Do(sc.reached) // refused before it had sent it all
		}()
	}
	sent.Wait()
	return stop, nil
}

// TestTLSHandshakeMemoryBounded: a dialer that proves nothing cannot make
// the node buffer a huge TLS handshake message. 50 connections from a child
// process each send 200 KB of a client Certificate message claiming 250 KB
// (crypto/tls buffers up to 256 KiB of one before it checks it); the node
// reads at most the handshake budget of each (32 KiB), refuses it as
// unauthenticated (Warn, Stats "unauthenticated") and holds a few KiB of
// heap per connection, not the ~305 KiB it held before (a black-box audit).
func TestTLSHandshakeMemoryBounded(t *testing.T) {
	const n = 50
	ids, trust := identities(t, "a")
	log := newErrLog()
	a, _ := secured(t, ids["a"], trust, log.option())
	before := settledMem()
	child := startIdleChild(t, "tls-hog", strings.TrimPrefix(a.Info(), "tcp://"), n, 0)
	defer child.stop(t)
	time.Sleep(time.Second) // what the node reads of the sent bytes
	after := settledMem()
	perConn := (float64(after.HeapAlloc) - float64(before.HeapAlloc)) / n
	t.Logf("heap %d -> %d KiB: %.0f B per connection", before.HeapAlloc>>10, after.HeapAlloc>>10, perConn)
	require.Less(t, perConn, float64(64<<10), "heap held per unproven TLS connection (twice the handshake budget)")

	eventually(t, "every hog refused as unauthenticated", func() bool {
		return a.Stats().Closed["unauthenticated"] == n
	})
	require.Zero(t, a.Stats().Lost, "a refused handshake counted as a lost connection")
	require.True(t, log.hasAt(slog.LevelWarn, ErrUnauthenticated), "the refusal is logged at Warn")
	require.Empty(t, a.Connections())
}

// TestRefusedTLSHandshakes: a TLS dialer that crypto/tls itself refuses (no
// client certificate, an application protocol other than masterless, TLS
// 1.2) proved nothing, and the acceptor says so as for any unauthenticated
// dialer: it logs ErrUnauthenticated at Warn and Stats counts the
// connection as closed "unauthenticated", not as lost (a black-box audit:
// they were logged at Info as lost connections, wrapping ErrConnectionLost).
func TestRefusedTLSHandshakes(t *testing.T) {
	ids, trust := identities(t, "a", "b")
	b := tlsConfig(ids["b"], trust)
	cases := map[string]*tls.Config{
		"no client certificate": {MinVersion: tls.VersionTLS13, InsecureSkipVerify: true, NextProtos: []string{alpn}},
		"wrong ALPN": {Certificates: b.Certificates, MinVersion: tls.VersionTLS13, InsecureSkipVerify: true,
			NextProtos: []string{"h2"}},
		"TLS 1.2": {Certificates: b.Certificates, MaxVersion: tls.VersionTLS12, InsecureSkipVerify: true,
			NextProtos: []string{alpn}},
	}
	for name, cfg := range cases {
		t.Run(name, func(t *testing.T) {
			log := newErrLog()
			a, _ := secured(t, ids["a"], trust, log.option())
			nc, err := net.DialTimeout("tcp", strings.TrimPrefix(a.Info(), "tcp://"), waitFor)
			require.NoError(t, err)
			defer nc.Close()
			require.NoError(t, nc.SetDeadline(time.Now().Add(waitFor)))
			tc := tls.Client(nc, cfg)
			err = tc.Handshake()
			if err == nil { // TLS 1.3: the dialer hears of the refusal at its first read
				_, err = tc.Read(make([]byte, 1))
			}
			require.Error(t, err, "the node took the handshake")
			require.NotErrorIs(t, err, os.ErrDeadlineExceeded, "the node did not refuse the handshake")

			eventually(t, "the refusal counted as unauthenticated", func() bool {
				return a.Stats().Closed["unauthenticated"] == 1
			})
			st := a.Stats()
			require.Zero(t, st.Lost, "counted as a lost connection")
			require.Equal(t, uint64(1), st.HandshakesFailed)
			require.True(t, log.hasAt(slog.LevelWarn, ErrUnauthenticated), "no Warn wrapping ErrUnauthenticated")
			require.False(t, log.has(ErrConnectionLost), "logged as a lost connection")
		})
	}
}
