package masterless

import (
	"net/url"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// portOf returns the port of a tcp://host:port address.
func portOf(t *testing.T, info string) int {
	t.Helper()
	u, err := url.Parse(info)
	require.NoError(t, err)
	p, err := strconv.Atoi(u.Port())
	require.NoError(t, err)
	return p
}

// TestKeptAddressAnsweredByAnotherNode: k keeps b at b's address; b stops
// and c starts listening on the same port. k's redials of b reach c, which
// is not b: k closes each at c's HELLO, before it becomes a session
// (spec/PROTOCOL.md, section 5), and b's backoff keeps growing. When k leads
// the pair neither end sets up a session; when c leads, c grants on k's
// HELLO (section 3.3) and sees one short session per redial, no more than
// the backoff allows.
func TestKeptAddressAnsweredByAnotherNode(t *testing.T) {
	for _, keeper := range []string{"a", "z"} { // c leads a; z leads c
		t.Run(keeper, func(t *testing.T) {
			k, rk := newServer(t, keeper, WithReconnectBackoff(20*time.Millisecond, time.Second))
			b, _ := newServer(t, "b")
			_, err := k.Connect(ctxT(t), b.Info())
			require.NoError(t, err)
			port := portOf(t, b.Info())
			require.NoError(t, b.Close())
			c, rc := newServer(t, "c", WithPort(port))
			const watch = 3 * time.Second
			time.Sleep(watch)
			cs := c.Stats()
			t.Logf("c: %d sessions with %s, %d handshakes, %d failed", rc.connectCount(keeper), keeper, cs.Handshakes, cs.HandshakesFailed)
			require.Zero(t, rk.connectCount("c"), "the keeper set up a session with the wrong node")
			require.False(t, k.IsKept("c"))
			require.True(t, k.IsKept("b"))
			if keeper > "c" {
				require.Zero(t, rc.connectCount(keeper), "the leader closes before granting")
			} else {
				// Redial gaps of at least d/2 with d = 20 ms doubling to 1 s:
				// 10, 20, 40, ..., 320, then 500 ms: at most 11 in 3 s.
				require.LessOrEqual(t, rc.connectCount(keeper), 12)
			}
		})
	}
}

// TestKeptPeerFoundAtAdvertisedAddress: k keeps b, reached at b's first
// address. b restarts on another port and dials k (it keeps k), so k hears
// the new address in b's HELLO. b then stops keeping k, and restarts once
// more on that second port without dialing anyone: k alone redials, at the
// address b last advertised, and finds it. (Had b not dialed k after
// moving, nothing would have told k the new port: without discovery a
// node learns a peer's address only from that peer's HELLO.)
func TestKeptPeerFoundAtAdvertisedAddress(t *testing.T) {
	k, _ := newServer(t, "k")
	b1, _ := newServer(t, "b")
	_, err := k.Connect(ctxT(t), b1.Info())
	require.NoError(t, err)
	require.NoError(t, b1.Close())

	b2, _ := newServer(t, "b") // another free port
	require.NotEqual(t, b1.Info(), b2.Info())
	_, err = b2.Connect(ctxT(t), k.Info())
	require.NoError(t, err)
	require.NoError(t, b2.Keep("k", false)) // k still keeps b: the session stays
	port := portOf(t, b2.Info())
	require.NoError(t, b2.Close())

	b3, r3 := newServer(t, "b", WithPort(port))
	require.Empty(t, b3.Connections())
	eventually(t, "k redials b at its advertised address", func() bool { return r3.connectCount("k") == 1 })
	require.Equal(t, []string{"b"}, k.Connections())
}
