package masterless

import (
	"fmt"
	"net"
	"net/url"
	"slices"
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
// HELLO (section 3.3), and k's BYE ends each grant before k confirmed it:
// c's user hears of none of them (before confirmation it saw one short
// session, a Connect and a Disconnect, per redial), nor do its Connections
// and Stats show them as sessions.
func TestKeptAddressAnsweredByAnotherNode(t *testing.T) {
	// It mostly waits out timeouts: beside the others that do (make test's time).
	t.Parallel()
	for _, keeper := range []string{"a", "z"} { // c leads a; z leads c
		t.Run(keeper, func(t *testing.T) {
			k, rk := newServer(t, keeper, WithReconnectBackoff(20*time.Millisecond, time.Second))
			b, _ := newServer(t, "b")
			_, err := k.Connect(ctxT(t), b.Info())
			require.NoError(t, err)
			port := portOf(t, b.Info())
			require.NoError(t, b.Close())
			c, rc := newServer(t, "c", WithPort(port))
			// Watch c's views while k redials: Connections and Stats must
			// never show k as a session, though c holds each grant until
			// k's BYE (before the views left out unconfirmed grants, c
			// listed k for 2-4 ms on every redial, a black-box audit).
			const watch = 3 * time.Second
			listed, shown := 0, 0
			for end := time.Now().Add(watch); time.Now().Before(end); time.Sleep(200 * time.Microsecond) {
				if slices.Contains(c.Connections(), keeper) {
					listed++
				}
				for _, p := range c.Stats().Peers {
					if p.ID == keeper && p.State == "connected" {
						shown++
					}
				}
			}
			require.Zero(t, listed, "c's Connections listed a session k refused")
			require.Zero(t, shown, "c's Stats showed a session k refused as connected")
			cs := c.Stats()
			t.Logf("c: %d sessions with %s, %d handshakes, %d failed", rc.connectCount(keeper), keeper, cs.Handshakes, cs.HandshakesFailed)
			require.Zero(t, rk.connectCount("c"), "the keeper set up a session with the wrong node")
			require.False(t, k.IsKept("c"))
			require.True(t, k.IsKept("b"))
			require.Zero(t, rc.connectCount(keeper), "c's user heard of a session k refused")
			require.Empty(t, rc.disconnects(keeper))
			if keeper < "c" {
				// c granted each redial: gaps of at least d/2 with d = 20 ms
				// doubling to 1 s (10, 20, 40, ..., 320, then 500 ms) make
				// at most 11 in 3 s.
				require.Zero(t, cs.Handshakes, "a refused grant counts as a failed handshake")
				require.NotZero(t, cs.HandshakesFailed, "c granted none of k's redials")
				require.LessOrEqual(t, cs.HandshakesFailed, uint64(12))
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

// freeAddr returns the address of a free loopback port: nothing listens
// there until a test starts a server on it.
func freeAddr(t *testing.T) (string, int) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	port := ln.Addr().(*net.TCPAddr).Port
	require.NoError(t, ln.Close())
	return fmt.Sprintf("tcp://127.0.0.1:%d", port), port
}

// TestConnectRetriedUntilAnswered: a Connect to an address where nobody
// listens yet fails, but the address stays kept and is dialed again with
// the reconnect backoff: once a node starts there, it is connected and
// kept, with no further call. With WithConnectOnce the failure leaves
// nothing behind; StopConnecting ends the retries.
func TestConnectRetriedUntilAnswered(t *testing.T) {
	t.Run("default", func(t *testing.T) {
		k, rk := newServer(t, "k")
		addr, port := freeAddr(t)
		_, err := k.Connect(ctxT(t), addr)
		require.ErrorIs(t, err, ErrDialFailed, "Connect returns its first attempt's error")
		require.Equal(t, []string{addr}, k.Stats().Connecting, "Stats shows the address being retried")
		time.Sleep(100 * time.Millisecond) // a few refused retries (backoff from 20 ms)
		late, _ := newServer(t, "late", WithPort(port))
		eventually(t, "k connected to the node that started late", func() bool { return rk.connectCount("late") == 1 })
		require.True(t, k.IsKept("late"))
		require.Equal(t, []string{"late"}, k.Connections())
		require.Empty(t, k.Stats().Connecting, "the address answered: the peer is kept instead")
		require.NoError(t, late.Close()) // kept: k redials it when it comes back
		_, rl := newServer(t, "late", WithPort(port))
		eventually(t, "k reconnected to the restarted node", func() bool { return rl.connectCount("k") == 1 })
	})
	for _, c := range []struct {
		name string
		opt  Option
		stop bool
	}{{"WithConnectOnce", WithConnectOnce(), false}, {"StopConnecting", WithConnectRetry(), true}} {
		t.Run(c.name, func(t *testing.T) {
			k, rk := newServer(t, "k", c.opt)
			addr, port := freeAddr(t)
			_, err := k.Connect(ctxT(t), addr)
			require.ErrorIs(t, err, ErrDialFailed)
			if c.stop {
				require.NoError(t, k.StopConnecting(addr))
			}
			require.Empty(t, k.Stats().Connecting)
			_, rl := newServer(t, "late", WithPort(port))
			time.Sleep(500 * time.Millisecond) // many backoff periods
			require.Zero(t, rk.connectCount("late"))
			require.Zero(t, rl.connectCount("k"))
			require.False(t, k.IsKept("late"))
		})
	}
}
