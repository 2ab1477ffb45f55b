package masterless

import (
	"bytes"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// Close returns promptly even while a peer has stopped reading and a write
// to it is blocked: the goodbyes get a bounded grace, not the peer timeout
// (before: up to 28.5 s with a 30 s peer timeout).
func TestCloseWithPeerNotReading(t *testing.T) {
	long := []Option{WithPeerTimeout(30 * time.Second), WithHeartbeat(time.Second)}
	gate := make(chan struct{})
	a, err := New("a", append(long, WithSendBuffer(64<<10), WithLogger(newLogger(&logSink{})))...)
	require.NoError(t, err)
	b, err := New("b", append(long,
		WithLogger(newLogger(&logSink{})),
		WithDispatchQueue(16, 16<<10),
		WithEvents(Events{Message: func(*Server, string, []byte) { <-gate }}))...)
	require.NoError(t, err)
	defer b.Close()
	defer close(gate)
	_, err = a.Connect(ctxT(t), b.Info())
	require.NoError(t, err)

	var sent atomic.Int64
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // a sender that ends up waiting for room: b reads nothing
		defer wg.Done()
		p := make([]byte, 64<<10)
		for a.Send("b", p) {
			sent.Add(1)
		}
	}()
	var prev int64 = -1
	eventually(t, "a's writes are blocked", func() bool {
		cur := sent.Load()
		stalled := cur == prev && cur > 0
		prev = cur
		if !stalled {
			time.Sleep(200 * time.Millisecond)
		}
		return stalled
	})
	start := time.Now()
	require.NoError(t, a.Close())
	took := time.Since(start)
	wg.Wait() // the blocked Send returned too
	require.Less(t, took, time.Second, "Close took %v", took)
}

// Messages of 64 KiB and around it cross both ways over real TCP: the
// regression for a reader that spun when its buffer held exactly 64 KiB of a
// larger frame (the frame is 65,541 bytes).
func TestLargeMessagesBothWays(t *testing.T) {
	a, ra := newServer(t, "a")
	b, rb := newServer(t, "b")
	_, err := a.Connect(ctxT(t), b.Info())
	require.NoError(t, err)
	var want [][]byte
	for _, n := range []int{64<<10 - 5, 64<<10 - 1, 64 << 10, 64<<10 + 1, 128 << 10, 1 << 20} {
		want = append(want, bytes.Repeat([]byte{byte(n)}, n))
	}
	for _, p := range want {
		require.True(t, a.Send("b", p))
		require.True(t, b.Send("a", p))
	}
	eventually(t, "every message arrives", func() bool {
		return len(rb.messages("a")) == len(want) && len(ra.messages("b")) == len(want)
	})
	for i := range want {
		require.Equal(t, want[i], rb.messages("a")[i])
		require.Equal(t, want[i], ra.messages("b")[i])
	}
}
