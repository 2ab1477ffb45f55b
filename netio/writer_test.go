//go:build unix

package netio

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/masterless-go/masterless/fsm"
	"github.com/stretchr/testify/require"
)

// writersEnd waits until every connection of the nodes has no writer: a
// handshake's writes come a round trip apart, so its second ones start
// the writer, which ends once it has idled for writerRetireAfter.
func writersEnd(t *testing.T, nodes ...*Runtime) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for _, n := range nodes {
		for slices.ContainsFunc(writerStates(n), func(w writerState) bool { return w != writerNone }) {
			require.True(t, time.Now().Before(deadline), "a writer did not end within 10s of idling")
			time.Sleep(10 * time.Millisecond)
		}
	}
}

// writerStates returns the writer state of every connection n holds.
func writerStates(n *Runtime) []writerState {
	n.mu.Lock()
	defer n.mu.Unlock()
	var ws []writerState
	for _, c := range n.conns {
		c.wmu.Lock()
		ws = append(ws, c.writer)
		c.wmu.Unlock()
	}
	return ws
}

// TestQuietSessionHasNoWriter: the first answer of an accepted connection
// (the reader's preamble, HELLO and WELCOME) is written inline; once the
// writers the rest of the handshake started have ended, an idle session's
// heartbeats start no writer goroutine at either end; sends with pauses
// between them are written inline; a message larger than the socket takes
// at once starts the sender's writer, which writes the rest, and every
// message arrives whole and in order; idle again, that writer ends, and a
// quiet send after it goes inline; a Disconnect then ends the session at
// both ends. It fails when the reader's writes are not made inline (the
// count of b's inline writes), when the writes of a tick are not, when an
// idle writer stays, and when inline writes fail once the writer's write
// deadline has passed (RawConn.Write: all three, the writers never end)
// (checked by hand, each); and when a write the socket did not take is
// left without a writer (the large message never arrives).
func TestQuietSessionHasNoWriter(t *testing.T) {
	var mu sync.Mutex
	var got [][]byte
	arrived := make(chan struct{}, 16)
	gone := make(chan struct{}, 2)
	beat := fsm.Config{HeartbeatInterval: 20 * time.Millisecond, PeerTimeout: time.Second}
	cfgB := beat
	cfgB.ID = "b"
	b := startNode(t, cfgB, nil, Events{
		Message: func(_ string, p []byte) {
			mu.Lock()
			got = append(got, bytes.Clone(p))
			mu.Unlock()
			arrived <- struct{}{}
		},
		Disconnected: func(string, error) { gone <- struct{}{} },
	})
	cfgA := beat
	cfgA.ID = "a"
	a := startNode(t, cfgA, nil, Events{Disconnected: func(string, error) { gone <- struct{}{} }})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := a.Connect(ctx, b.Info())
	require.NoError(t, err)
	require.Positive(t, b.inlineWrites.Load(), "b's reader did not write its first answer inline")
	writersEnd(t, a, b)
	time.Sleep(150 * time.Millisecond) // heartbeats both ways, nothing else
	require.Equal(t, []writerState{writerNone}, writerStates(a), "a's idle connection started a writer")
	require.Equal(t, []writerState{writerNone}, writerStates(b), "b's idle connection started a writer")
	retired := a.writersRetired.Load()

	wait := func(what string) {
		select {
		case <-arrived:
		case <-time.After(10 * time.Second):
			t.Fatalf("%s did not arrive within 10s", what)
		}
	}
	var small [][]byte
	for i := range 20 {
		small = append(small, fmt.Appendf(nil, "small %d", i))
	}
	inline := a.inlineWrites.Load()
	for _, p := range small {
		time.Sleep(2 * time.Millisecond) // quiet: written inline
		require.NoError(t, a.Send("b", p))
		wait("a small message")
	}
	// A heartbeat may come within inlineQuiet before a send: nearly all.
	require.GreaterOrEqual(t, a.inlineWrites.Load()-inline, uint64(len(small)-3), "quiet sends were not written inline")

	// More than a loopback socket takes at once: the rest needs a writer.
	// Counted, not looked at once the message is in: on a busy machine its
	// delivery can take past writerRetireAfter, and a heartbeat then ends
	// the writer before the look (make test, 2026-12-03).
	// (A writer one of the small sends started may still run: then that
	// one writes the rest.)
	running := slices.Equal(writerStates(a), []writerState{writerRunning})
	started := a.writersStarted.Load()
	large := pattern(0, 4<<20)
	require.NoError(t, a.Send("b", large))
	wait("the large message")
	require.True(t, running || a.writersStarted.Load() > started, "the rest of the large message needs a's writer")
	mu.Lock()
	require.Len(t, got, len(small)+1)
	for i, p := range small {
		require.Equal(t, p, got[i])
	}
	require.True(t, bytes.Equal(large, got[len(small)]), "the large message arrived changed")
	mu.Unlock()

	// Idle again: the next heartbeat written inline past writerRetireAfter
	// ends the writer.
	writersEnd(t, a)
	require.Greater(t, a.writersRetired.Load(), retired)
	time.Sleep(2 * time.Millisecond)
	inline = a.inlineWrites.Load()
	require.NoError(t, a.Send("b", []byte("after")))
	wait("a message after the writer ended")
	require.Greater(t, a.inlineWrites.Load(), inline, "a quiet send after the writer ended was not written inline")

	require.NoError(t, a.Disconnect("b"))
	for range 2 {
		select {
		case <-gone:
		case <-time.After(10 * time.Second):
			t.Fatal("the session did not end at both ends within 10s")
		}
	}
}

// TestWriterlessCloseHalfCloses: a connection without a writer (its
// handshake's has ended) that the layer closes gracefully flushes its
// goodbye inline and half-closes itself, with no writer started for it:
// the peer reads the BYE, then the FIN, and both ends forget the
// connection. It fails when the close waits
// for a writer that never starts (the peer sees no FIN; the reader never
// ends) or starts one it does not need.
func TestWriterlessCloseHalfCloses(t *testing.T) {
	beat := fsm.Config{HeartbeatInterval: 20 * time.Millisecond, PeerTimeout: time.Second}
	cfgB, cfgA := beat, beat
	cfgB.ID, cfgA.ID = "b", "a"
	b := startNode(t, cfgB, nil, Events{})
	a := startNode(t, cfgA, nil, Events{})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := a.Connect(ctx, b.Info())
	require.NoError(t, err)
	writersEnd(t, a)
	a.mu.Lock()
	var c *conn
	for _, x := range a.conns {
		c = x
	}
	a.mu.Unlock()
	require.NotNil(t, c)
	require.NoError(t, a.Disconnect("b"))
	c.wmu.Lock()
	ws := c.writer
	c.wmu.Unlock()
	require.Equal(t, writerNever, ws, "the close started a writer, or did not half-close inline")
	deadline := time.Now().Add(10 * time.Second)
	for {
		a.mu.Lock()
		_, live := a.live[c]
		a.mu.Unlock()
		if !live {
			break
		}
		require.True(t, time.Now().Before(deadline), "the closed connection's reader did not end within 10s: no FIN came back")
		time.Sleep(time.Millisecond)
	}
	require.Empty(t, b.Sessions())
}

// TestReaderWaitsForInlineWrite: on a connection without a writer, the
// reader's end (waitWriter, before it closes the socket) waits for an
// inline write in its system call, here one during which the connection
// was aborted; the write's end lets it go, the bytes are dropped as the
// abort wants, and no writer starts afterwards. It fails when waitWriter
// does not wait for the write in flight (checked by hand): the reader would
// close the socket under it.
func TestReaderWaitsForInlineWrite(t *testing.T) {
	c, raw, _ := pendingInline(t)
	c.writer = writerNone
	c.out = pattern(0, 100)
	inWrite, release := make(chan struct{}), make(chan struct{})
	c.raw = meanwhile{RawConn: raw, during: func() {
		close(inWrite)
		<-release
	}}
	flushed := make(chan struct{})
	go func() {
		c.flushInline()
		close(flushed)
	}()
	<-inWrite
	c.abort()
	waited := make(chan struct{})
	go func() {
		c.waitWriter()
		close(waited)
	}()
	select {
	case <-waited:
		t.Fatal("the reader's wait ended while an inline write was in its system call")
	case <-time.After(50 * time.Millisecond):
	}
	close(release)
	endWithin(t, 10*time.Second, "the inline write or the reader's wait", flushed, waited)
	c.wmu.Lock()
	defer c.wmu.Unlock()
	require.Equal(t, writerNever, c.writer, "no writer may start once the reader has ended")
	require.Nil(t, c.out, "bytes kept after an abort")
	require.False(t, c.inflight)
}

// endWithin waits until every channel of chs is closed, and fails the test
// naming what when they are not within d.
func endWithin(t *testing.T, d time.Duration, what string, chs ...chan struct{}) {
	t.Helper()
	deadline := time.After(d)
	for _, ch := range chs {
		select {
		case <-ch:
		case <-deadline:
			t.Fatalf("%s did not end within %v", what, d)
		}
	}
}
