package masterless

import (
	"fmt"
	"testing"
	"time"

	"github.com/masterless-go/masterless/wire"

	"github.com/stretchr/testify/require"
)

// Stats shows each end of a session, and both ends name the same TCP
// connection: one's local address is the other's remote address.
func TestStatsShowsTheSession(t *testing.T) {
	a, _ := newServer(t, "a")
	b, _ := newServer(t, "b")
	_, err := a.Connect(ctxT(t), b.Info())
	require.NoError(t, err)
	eventually(t, "b sees the session", func() bool { return len(b.Connections()) == 1 })
	sa, sb := a.Stats(), b.Stats()
	require.Len(t, sa.Peers, 1)
	require.Len(t, sb.Peers, 1)
	pa, pb := sa.Peers[0], sb.Peers[0]
	require.Equal(t, "b", pa.ID)
	require.Equal(t, "a", pb.ID)
	require.True(t, pa.Kept, "Connect keeps the peer")
	require.False(t, pb.Kept)
	require.NotZero(t, pa.Incarnation)
	require.NotNil(t, pa.LocalAddr)
	require.Equal(t, pa.LocalAddr.String(), pb.RemoteAddr.String())
	require.Equal(t, pa.RemoteAddr.String(), pb.LocalAddr.String())
	require.Zero(t, sa.Handshaking)
	require.NoError(t, a.Disconnect("b"))
	eventually(t, "the session is gone", func() bool {
		for _, p := range b.Stats().Peers {
			if p.LocalAddr != nil {
				return false
			}
		}
		return true
	})
}

// Stats counts what happened: the messages and bytes each way equal what
// was sent, both ends agree on the bytes of their TCP connection, the
// heartbeat measures a round trip, and each end knows why the session ended
// after a Disconnect.
func TestStatsCountWhatHappened(t *testing.T) {
	a, ra := newServer(t, "a", WithHeartbeat(shortHeartbeat))
	b, rb := newServer(t, "b", WithHeartbeat(shortHeartbeat))
	_, err := a.Connect(ctxT(t), b.Info())
	require.NoError(t, err)
	eventually(t, "b sees the session", func() bool { return rb.connectCount("a") == 1 })
	for i := range 100 {
		require.True(t, a.Send("b", []byte(fmt.Sprintf("a-to-b %03d", i)))) // 10 bytes
	}
	for i := range 40 {
		require.True(t, b.Send("a", []byte(fmt.Sprintf("b-to-a %d", i%10)))) // 8 bytes
	}
	eventually(t, "everything delivered", func() bool { return len(rb.messages("a")) == 100 && len(ra.messages("b")) == 40 })
	eventually(t, "everything acknowledged", func() bool { return peerStats(t, a, "b").Queued == 0 && peerStats(t, b, "a").Queued == 0 })

	pa, pb := peerStats(t, a, "b"), peerStats(t, b, "a")
	require.Equal(t, "connected", pa.State)
	require.Equal(t, []uint64{100, 1000, 40, 320}, []uint64{pa.MessagesOut, pa.BytesOut, pa.MessagesIn, pa.BytesIn}, "a's counts for b: out msgs, bytes, in msgs, bytes")
	require.Equal(t, []uint64{40, 320, 100, 1000}, []uint64{pb.MessagesOut, pb.BytesOut, pb.MessagesIn, pb.BytesIn}, "b's counts for a")
	sa := a.Stats()
	require.Equal(t, []uint64{100, 1000, 40, 320, 1}, []uint64{sa.MessagesOut, sa.BytesOut, sa.MessagesIn, sa.BytesIn, sa.Handshakes})
	require.Zero(t, pa.Reconnects)
	require.Positive(t, pa.SessionAge)
	require.Greater(t, pa.WireOut, pa.BytesOut+5*pa.MessagesOut, "the socket carries framing and control frames besides the payloads")
	// Between heartbeats, what one end wrote is what the other read.
	eventually(t, "both ends count the same bytes", func() bool {
		pa, pb := peerStats(t, a, "b"), peerStats(t, b, "a")
		return pa.WireOut == pb.WireIn && pa.WireIn == pb.WireOut
	})

	// A few heartbeats give a round-trip time: positive, and well under a
	// heartbeat on loopback (the bound is loose for a loaded machine).
	eventually(t, "a round-trip sample at both ends", func() bool {
		return peerStats(t, a, "b").RTT > 0 && peerStats(t, b, "a").RTT > 0
	})
	for _, p := range []PeerStats{peerStats(t, a, "b"), peerStats(t, b, "a")} {
		require.Positive(t, p.SmoothedRTT)
		require.Less(t, p.RTT, time.Second, "round trip on loopback")
	}

	require.NoError(t, a.Disconnect("b"))
	eventually(t, "both ends saw the session end", func() bool {
		return peerStats(t, a, "b").LastEnd != nil && peerStats(t, b, "a").LastEnd != nil
	})
	pa, pb = peerStats(t, a, "b"), peerStats(t, b, "a")
	require.ErrorIs(t, pa.LastEnd, ErrDisconnected, "the end that disconnected")
	require.ErrorIs(t, pb.LastEnd, ErrPeerClosed, "the end that was disconnected")
	require.Equal(t, "idle", pa.State)
	require.Zero(t, pa.SessionAge)
	require.WithinDuration(t, time.Now(), pa.LastEndTime, waitFor)
	require.Equal(t, uint64(1), a.Stats().Closed["disconnected"])
	require.Equal(t, uint64(1), b.Stats().PeerClosed["normal"])
}

// A session cut under a kept peer is counted as a reconnect, and the reason
// the last one ended is the cut.
func TestStatsCountReconnects(t *testing.T) {
	a, _, _, _, px := proxiedPair(t)
	for i := range 2 {
		eventually(t, "session up", func() bool { return peerStats(t, a, "b").State == "connected" })
		require.Equal(t, uint64(i), peerStats(t, a, "b").Reconnects)
		px.cut()
		eventually(t, "session ended", func() bool { return peerStats(t, a, "b").LastEnd != nil })
	}
	eventually(t, "back after the second cut", func() bool { return peerStats(t, a, "b").Reconnects == 2 })
	p := peerStats(t, a, "b")
	require.True(t, p.Kept)
	// The proxy closed the connection: an EOF or a reset, without a BYE.
	require.Error(t, p.LastEnd)
	require.NotErrorIs(t, p.LastEnd, ErrDisconnected)
	require.GreaterOrEqual(t, a.Stats().Lost, uint64(2), "two sessions broke without a reason from either end")
	require.Equal(t, uint64(3), a.Stats().Handshakes)
}

// A peer that breaks the protocol is counted, by this node, as a protocol error.
func TestStatsCountProtocolErrors(t *testing.T) {
	s, _ := newServer(t, "s")
	c := rawDial(t, s)
	_, err := c.Write(cat(preamble(), hello("x", 1), frame(wire.Data, 'z'))) // DATA before the handshake ends
	require.NoError(t, err)
	expectClosed(t, c)
	eventually(t, "counted", func() bool { return s.Stats().ProtocolErrors == 1 })
	st := s.Stats()
	require.Equal(t, uint64(1), st.Closed["protocol error"])
	require.Equal(t, uint64(1), st.HandshakesFailed)
	require.Zero(t, st.Handshakes)
}

func peerStats(t testing.TB, s *Server, id string) PeerStats {
	t.Helper()
	for _, p := range s.Stats().Peers {
		if p.ID == id {
			return p
		}
	}
	t.Fatalf("%s does not know %s", s.ID(), id)
	return PeerStats{}
}

// Over TLS too, both ends count the same bytes of their connection (the
// protocol's, inside TLS), the messages are counted, and a plaintext peer
// refused for want of authentication is counted among the refusals.
func TestStatsOverTLS(t *testing.T) {
	ids, trust := identities(t, "a", "b")
	a, _ := secured(t, ids["a"], trust)
	b, rb := secured(t, ids["b"], trust)
	_, err := a.Connect(ctxT(t), b.Info())
	require.NoError(t, err)
	for i := range 10 {
		require.True(t, a.Send("b", []byte(fmt.Sprint(i))))
	}
	eventually(t, "delivered", func() bool { return len(rb.messages("a")) == 10 })
	eventually(t, "both ends count the same bytes", func() bool {
		pa, pb := peerStats(t, a, "b"), peerStats(t, b, "a")
		return pa.WireOut > 0 && pa.WireOut == pb.WireIn && pa.WireIn == pb.WireOut
	})
	require.Equal(t, uint64(10), peerStats(t, b, "a").MessagesIn)

	p, _ := newServer(t, "p")
	_, err = p.Connect(ctxT(t), b.Info())
	require.Error(t, err)
	eventually(t, "the plaintext peer counted", func() bool { return b.Stats().Duplicates["unauthenticated"] == 1 })
}
