package masterless

import (
	"context"
	"crypto/ed25519"
	"errors"
	"log/slog"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
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
	mu   sync.Mutex
	errs []error
	next slog.Handler
}

func newErrLog() *errLog { return &errLog{next: newLogger(&logSink{}).Handler()} }

func (h *errLog) Enabled(context.Context, slog.Level) bool { return true }
func (h *errLog) Handle(ctx context.Context, r slog.Record) error {
	r.Attrs(func(a slog.Attr) bool {
		if err, ok := a.Value.Any().(error); ok && (a.Key == "err" || a.Key == "reason") {
			h.mu.Lock()
			h.errs = append(h.errs, err)
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
