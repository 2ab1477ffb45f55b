package masterless

import (
	"bytes"
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// A handler that stalls must not make memory grow: the dispatch queue fills,
// the receiver stops reading, TCP fills, and the sender's Send waits. When
// the handler resumes, everything arrives in order.
func TestSlowHandlerBackpressure(t *testing.T) {
	long := []Option{WithPeerTimeout(30 * time.Second), WithHeartbeat(time.Second)}
	gate := make(chan struct{})
	var got atomic.Int64
	var last atomic.Int64
	last.Store(-1)
	var bad atomic.Bool
	a, _ := newServer(t, "a", append(long, WithSendBuffer(64<<10))...)
	b, err := New("b", append(long,
		WithLogger(newLogger(&logSink{})),
		WithDispatchQueue(64, 64<<10),
		WithEvents(Events{Message: func(_ *Server, _ string, p []byte) {
			<-gate
			i := int64(p[0])<<24 | int64(p[1])<<16 | int64(p[2])<<8 | int64(p[3])
			if i != last.Load()+1 {
				bad.Store(true)
			}
			last.Store(i)
			got.Add(1)
		}}))...)
	require.NoError(t, err)
	defer b.Close()
	_, err = a.Connect(ctxT(t), b.Info())
	require.NoError(t, err)

	const n = 200000 // 200k x 1 KiB = 200 MiB, far beyond every buffer
	var sent atomic.Int64
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		p := make([]byte, 1024)
		for i := range n {
			p[0], p[1], p[2], p[3] = byte(i>>24), byte(i>>16), byte(i>>8), byte(i)
			if err := a.SendContext(ctxT(t), "b", p); err != nil {
				t.Errorf("send %d: %v", i, err)
				return
			}
			sent.Add(1)
		}
	}()
	// The sender stalls well short of n: everything in between is bounded.
	var prev int64 = -1
	eventually(t, "the sender is held back", func() bool {
		cur := sent.Load()
		stalled := cur == prev && cur > 0
		prev = cur
		if !stalled {
			time.Sleep(100 * time.Millisecond)
		}
		return stalled
	})
	require.Less(t, sent.Load(), int64(n/4), "sends in flight are bounded by the buffers")
	close(gate)
	wg.Wait()
	// 200 MiB through loopback: about 1.5 s idle under -race, many times
	// that on a loaded machine.
	eventuallyWithin(t, 4*waitFor, "everything arrives", func() bool { return got.Load() == n })
	require.False(t, bad.Load(), "messages arrived out of order")
}

// SendContext of a payload larger than the window goes once the queue is
// empty, and arrives whole: it used to wait until its context ended, the
// queue empty, as a producer's share is a window (found by a black-box
// audit: 1,048,544 bytes went, 1,048,545 waited for ever).
func TestSendContextOverTheWindow(t *testing.T) {
	a, _ := newServer(t, "a")
	b, rb := newServer(t, "b")
	_, err := a.Connect(ctxT(t), b.Info())
	require.NoError(t, err)
	sizes := []int{1<<20 - 32, 1<<20 - 31, 1 << 20, 2 << 20, 8 << 20}
	for i, size := range sizes {
		p := bytes.Repeat([]byte{byte(i)}, size)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err := a.SendContext(ctx, "b", p)
		cancel()
		require.NoError(t, err, "SendContext of %d bytes", size)
	}
	eventually(t, "every message delivered", func() bool { return len(rb.messages("a")) == len(sizes) })
	for i, m := range rb.messages("a") {
		require.Len(t, m, sizes[i])
		require.Equal(t, byte(i), m[0])
	}
}

// A payload larger than the whole send queue (WithSendQueue's bytes) could
// never be accepted: Send, SendContext and SendMany refuse it at once with
// ErrPayloadTooLarge. SendContext used to retry its ErrQueueFull until its
// context ended, the queue empty. One byte less still goes.
func TestPayloadOverTheSendQueue(t *testing.T) {
	const bound = 64 << 10
	a, _ := newServer(t, "a", WithSendQueue(1024, bound))
	b, rb := newServer(t, "b")
	_, err := a.Connect(ctxT(t), b.Info())
	require.NoError(t, err)

	over := make([]byte, bound+1)
	require.ErrorIs(t, a.SendErr("b", over), ErrPayloadTooLarge)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	start := time.Now()
	err = a.SendContext(ctx, "b", over)
	require.ErrorIs(t, err, ErrPayloadTooLarge)
	require.Less(t, time.Since(start), 5*time.Second, "SendContext waited for room that could never come")
	k, err := a.SendManyContext(ctx, []string{"b"}, over)
	require.Zero(t, k)
	require.ErrorIs(t, err, ErrPayloadTooLarge)

	require.NoError(t, a.SendContext(ctx, "b", make([]byte, bound)))
	eventually(t, "the message that fits arrives", func() bool { return len(rb.messages("a")) == 1 })
	require.Len(t, rb.messages("a")[0], bound)
}

// A send queue of one message: SendContext sends one message at a time,
// each once the previous one is acknowledged, a round trip. It used to
// wait for ever, the queue empty, as a producer's share is half the
// queue's messages; then a heartbeat per message.
func TestSendQueueOfOneMessage(t *testing.T) {
	a, _ := newServer(t, "a", WithSendQueue(1, 1<<20))
	b, rb := newServer(t, "b")
	_, err := a.Connect(ctxT(t), b.Info())
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// Each waits for the ACK of the one before: a's empty PING asks b for
	// it at once (fsm/stream.go, askForAck). Before, it came with b's next
	// heartbeat: a message a second.
	start := time.Now()
	const msgs = 100
	for i := range msgs - 1 {
		require.NoError(t, a.SendContext(ctx, "b", []byte{byte(i)}), "message %d", i)
	}
	k, err := a.SendManyContext(ctx, []string{"b"}, []byte{msgs - 1})
	require.NoError(t, err)
	require.Equal(t, 1, k)
	took := time.Since(start)
	require.Less(t, took, 5*time.Second, "%d messages, one at a time, each waiting for a heartbeat's ACK?", msgs)
	eventually(t, "every message delivered", func() bool { return len(rb.messages("a")) == msgs })
	for i, m := range rb.messages("a") {
		require.Equal(t, []byte{byte(i)}, m)
	}
}

// TestRestartingPeerHasOneWindowWaiting: a peer id whose process restarts
// again and again, each time sending as much as it may, while this node's
// callback is stuck, has at most a window (and one message) waiting for the
// callback: each new incarnation's credit counts what the earlier ones still
// have queued. Each restart got a window of its own before (a black-box
// audit: 20 restarts, 20 MiB waiting against the default window of 1 MiB).
func TestRestartingPeerHasOneWindowWaiting(t *testing.T) {
	const window, size = 64 << 10, 1000
	gate := make(chan struct{})
	var handed atomic.Int64
	a, _ := newServer(t, "a", WithWindow(window), WithEvents(Events{Message: func(*Server, string, []byte) {
		handed.Add(1)
		<-gate
	}}))
	defer close(gate)
	for k := range 5 {
		b, err := New("b", WithIncarnation(uint64(k+1)), WithLogger(newLogger(&logSink{})))
		require.NoError(t, err)
		_, err = b.Connect(ctxT(t), a.Info())
		require.NoError(t, err)
		for range 2 * window / size {
			b.Send("a", make([]byte, size))
		}
		// Until a has taken what it may of this incarnation's messages.
		prev := uint64(0)
		eventually(t, "a takes no more", func() bool {
			time.Sleep(50 * time.Millisecond)
			cur := a.Stats().MessagesIn
			done := cur == prev && cur > 0
			prev = cur
			return done
		})
		require.NoError(t, b.Close())
	}
	waiting := int64(a.Stats().MessagesIn) - handed.Load() + 1 // the callback holds one
	require.LessOrEqual(t, waiting*(size+32), int64(window+size+32), "%d messages of b wait for the callback", waiting)
}
