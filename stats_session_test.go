package masterless

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// A redial answered by another node shows no session in that node's Stats
// (README, "Every wait is bounded"), even when that node leads the pair and
// so grants a session on the redial's HELLO, which the dialer then refuses:
// no age, no addresses, no wire bytes, and a state that is not "connected"
// (a black-box audit counted thousands of snapshots showing one).
func TestStatsShowNoSessionForARedialAnsweredElsewhere(t *testing.T) {
	backoff := WithReconnectBackoff(5*time.Millisecond, 50*time.Millisecond)
	a, _ := newServer(t, "m-a", backoff)
	b, _ := newServer(t, "m-b", backoff)
	c, _ := newServer(t, "z-c", backoff) // the greater id: c leads the pair a-c
	px := newProxy(t, b.Info())
	_, err := a.Connect(ctxT(t), px.info())
	require.NoError(t, err)
	px.retarget(c.Info())
	b.Close()
	px.reset()
	snaps, listed, shown := 0, 0, 0
	var example string
	for end := time.Now().Add(time.Second); time.Now().Before(end); {
		snaps++
		for _, p := range c.Stats().Peers {
			listed++
			if p.State == "connected" || p.SessionAge > 0 || p.LocalAddr != nil || p.RemoteAddr != nil || p.WireIn > 0 || p.WireOut > 0 {
				shown++
				if example == "" {
					example = fmt.Sprintf("%+v", p)
				}
			}
		}
	}
	t.Logf("%d snapshots of c's Stats, %d entries for a, %d showing a session", snaps, listed, shown)
	require.Positive(t, listed, "c never granted a's redials: the test did not test")
	require.Zero(t, shown, "c's Stats showed a session with a redial it granted and a refused: %s", example)
	require.Empty(t, c.Connections())
}

// Once Connections lists a peer, Stats shows that session: the peer's new
// incarnation after a restart, and an age no older than the session. The
// end that follows the handshake lists a session from the grant, before the
// leader confirms it and the peer's record takes the new incarnation (a
// black-box audit read the previous process's incarnation, and an age
// since the previous session began).
func TestStatsShowTheListedSession(t *testing.T) {
	a, _ := newServer(t, "a-a") // the smaller id: a follows, b leads
	for i, inc := range []uint64{1000, 500, 2000, 1500, 3000, 2500} {
		b, _ := newServer(t, "m-b", WithIncarnation(inc))
		before := time.Now()
		_, err := b.Connect(ctxT(t), a.Info())
		require.NoError(t, err)
		// a follows: it lists b from the grant it adopted, before b's
		// RESUME confirms the session.
		eventually(t, "a lists b", func() bool { return sameSet(a.Connections(), "m-b") })
		p := peerStats(t, a, "m-b")
		require.Equal(t, inc, p.Incarnation, "round %d: a lists b but shows incarnation %d", i, p.Incarnation)
		require.Equal(t, "connected", p.State, "round %d", i)
		require.LessOrEqual(t, p.SessionAge, time.Since(before), "round %d: a's session with b is older than b's Connect", i)
		p = peerStats(t, b, "a-a")
		require.Equal(t, "connected", p.State, "round %d", i)
		require.LessOrEqual(t, p.SessionAge, time.Since(before), "round %d: b's session with a is older than b's Connect", i)
		b.Close()
		eventually(t, "a sees b gone", func() bool { return len(a.Connections()) == 0 })
	}
}

// Right after a session ends, no snapshot shows the ended session's age
// for the next one (the new session, or none).
func TestSessionAgeRestartsWithTheSession(t *testing.T) {
	for _, ids := range [][2]string{{"m-a", "m-b"}, {"z-a", "m-b"}} {
		a, _ := newServer(t, ids[0])
		b, _ := newServer(t, ids[1])
		px := newProxy(t, b.Info())
		_, err := a.Connect(ctxT(t), px.info())
		require.NoError(t, err)
		time.Sleep(600 * time.Millisecond)
		reset := time.Now()
		px.reset()
		bad, snaps := 0, 0
		var example string
		for time.Since(reset) < 300*time.Millisecond {
			for _, s := range []*Server{a, b} {
				for _, p := range s.Stats().Peers {
					snaps++
					if p.LastEnd != nil && p.SessionAge > time.Since(reset) {
						bad++
						if example == "" {
							example = fmt.Sprintf("%s: %+v", s.ID(), p)
						}
					}
				}
			}
		}
		require.Zero(t, bad, "%v: %d of %d snapshots after the reset show an age older than it: %s", ids, bad, snaps, example)
	}
}

// Stats works after Close, showing the counts as they ended (its godoc):
// the peers too, not only the node-wide counts (a black-box audit found
// the peers gone).
func TestStatsAfterCloseShowPeers(t *testing.T) {
	a, _ := newServer(t, "a")
	b, _ := newServer(t, "b")
	_, err := a.Connect(ctxT(t), b.Info())
	require.NoError(t, err)
	for range 10 {
		require.NoError(t, a.SendErr("b", []byte("x")))
	}
	eventually(t, "acknowledged", func() bool { return peerStats(t, a, "b").Queued == 0 && peerStats(t, b, "a").MessagesIn == 10 })
	require.NoError(t, a.Close())
	st := a.Stats()
	require.Equal(t, uint64(10), st.MessagesOut)
	require.Len(t, st.Peers, 1)
	p := st.Peers[0]
	require.Equal(t, "b", p.ID)
	require.Equal(t, uint64(10), p.MessagesOut)
	require.Equal(t, "idle", p.State)
	require.False(t, p.Connected)
	require.False(t, p.Kept, "kept after Close, while IsKept says not (a black-box audit)")
	require.False(t, a.IsKept("b"))
	require.Zero(t, p.SessionAge)
	require.Nil(t, p.LocalAddr)
	require.ErrorIs(t, p.LastEnd, ErrClosed)
	require.Empty(t, a.Connections())
}
