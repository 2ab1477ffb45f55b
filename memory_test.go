package masterless

import (
	"fmt"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// The memory an idle connected peer costs a node (issue 10, item 2): at most
// 16 KiB of heap per peer with 500 peers.
const (
	idlePeers       = 500
	idleHeapPerPeer = 16 << 10
	burstSmall      = 1000 // small messages to each peer in the burst
)

// idleFootprint is what a node holds for its idle peers, per peer.
type idleFootprint struct {
	heap, stack float64 // bytes per peer: live heap objects, goroutine stacks
	goroutines  float64 // per peer
}

func (f idleFootprint) String() string {
	return fmt.Sprintf("heap %.0f B, stacks %.0f B, %.2f goroutines per peer", f.heap, f.stack, f.goroutines)
}

// settledMem collects garbage until the live heap stops shrinking and returns
// the statistics.
func settledMem() runtime.MemStats {
	var m runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&m)
	return m
}

// measureIdle starts a node, measures it, connects n idle peers from another
// process (so their own cost is not in this process's figures), lets them
// idle for a few heartbeats and measures again. extra, if not nil, runs just
// before the second measurement and returns something to keep alive across
// it (the negative control). Only the node's side is in the difference: the
// peers' heap, stacks and goroutines are in the child process.
//
// With burst, every peer first sends the node a message of burstSize bytes
// and the node sends one to every peer, then burstSmall small ones (which
// grow the per-peer queues of unacknowledged messages), so that every buffer on the way has
// grown: the measurement then shows what is given back once idle.
func measureIdle(t *testing.T, n int, burst bool, extra func() any) idleFootprint {
	t.Helper()
	var got atomic.Int64
	// Default heartbeats, but a long peer timeout at both ends: a loaded
	// machine must not end a session during the measurement.
	s, err := New("idle-node", WithLogger(quietLogger()), WithPeerTimeout(testPeerTO), WithEvents(Events{
		Message: func(_ *Server, _ string, p []byte) { got.Add(int64(len(p))) },
	}))
	require.NoError(t, err)
	defer s.Close()
	before := settledMem()
	g0 := runtime.NumGoroutine()

	mode := "masterless"
	if burst {
		mode = "masterless-burst"
	}
	child := startIdleChild(t, mode, s.Info(), n, testPeerTO)
	defer child.stop(t)
	eventuallyWithin(t, 2*time.Minute, "every peer connected at the node", func() bool { return len(s.Connections()) == n })
	if burst {
		eventuallyWithin(t, 2*time.Minute, "every peer's burst received", func() bool { return got.Load() == int64(n*burstSize) })
		ctx := ctxT(t)
		big := make([]byte, burstSize)
		sent, err := s.SendManyContext(ctx, s.Connections(), big)
		require.NoError(t, err)
		require.Equal(t, n, sent)
		small := make([]byte, 64)
		for range burstSmall {
			sent, err := s.SendManyContext(ctx, s.Connections(), small)
			require.NoError(t, err)
			require.Equal(t, n, sent)
		}
		eventuallyWithin(t, 2*time.Minute, "every peer acknowledged the node's burst", func() bool {
			for _, p := range s.Stats().Peers {
				if p.Queued > 0 {
					return false
				}
			}
			return true
		})
	}
	time.Sleep(2500 * time.Millisecond) // a couple of heartbeats each way: idle, not freshly handshaken
	require.Len(t, s.Connections(), n, "no session may end while idle")

	var keep any
	if extra != nil {
		keep = extra()
	}
	after := settledMem()
	g1 := runtime.NumGoroutine()
	runtime.KeepAlive(keep)
	return idleFootprint{
		heap:       (float64(after.HeapAlloc) - float64(before.HeapAlloc)) / float64(n),
		stack:      (float64(after.StackInuse) - float64(before.StackInuse)) / float64(n),
		goroutines: float64(g1-g0) / float64(n),
	}
}

// TestIdlePeerMemory measures the heap a node holds per idle connected peer
// with 500 peers, and fails above 16 KiB. The peers run in a child process,
// so only the node's end of each connection is counted.
//
// Negative control: the same measurement with 20 KiB more retained per peer
// (what a node that kept a read buffer of that size per connection would
// hold) must fail the bound, and the measurement must see more than 1 KiB per
// peer (a peer cannot be free: it would mean the peers were not counted).
func TestIdlePeerMemory(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector changes allocation sizes; make test runs this test without it")
	}
	if testing.Short() {
		t.Skip("connects 500 peers from a child process")
	}
	f := measureIdle(t, idlePeers, false, nil)
	t.Logf("%d idle peers: %v", idlePeers, f)
	require.Greater(t, f.heap, 1024.0, "the measurement saw no cost per peer: the peers are not being counted")
	require.LessOrEqual(t, f.heap, float64(idleHeapPerPeer), "heap per idle peer over 16 KiB (%v)", f)
	require.InDelta(t, 1.0, f.goroutines, 0.1, "goroutines per idle connection (netio/doc.go says one: its reader)")

	t.Run("after a burst", func(t *testing.T) {
		f := measureIdle(t, idlePeers, true, nil)
		t.Logf("%d idle peers, each of which sent and received %d KiB before: %v", idlePeers, burstSize>>10, f)
		require.LessOrEqual(t, f.heap, float64(idleHeapPerPeer), "heap per idle peer over 16 KiB after a burst: buffers not given back (%v)", f)
		require.InDelta(t, 1.0, f.goroutines, 0.1, "goroutines per idle connection after a burst: its writer did not end (netio/doc.go)")
	})

	t.Run("after a backlog of small messages", func(t *testing.T) {
		kept := idleAfterBacklog(t, nil)
		t.Logf("a node idle after delivering a backlog of 20,000 small messages keeps %.1f KiB", kept/1024)
		require.LessOrEqual(t, kept, float64(backlogKeep), "the delivery path kept the room a backlog grew")
		held := idleAfterBacklog(t, func() any { return make([]byte, 2*backlogKeep) })
		require.Greater(t, held, float64(backlogKeep), "the check cannot fail: %d bytes more stayed under the bound", 2*backlogKeep)
	})

	t.Run("control", func(t *testing.T) {
		g := measureIdle(t, idlePeers, false, func() any {
			held := make([][]byte, idlePeers)
			for i := range held {
				held[i] = make([]byte, 20<<10)
			}
			return held
		})
		t.Logf("with 20 KiB more per peer: %v", g)
		require.Greater(t, g.heap, float64(idleHeapPerPeer), "the check cannot fail: 20 KiB more per peer stayed under the bound")
	})
}

// backlogKeep bounds the heap a node keeps once idle after delivering a
// backlog of small messages: a read's list of events and the delivery
// queue's ring grew to thousands of entries for it, and kept them (a
// black-box audit: 1.5 MiB, then 250 KiB).
const backlogKeep = 64 << 10

// idleAfterBacklog connects a pair in this process, has the sender send
// 20,000 small messages while the receiver's callback waits, lets the
// callback go, waits until everything is delivered and the pair has idled
// for a few ticks, and returns the heap the two nodes kept over what they
// held before. extra, if not nil, runs before the second measurement and
// returns something to keep alive across it (the negative control).
func idleAfterBacklog(t *testing.T, extra func() any) float64 {
	var got atomic.Int64
	gate := make(chan struct{})
	beat := WithHeartbeat(100 * time.Millisecond)
	b, _ := newServer(t, "backlog-b", beat, WithEvents(Events{Message: func(*Server, string, []byte) {
		<-gate
		got.Add(1)
	}}))
	a, _ := newServer(t, "backlog-a", beat)
	_, err := a.Connect(ctxT(t), b.Info())
	require.NoError(t, err)
	time.Sleep(500 * time.Millisecond)
	before := settledMem()
	small := make([]byte, 8)
	sent := int64(0)
	for range 20000 {
		if !a.Send("backlog-b", small) {
			break
		}
		sent++
	}
	require.Greater(t, sent, int64(10000), "the sender's queue took too few messages to make a backlog")
	time.Sleep(500 * time.Millisecond)
	close(gate)
	eventuallyWithin(t, 30*time.Second, "backlog delivered", func() bool { return got.Load() == sent })
	time.Sleep(time.Second) // ten heartbeats: the timer trims what idles at its ticks
	keep := any(nil)
	if extra != nil {
		keep = extra()
	}
	after := settledMem()
	runtime.KeepAlive(keep)
	a.Close()
	b.Close()
	return float64(after.HeapAlloc) - float64(before.HeapAlloc)
}
