package masterless

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// A process that starts with a smaller incarnation than the one before it
// (the clock stepped back), while the old process still holds its session
// with a peer, is refused there as stale (README, "A restarted peer is back
// at once"). It must hear that as a failed attempt, not as a session: its
// Connect returns ErrStaleIncarnation, it gets no Connect event, its redials
// back off, and once it has been away for the reconnect grace its queue comes
// back as lost and sends fail. Here the old process stays alive, so the
// refusals never end. The new process leads the pair ("b" > "a"): a leader
// grants the session on the follower's HELLO without waiting for its JOIN,
// and before it waited for the follower to confirm (fsm/session.go, confirm)
// it reported every refused attempt as a session: Connect returned nil, a
// Connect event fired, and each attempt reset the backoff and the grace
// (about 13 redials a second, no Lost, sends accepted forever).
func TestStaleRestartIsRefusedNotConnected(t *testing.T) {
	t.Parallel() // it mostly waits out timeouts: beside the others that do (make test's time)
	a, _ := newServer(t, "a")
	old, _ := newServer(t, "b", WithIncarnation(1000))
	_, err := old.Connect(ctxT(t), a.Info())
	require.NoError(t, err)

	var connects, lost atomic.Int64
	grace := time.Second
	b, err := New("b", WithIncarnation(999), WithReconnectBackoff(100*time.Millisecond, 10*time.Second),
		WithReconnectGrace(grace), WithHeartbeat(testHeartbeat), WithPeerTimeout(testPeerTO),
		WithHandshakeTimeout(testHandshake), WithLogger(newLogger(&logSink{})),
		WithEvents(Events{
			Connect: func(*Server, string, string) { connects.Add(1) },
			Lost:    func(_ *Server, _ string, p [][]byte, _ error) { lost.Add(int64(len(p))) },
		}))
	require.NoError(t, err)
	t.Cleanup(func() { b.Close() })

	start := time.Now()
	_, err = b.Connect(ctxT(t), a.Info())
	require.ErrorIs(t, err, ErrStaleIncarnation)
	require.NoError(t, b.SendErr("a", []byte("queued")), "a is kept (the Connect reached it): a send waits in its queue")

	eventually(t, "the queue comes back as lost after the grace", func() bool { return lost.Load() == 1 })
	require.GreaterOrEqual(t, time.Since(start), grace/2, "lost before the grace (jitter aside)")
	require.ErrorIs(t, b.SendErr("a", []byte("late")), ErrNotConnected)
	require.Zero(t, connects.Load(), "a Connect event for a session a refused")

	// The backoff grows from 100 ms, jittered into [d/2, d): in 3 s at most
	// the first attempt and six redials (0.05+0.1+0.2+0.4+0.8+1.6 s). Before
	// the fix a refused 30-40 in 3 s.
	time.Sleep(time.Until(start.Add(3 * time.Second)))
	refused := a.Stats().Duplicates["stale incarnation"]
	require.NotZero(t, refused)
	require.LessOrEqual(t, refused, uint64(8), "redials in 3 s: the backoff does not grow after a refusal")
	require.Zero(t, connects.Load())
}
