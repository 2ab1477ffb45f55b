package masterless

import (
	"context"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"

	"github.com/stretchr/testify/require"
)

// After SendManyContext returns, the server keeps nothing of the caller's
// ids: an id cut from a larger string (a configuration file, say) must not
// keep that string alive. A black-box audit found the lanes of the latest
// list of peers (netio's manyLanes) keeping the caller's strings, so 64 MiB
// here, for small payloads (the lanes' path); payloads of 512 bytes and
// more (the step's only) kept nothing.
func TestSendManyKeepsNoCallerMemory(t *testing.T) {
	for _, size := range []int{100, 600} {
		hub, _ := newServer(t, "hub")
		r, _ := newServer(t, "r0")
		_, err := hub.Connect(ctxT(t), r.Info())
		require.NoError(t, err)
		var freed atomic.Bool
		func() {
			big := "r0" + strings.Repeat("x", 64<<20)
			ids := []string{big[:2]}
			runtime.AddCleanup(unsafe.StringData(big), func(f *atomic.Bool) { f.Store(true) }, &freed)
			for range 3 { // the lease's grant, a stale lookup, the lanes kept
				n, err := hub.SendManyContext(context.Background(), ids, make([]byte, size))
				require.NoError(t, err)
				require.Equal(t, 1, n)
			}
		}()
		for i := 0; i < 100 && !freed.Load(); i++ {
			runtime.GC()
			time.Sleep(10 * time.Millisecond)
		}
		require.True(t, freed.Load(), "payloads of %d bytes: the server keeps the caller's id (64 MiB) after SendManyContext returned", size)
		hub.Close()
		r.Close()
	}
}

// SendManyContext to no peer sends nothing and says nothing went wrong,
// except on a closed server, whatever the payload's size (a small one
// takes the lanes' path, which needs no step: an audit saw it return nil
// there).
func TestSendManyToNoPeer(t *testing.T) {
	a, _ := newServer(t, "a")
	for _, size := range []int{10, 600} {
		n, err := a.SendManyContext(ctxT(t), nil, make([]byte, size))
		require.Zero(t, n)
		require.NoError(t, err, "%d bytes", size)
	}
	require.NoError(t, a.Close())
	for _, size := range []int{10, 600} {
		n, err := a.SendManyContext(ctxT(t), nil, make([]byte, size))
		require.Zero(t, n)
		require.ErrorIs(t, err, ErrClosed, "%d bytes", size)
	}
}

// A producer's stream of SendManyContext to one list of peers (staged once
// for all of them, in the list's fan: netio/fan.go) goes on across a cut of
// one peer's connection: the others get every message, in order; the cut
// peer gets its messages in order, without repeats, up to the last one
// (only what was in flight on the dead connection may be lost: the
// redial resends what was not acknowledged).
func TestSendManyStreamAcrossACut(t *testing.T) {
	hub, _ := newServer(t, "hub")
	ids := []string{"r0", "r1", "r2"}
	recs := map[string]*recorder{}
	var relay *proxy
	for _, id := range ids {
		s, r := newServer(t, id)
		recs[id] = r
		info := s.Info()
		if id == "r1" {
			relay = newProxy(t, info)
			info = relay.info()
		}
		_, err := hub.Connect(ctxT(t), info)
		require.NoError(t, err)
	}
	const n = 30000
	for i := range n {
		if i == n/3 || i == 2*n/3 {
			relay.cut() // r1's connection dies mid-stream; the hub redials through the relay
		}
		k, err := hub.SendManyContext(ctxT(t), ids, fmt.Appendf(nil, "m%d", i))
		require.NoError(t, err, "message %d", i)
		require.Equal(t, len(ids), k, "message %d", i)
	}
	last := fmt.Sprintf("m%d", n-1)
	for _, id := range ids {
		eventually(t, "the last message at "+id, func() bool {
			m := recs[id].messages("hub")
			return len(m) > 0 && string(m[len(m)-1]) == last
		})
		nums := checkInOrder(t, recs[id].messages("hub"), "m")
		if id != "r1" {
			require.Len(t, nums, n, "%s got every message", id)
		}
	}
	eventually(t, "the hub's three sessions", func() bool { return sameSet(hub.Connections(), ids...) })
	for _, p := range hub.Stats().Peers {
		if p.ID == "r1" {
			require.Positive(t, p.Reconnects, "the cuts did not end r1's session")
		}
	}
}

// A producer's stream of SendManyContext to one list (staged once for the
// list, in its fan) past a peer whose user stops taking messages in: that
// peer's credit runs out, then the part of the hub's queue for it that
// SendContext may fill (WithSendQueue), and each call then waits for it
// until its context ends, returning the other peers' count and an error
// wrapping ErrQueueFull and the context's. The other peers get every message of
// every call, in order, meanwhile: the stalled peer holds up the producer,
// as SendContext to it would, and nobody else's delivery. Once its user
// takes messages in again it gets exactly those it accepted, in order.
func TestSendManyContextPastAStalledPeer(t *testing.T) {
	hub, _ := newServer(t, "hub")
	ids := []string{"r0", "r1", "r2", "r3"}
	recs := map[string]*recorder{}
	release := make(chan struct{})
	var releaseOnce sync.Once
	for _, id := range ids {
		var opts []Option
		if id == "r3" { // a small window: its credit runs out soon
			opts = append(opts, WithWindow(16<<10), WithMaxWindow(16<<10))
		}
		s, r := newServer(t, id, opts...)
		recs[id] = r
		if id == "r3" {
			r.onMsg = func(*Server, string, []byte) { <-release }
		}
		_, err := hub.Connect(ctxT(t), s.Info())
		require.NoError(t, err)
	}
	// After the servers' cleanups, so before them: Close waits for a
	// callback in progress.
	t.Cleanup(func() { releaseOnce.Do(func() { close(release) }) })
	eventually(t, "the hub's sessions", func() bool { return sameSet(hub.Connections(), ids...) })
	accepted := map[string]int{} // messages each peer accepted, by call
	sent, refused := 0, 0
	const wait = 50 * time.Millisecond
	for sent < 400000 && refused < 5 {
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		start := time.Now()
		k, err := hub.SendManyContext(ctx, ids, fmt.Appendf(nil, "m%d", sent))
		took := time.Since(start)
		cancel()
		if err == nil {
			require.Equal(t, len(ids), k, "call %d", sent)
			for _, id := range ids {
				accepted[id]++
			}
		} else {
			require.ErrorIs(t, err, ErrQueueFull, "call %d", sent)
			require.ErrorIs(t, err, context.DeadlineExceeded, "call %d", sent)
			require.Equal(t, len(ids)-1, k, "call %d: the peers that are not stalled", sent)
			require.GreaterOrEqual(t, took, wait/2, "call %d returned before its context ended", sent)
			for _, id := range ids[:3] {
				accepted[id]++
			}
			refused++
		}
		sent++
	}
	require.Equal(t, 5, refused, "r3's queue never filled in %d calls: the test set nothing up", sent)
	t.Logf("%d calls, r3 accepted %d", sent, accepted["r3"])
	require.Less(t, accepted["r3"], sent, "r3 accepted every message")
	for _, id := range ids[:3] {
		eventually(t, "every message at "+id, func() bool { return len(recs[id].messages("hub")) == sent })
		require.Len(t, checkInOrder(t, recs[id].messages("hub"), "m"), sent, "%s", id)
	}
	releaseOnce.Do(func() { close(release) })
	eventually(t, "r3's accepted messages", func() bool { return len(recs["r3"].messages("hub")) >= accepted["r3"] })
	time.Sleep(50 * time.Millisecond) // no more than it accepted may come
	nums := checkInOrder(t, recs["r3"].messages("hub"), "m")
	require.Len(t, nums, accepted["r3"], "r3 got other than the messages it accepted")
}
