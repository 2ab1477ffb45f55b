//go:build unix

package netio

import (
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/masterless-go/masterless/fsm"
	"github.com/stretchr/testify/require"
)

// Regression tests for three bugs of the writer's lifecycle (conn.go,
// writerState) found by a review, each shown to fail before its fix.

// slowSocket is a plain TCP socket whose Write (the writer's) sleeps for
// delay first and counts the writes in progress: a writer preempted between
// taking the output buffer and its system call, made wide.
type slowSocket struct {
	*net.TCPConn
	delay   atomic.Int64
	writing atomic.Int32
}

func (s *slowSocket) Write(b []byte) (int, error) {
	s.writing.Add(1)
	defer s.writing.Add(-1)
	time.Sleep(time.Duration(s.delay.Load()))
	return s.TCPConn.Write(b)
}

// slowConn returns a steady connection of a bare Runtime over a slowSocket,
// with no writer yet, and the peer's end of the socket.
func slowConn(t *testing.T) (*conn, *slowSocket, *net.TCPConn) {
	t.Helper()
	d, a := tcpPair(t)
	raw, err := d.SyscallConn()
	require.NoError(t, err)
	n := &Runtime{cfg: Config{SendBuffer: DefaultSendBuffer}, start: time.Now()}
	n.fcfg.PeerTimeout = 10 * time.Second
	s := &slowSocket{TCPConn: d}
	c := &conn{n: n, nc: s, raw: raw, idle: true}
	c.data.L, c.space.L = &c.wmu, &c.wmu
	c.steady.Store(true)
	t.Cleanup(func() {
		c.abort()
		n.wg.Wait()
	})
	return c, s, a
}

// sendOn does what a Send's step and its end do with c: queue p under the
// core lock with inline writes allowed, then, after between (what runs
// between the step and the write: the rest of the step, a preemption), the
// inline write if one was registered.
func sendOn(c *conn, p []byte, between func()) {
	n := c.n
	n.mu.Lock()
	n.allowInline(maxInline, inlineSend)
	c.write(nil, p)
	n.noInline()
	if between != nil {
		between()
	}
	n.unlockInline()
}

func seqMsg(i uint64) []byte { return binary.BigEndian.AppendUint64(nil, i) }

// spin busy-waits for d: a goroutine that stays on its CPU.
func spin(d time.Duration) {
	for start := time.Now(); time.Since(start) < d; {
	}
}

// readSeq reads 8-byte numbers from a until it has want of them, and sends
// "" if they came 0, 1, 2, ... in order, else what came first out of it.
func readSeq(a *net.TCPConn, want uint64) <-chan string {
	res := make(chan string, 1)
	go func() {
		var b [8]byte
		for next := range want {
			if _, err := io.ReadFull(a, b[:]); err != nil {
				res <- "read: " + err.Error()
				return
			}
			if got := binary.BigEndian.Uint64(b[:]); got != next {
				res <- fmt.Sprintf("got %d where %d was due", got, next)
				return
			}
		}
		res <- ""
	}()
	return res
}

// parked waits until c's writer is parked with nothing to write and no
// write of its own or inline in progress.
func parked(t *testing.T, c *conn, s *slowSocket) {
	t.Helper()
	require.Eventually(t, func() bool {
		c.wmu.Lock()
		defer c.wmu.Unlock()
		return c.writer == writerRunning && c.idle && len(c.out) == 0 && !c.inflight && !c.inlined && s.writing.Load() == 0
	}, 5*time.Second, 100*time.Microsecond, "the writer did not park")
}

// TestNoInlineWriteWhileWriterWrites: while the writer writes the bytes of
// a Send, a Send after inlineQuiet must not be written inline beside it.
// Each round: Send 1 inline; Send 2 at once, queued for the writer; Send 3
// inlineQuiet later, while the writer, slowed, writes Send 2. The peer must
// read every number in order, and no inline write may run during a
// writer's. Before the fix (the writer cleared idle only when kicked) it
// failed in every run at GOMAXPROCS 2 and 4: Send 1's end woke the parked
// writer by a broadcast, not a kick, the writer took Send 2, registered for
// an inline write meanwhile, and wrote it still marked idle, so Send 3 went
// inline beside it and came first. (A black-box audit had seen messages
// delivered out of order under -race, about one run in ten.) An inline
// write's end no longer wakes a parked writer at all
// (TestInlineWriteLeavesParkedWriterAsleep); the test keeps the order.
func TestNoInlineWriteWhileWriterWrites(t *testing.T) {
	c, s, a := slowConn(t)
	const rounds = 30
	order := readSeq(a, 1+3*rounds)
	var beside atomic.Int32 // inline writes made during a writer's write
	raw := c.raw
	c.raw = meanwhile{RawConn: raw, during: func() {
		if s.writing.Load() > 0 {
			beside.Add(1)
		}
	}}
	// Start the writer with message 0.
	c.wmu.Lock()
	c.out = append(c.out, seqMsg(0)...)
	w := c.kick()
	c.wmu.Unlock()
	c.wake(w)
	seq := uint64(1)
	idleWhileWriting := 0
	for range rounds {
		parked(t, c, s)
		s.delay.Store(int64(2 * time.Millisecond))
		sendOn(c, seqMsg(seq), nil)
		spin(30 * time.Microsecond)
		sendOn(c, seqMsg(seq+1), func() { spin(200 * time.Microsecond) })
		c.wmu.Lock()
		if c.idle && s.writing.Load() > 0 {
			idleWhileWriting++
		}
		c.wmu.Unlock()
		spin(30 * time.Microsecond) // past inlineQuiet
		sendOn(c, seqMsg(seq+2), nil)
		seq += 3
		s.delay.Store(0)
	}
	parked(t, c, s)
	select {
	case got := <-order:
		require.Empty(t, got, "the peer read the messages out of order")
	case <-time.After(10 * time.Second):
		t.Fatal("the peer did not read every message within 10s")
	}
	require.Zero(t, beside.Load(), "inline writes made while the writer wrote")
	require.Zero(t, idleWhileWriting, "rounds in which the writer wrote while marked idle")
}

// TestInlineWriteLeavesParkedWriterAsleep: a connection whose writer is
// parked with nothing to write, answered inline again and again, must not
// wake the writer: each wake-up is a goroutine readied (often on the other
// CPU) for nothing. Before the fix every inline write's end broadcast to
// the writer, and a ping-pong ran at 0.91-0.93 of bare TCP's rate; after,
// 0.99-1.03 (four interleaved rounds; PERFORMANCE.md, "A parked writer left
// asleep").
func TestInlineWriteLeavesParkedWriterAsleep(t *testing.T) {
	if !inlineSupported {
		t.Skip("no inline writes on this platform")
	}
	c, s, a := slowConn(t)
	const sends = 20
	order := readSeq(a, 1+sends)
	c.wmu.Lock() // start the writer with message 0
	c.out = append(c.out, seqMsg(0)...)
	w := c.kick()
	c.wmu.Unlock()
	c.wake(w)
	parked(t, c, s)
	inline, wakes := c.n.inlineWrites.Load(), c.n.writerWakes.Load()
	for i := range uint64(sends) {
		spin(2 * inlineQuiet) // each Send quiet, so each is written inline
		sendOn(c, seqMsg(1+i), nil)
	}
	select {
	case got := <-order:
		require.Empty(t, got, "the peer read the messages out of order")
	case <-time.After(10 * time.Second):
		t.Fatal("the peer did not read every message within 10s")
	}
	require.Equal(t, uint64(sends), c.n.inlineWrites.Load()-inline, "sends not written inline: the test set nothing up")
	require.Zero(t, c.n.writerWakes.Load()-wakes, "the parked writer woke for inline writes")
	parked(t, c, s)
}

// TestReaderWaitsForWriterStartedByInlineWrite: a connection without a
// writer has an inline write in its system call when a step closes it
// gracefully (its goodbye queued behind the write, which is left the FIN)
// and its reader ends (the peer's FIN: no abort) and waits for the write.
// The write's end finds the goodbye queued and starts a writer; the
// reader's wait must then wait for that writer too, not mark it away
// (writerNever) and close the socket under it. Before the fix it did,
// every run: the writer wrote to a closed socket, and ran on after the
// reader's count in the wait group was gone.
func TestReaderWaitsForWriterStartedByInlineWrite(t *testing.T) {
	c, s, _ := slowConn(t)
	c.writer, c.inlined = writerNone, true
	c.out = append(c.out, seqMsg(1)...)
	raw := c.raw
	inWrite, release := make(chan struct{}), make(chan struct{})
	c.raw = meanwhile{RawConn: raw, during: func() {
		c.wmu.Lock()
		c.out = append(c.out, "goodbye!"...) // write: case c.inlined
		c.wmu.Unlock()
		c.closeGraceful() // no writer, an inline write pending: the FIN is its
		close(inWrite)
		<-release
	}}
	c.n.wg.Add(1) // the reader's count, as run takes it
	flushed := make(chan struct{})
	go func() {
		c.flushInline()
		close(flushed)
	}()
	<-inWrite
	var writerRan atomic.Bool // a writer still ran when the reader closed the socket
	readerDone := make(chan struct{})
	go func() { // readLoop's end: flushing, so no abort
		defer close(readerDone)
		defer c.n.wg.Done()
		c.waitWriter()
		c.wmu.Lock()
		done := c.writerDone
		c.wmu.Unlock()
		if done != nil {
			select {
			case <-done:
			default:
				writerRan.Store(true)
			}
		}
		_ = s.Close()
	}()
	time.Sleep(20 * time.Millisecond) // the reader waits for the write
	close(release)
	endWithin(t, 10*time.Second, "the inline write or the reader's end", flushed, readerDone)
	c.wmu.Lock()
	started := c.writerDone != nil
	c.wmu.Unlock()
	require.True(t, started, "the inline write's end started no writer for the goodbye: the test set nothing up")
	require.False(t, writerRan.Load(), "the reader closed the socket while the writer started by the inline write ran")
}

// TestRefusedConnStartsNoWriter: a dial that the state machine abandoned
// while it was in flight (here one it never made) still reports its
// connection: the layer writes the preamble (registered for an inline
// write), the step closes the connection gracefully (a lingering close is
// counted for it) and run refuses it, closing the socket, with no reader.
// The inline write's end must start no writer on the closed socket, and
// the lingering count must come back, since no reader will give it back.
// Before the fix both failed, every run; past maxLingering such dials,
// every graceful close of the node would have been an abort.
func TestRefusedConnStartsNoWriter(t *testing.T) {
	b := startNode(t, fsm.Config{ID: "b"}, nil, Events{})
	a := startNode(t, fsm.Config{ID: "a"}, nil, Events{})
	hostport, err := ParseAddr(b.Info())
	require.NoError(t, err)
	nc, err := net.Dial("tcp", hostport)
	require.NoError(t, err)
	// The tail of dial, for a dial id the state machine does not know.
	a.mu.Lock()
	lingering := a.lingering
	c := a.newConn(nc)
	c.steady.Store(true)
	a.allowInline(maxInline, inlineOnce)
	a.link.DialedAuth(a.now(), fsm.DialID(1<<40), c.id, "")
	a.noInline()
	c.run(false)
	a.settle()
	a.unlockInline()
	c.wmu.Lock()
	writer := c.writer
	c.wmu.Unlock()
	a.mu.Lock()
	after := a.lingering
	a.mu.Unlock()
	require.NotEqual(t, writerRunning, writer, "a writer started on a connection that run refused (no reader, socket closed)")
	require.Equal(t, lingering, after, "the lingering count of a connection that run refused")
}
