//go:build unix

package netio

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/masterless-go/masterless/fsm"
	"github.com/stretchr/testify/require"
)

// meanwhile is a syscall.RawConn whose Control (tryWrite's way to the
// socket) runs during() just before the real one: what a Send appends
// while an inline write is in its system call, at the one moment that
// matters.
type meanwhile struct {
	syscall.RawConn
	during func()
}

func (m meanwhile) Control(f func(fd uintptr)) error {
	m.during()
	return m.RawConn.Control(f)
}

// tcpPair returns the two ends of a loopback TCP connection.
func tcpPair(t *testing.T) (*net.TCPConn, *net.TCPConn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	d, err := net.Dial("tcp", ln.Addr().String())
	require.NoError(t, err)
	a, err := ln.Accept()
	require.NoError(t, err)
	t.Cleanup(func() { d.Close(); a.Close() })
	return d.(*net.TCPConn), a.(*net.TCPConn)
}

// pattern is n bytes that say where they are in a stream starting at off.
func pattern(off, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte((off + i) * 7 / 3)
	}
	return b
}

// pendingInline returns a connection whose parked writer has an inline
// write pending, on the dialing end of a loopback TCP pair with small
// buffers (the socket takes only part of inlineMax at once); its socket's
// RawConn; and the accepted end, which reads nothing until told.
func pendingInline(t *testing.T) (*conn, syscall.RawConn, *net.TCPConn) {
	t.Helper()
	d, a := tcpPair(t)
	require.NoError(t, d.SetWriteBuffer(4<<10))
	require.NoError(t, a.SetReadBuffer(4<<10))
	raw, err := d.SyscallConn()
	require.NoError(t, err)
	c := &conn{n: &Runtime{cfg: Config{SendBuffer: DefaultSendBuffer}}, nc: d, raw: raw}
	c.data.L, c.space.L = &c.wmu, &c.wmu
	c.idle, c.inlined, c.writer = true, true, writerRunning
	return c, raw, a
}

// TestInlineWriteKeepsOrder: an inline write that the socket takes only
// part of (a peer that reads nothing yet, a small send buffer) leaves the
// rest in front of what sends queued during its system call, for the
// writer, which it wakes; the peer then reads every byte once, in order.
// It fails when the rest is put behind the bytes queued meanwhile, when it
// is dropped, and when the writer is not told (checked by hand).
func TestInlineWriteKeepsOrder(t *testing.T) {
	c, raw, a := pendingInline(t)
	d := c.nc.(*net.TCPConn)
	first := pattern(0, inlineMax) // more than the socket takes at once
	later := pattern(len(first), 1000)
	c.out = append([]byte(nil), first...)
	appended := false
	c.raw = meanwhile{RawConn: raw, during: func() {
		c.wmu.Lock()
		require.True(t, c.inflight, "the write is in flight")
		c.out = append(c.out, later...) // a Send meanwhile: c.inlined, so no wake
		appended = true
		c.wmu.Unlock()
	}}

	c.flushInline()

	require.True(t, appended)
	took := int(c.bytesOut.Load())
	require.Greater(t, took, 0, "the socket took part of it")
	require.Less(t, took, len(first), "the socket took only part of it")
	require.False(t, c.inlined)
	require.False(t, c.inflight)
	require.False(t, c.idle, "the writer was told of the rest")
	require.Equal(t, len(first)-took+len(later), len(c.out), "bytes left for the writer")

	// The writer's part, while the peer reads everything.
	got := make(chan []byte, 1)
	go func() {
		b, _ := io.ReadAll(a)
		got <- b
	}()
	_, err := d.Write(c.out)
	require.NoError(t, err)
	require.NoError(t, d.CloseWrite())
	select {
	case b := <-got:
		want := append(append([]byte(nil), first...), later...)
		require.Equal(t, len(want), len(b))
		require.True(t, bytes.Equal(want, b), "bytes out of order")
	case <-time.After(10 * time.Second):
		t.Fatal("the peer did not read everything within 10s")
	}
}

// TestInlineWriteLeavesAClosedConnection: an inline write whose connection
// was aborted during its system call, and which the socket took only part
// of, leaves the buffer as the abort did (empty: nothing is written after
// an abort) and wakes the writer, which has to end. It fails when the rest
// is put back regardless of the abort, and when the writer is not woken
// (checked by hand).
func TestInlineWriteLeavesAClosedConnection(t *testing.T) {
	c, raw, _ := pendingInline(t)
	c.out = pattern(0, inlineMax) // more than the socket takes at once
	c.raw = meanwhile{RawConn: raw, during: func() {
		c.wmu.Lock()
		c.state, c.out = connAborted, nil // abort, without its wake-up (the writer is parked)
		c.wmu.Unlock()
	}}
	c.flushInline()
	took := int(c.bytesOut.Load())
	require.Less(t, took, inlineMax, "the socket took only part of it")
	require.Nil(t, c.out, "bytes left for a writer that must not write")
	require.False(t, c.idle, "the writer was woken to end")
	require.False(t, c.inflight)
}

// TestInlineWritesDeliverInOrder: Sends with pauses between them, which
// are written inline, mixed with ones too large for that (4 MiB, more
// than the socket takes at once), with producers' messages, and with
// bursts, which the writer writes: each message arrives once, whole, in
// order. The node counts its inline writes, which must have happened.
// (TestInlineWriteKeepsOrder covers an inline write the socket takes only
// part of.)
func TestInlineWritesDeliverInOrder(t *testing.T) {
	sizes := []int{8, 4 << 20, 100, 200 << 10, 1 << 20, 40}
	const total = 60
	msg := func(i int) []byte {
		p := pattern(i*131, sizes[i%len(sizes)])
		binary.BigEndian.PutUint32(p, uint32(i)) // every size holds 4 bytes
		return p
	}
	var mu sync.Mutex
	next, bad := 0, ""
	done := make(chan struct{})
	b := startNode(t, fsm.Config{ID: "b"}, nil, Events{Message: func(_ string, p []byte) {
		mu.Lock()
		defer mu.Unlock()
		if bad == "" && !bytes.Equal(p, msg(next)) {
			bad = fmt.Sprintf("message %d: %d bytes, not the ones sent (first 4: %x)", next, len(p), p[:min(4, len(p))])
		}
		next++
		if next == total {
			close(done)
		}
	}})
	a := startNode(t, fsm.Config{ID: "a"}, nil, Events{})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := a.Connect(ctx, b.Info())
	require.NoError(t, err)
	send := func(p []byte) { // retried while the 4 MiB ones fill the queue, as ErrQueueFull says
		for {
			err := a.Send("b", p)
			if !errors.Is(err, fsm.ErrQueueFull) {
				require.NoError(t, err)
				return
			}
			time.Sleep(time.Millisecond)
		}
	}
	for i := 0; i < total; i++ {
		switch {
		case i%10 == 9: // a producer's, through its lane or the step
			// No deadline: on a busy machine the whole run may take
			// longer than the Connect's.
			require.NoError(t, a.SendContext(context.Background(), "b", msg(i)))
		case i%10 >= 6: // a burst: no pause before it
			send(msg(i))
		default:
			time.Sleep(200 * time.Microsecond) // quiet: written inline
			send(msg(i))
		}
	}
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		mu.Lock()
		defer mu.Unlock()
		t.Fatalf("%d of %d messages arrived", next, total)
	}
	mu.Lock()
	defer mu.Unlock()
	require.Empty(t, bad)
	require.Greater(t, a.inlineWrites.Load(), uint64(0), "no inline write")
	t.Logf("%d inline writes", a.inlineWrites.Load())
}

// TestAnswerAfterReadGoesInline: a Send that follows a read on its
// connection (the answer of a request-response) is written inline however
// recently the connection was last written to, once per read: a round trip
// shorter than inlineQuiet (9.6 µs on the AMD EPYC VM) otherwise woke the
// writer goroutine for every answer, and a ping-pong ran at 0.83 of bare
// TCP's rate instead of 0.92-0.95 (PERFORMANCE.md, "Answers inline after a
// read"). Without a read in between the quiet still applies, so a burst of
// answers to one read costs one inline write, and the protocol's own writes
// keep their pacing.
func TestAnswerAfterReadGoesInline(t *testing.T) {
	if !inlineSupported {
		t.Skip("no inline writes on this platform")
	}
	c, _, _ := slowConn(t)
	n := c.n
	registered := func(kind inlineKind) bool {
		n.mu.Lock()
		defer n.mu.Unlock()
		c.wmu.Lock()
		defer c.wmu.Unlock()
		n.allowInline(maxInline, kind)
		defer n.noInline()
		ok := n.inlineFor(c)
		n.inline = n.inline[:0]
		return ok
	}
	read := func() { // what stepRead marks
		c.wmu.Lock()
		c.answering = true
		c.wmu.Unlock()
	}
	// A write the checks after it see as just made, however long the
	// machine takes between two statements: set to now, a loaded machine
	// (the race detector, two test binaries) let more than inlineQuiet pass
	// before the next check, which then found the connection quiet.
	justWritten := func() {
		c.wmu.Lock()
		c.lastWrite = time.Since(n.start) + time.Hour
		c.wmu.Unlock()
	}
	justWritten()
	require.False(t, registered(inlineSend), "a Send with no read since the last write, within inlineQuiet")
	read()
	require.False(t, registered(inlinePaced), "the protocol's own writes after a read keep their pacing")
	require.True(t, registered(inlineSend), "the answer to a read")
	justWritten()
	require.False(t, registered(inlineSend), "a second answer to the same read")
	read()
	require.True(t, registered(inlineSend), "the answer to the next read")
	time.Sleep(2 * inlineQuiet)
	require.True(t, registered(inlineSend), "a Send after inlineQuiet, read or not")
}
