package netio

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/masterless-go/masterless/fsm"
)

// TestOwnPauseKeepsSessions pauses a whole node (its core lock held for
// three of its peer timeouts, so that neither its timer nor its readers
// run) while its peer keeps sending heartbeats, twice, and requires the
// session to survive: the peer's PINGs wait unread in the socket, and the
// silence is the node's own (fsm's own-pause rule, spec/PROTOCOL.md 4).
// Which of the node's goroutines takes the lock first when it is released
// is up to the scheduler: if a reader does, the PINGs are read before the
// timer looks and no grace is needed; if the timer does, only the rule
// keeps the session. So without the rule this test fails in most runs, not
// all; fsm's TestOwnPauseIsNotThePeers is the deterministic one.
func TestOwnPauseKeepsSessions(t *testing.T) {
	const hb, timeout, pause = 100 * time.Millisecond, 500 * time.Millisecond, 1500 * time.Millisecond
	a := startNode(t, fsm.Config{ID: "a", HeartbeatInterval: hb, PeerTimeout: timeout}, nil, Events{})
	// b tolerates a's silence during the pauses: only a's view is tested.
	b := startNode(t, fsm.Config{ID: "b", HeartbeatInterval: hb, PeerTimeout: 10 * time.Second}, nil, Events{})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := b.Connect(ctx, a.Info())
	require.NoError(t, err)
	require.Eventually(t, func() bool { return len(a.Sessions()) == 1 }, 10*time.Second, 10*time.Millisecond)

	for range 2 {
		a.mu.Lock() // the node is not running: no Tick, no read is stepped
		time.Sleep(pause)
		a.mu.Unlock()
		time.Sleep(2 * hb)
	}
	st := a.Stats()
	t.Logf("pause graces: %d", st.Counters.PauseGraces)
	require.Zero(t, st.Counters.Closed[fsm.ReasonPeerTimeout], "a timed b out for a's own pause")
	require.Equal(t, []string{"b"}, a.Sessions())
	require.Equal(t, uint64(1), st.Counters.Handshakes, "one session throughout")
}

// TestProbeReportsReadersLag: the probe reports how long its byte waited
// for its reader (lagprobe.go): while the reader has not run, the age of the
// byte still in the pipe; once it has, how long the byte waited.
// Here the reader is started late, as a starved process's network
// goroutines run late (a black-box audit measured 3.6 s behind 100 spinning
// goroutines at GOMAXPROCS=1, with timers on time). Tick.Lag carries the
// figure to fsm's own-pause rule (fsm's TestReadLagIsOwnPause).
func TestProbeReportsReadersLag(t *testing.T) {
	p := newLagProbe()
	require.NotNil(t, p)
	require.Zero(t, p.lag(), "the first call puts a byte in the pipe and has nothing to report")
	time.Sleep(300 * time.Millisecond)
	require.GreaterOrEqual(t, p.lag(), 300*time.Millisecond, "a byte unread for 300 ms")

	done := make(chan struct{})
	go func() { p.run(); close(done) }() // the reader runs at last
	defer func() { p.close(); <-done }()
	require.Eventually(t, func() bool { return p.sent.Load() == 0 }, 10*time.Second, time.Millisecond, "the byte was never read")
	require.GreaterOrEqual(t, p.lag(), 300*time.Millisecond, "how long the byte read waited")
}
