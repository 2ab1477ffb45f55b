package masterless

import (
	"testing"

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
