package netio

import (
	"context"
	"runtime"
	"sync"
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

// TestProbeSeesReadersLag: in a process starved by its own goroutines (100
// spinning at GOMAXPROCS=1), the probe reports that the goroutines the
// network wakes run late (lagprobe.go), though the timer goroutine that asks
// it runs on time. Tick.Lag carries it to fsm's own-pause rule, whose
// deterministic test is fsm's TestReadLagIsOwnPause.
func TestProbeSeesReadersLag(t *testing.T) {
	p := newLagProbe()
	require.NotNil(t, p)
	done := make(chan struct{})
	go func() { p.run(); close(done) }()
	defer func() { p.close(); <-done }()

	// Unloaded, a byte is read within milliseconds (the bound leaves room
	// for a machine loaded by other processes).
	for range 5 {
		p.lag()
		time.Sleep(20 * time.Millisecond)
	}
	require.Less(t, p.lag(), 2*time.Second, "lag reported with nothing in this process loading it")

	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	stop := make(chan struct{})
	var spinners sync.WaitGroup
	for range 100 {
		spinners.Add(1)
		go func() {
			defer spinners.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
			}
		}()
	}
	var most time.Duration
	deadline := time.Now().Add(3 * time.Second)
	for time.Now().Before(deadline) && most < 300*time.Millisecond {
		most = max(most, p.lag())
		time.Sleep(50 * time.Millisecond) // a timer: runs about on time
	}
	close(stop)
	spinners.Wait()
	t.Logf("most lag reported under load: %v", most)
	require.GreaterOrEqual(t, most, 300*time.Millisecond, "the probe did not see the network's goroutines wait behind 100 spinning ones")
}
