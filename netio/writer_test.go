//go:build unix

package netio

import (
	"bytes"
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/masterless-go/masterless/fsm"
	"github.com/stretchr/testify/require"
)

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

// TestQuietSessionHasNoWriter: a session whose writes are all made inline
// (its handshake, heartbeats and their answers, acknowledgements, sends
// with pauses between them) never starts a writer goroutine at either end;
// a message larger than the socket takes at once starts the sender's,
// which writes the rest, and every message arrives whole and in order;
// idle again, that writer ends, and a quiet send after it goes inline; a
// Disconnect then ends the session at both ends. It fails when a write that
// could go inline wakes a writer instead (the writer-less states below),
// when a write the socket did not take is left without a writer (the large
// message never arrives), and when an idle writer stays (checked by hand,
// each).
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
	wait := func(what string) {
		select {
		case <-arrived:
		case <-time.After(10 * time.Second):
			t.Fatalf("%s did not arrive within 10s", what)
		}
	}
	small := [][]byte{[]byte("one"), []byte("two"), []byte("three")}
	for _, p := range small {
		time.Sleep(2 * time.Millisecond) // quiet: written inline
		require.NoError(t, a.Send("b", p))
		wait("a small message")
	}
	time.Sleep(150 * time.Millisecond) // heartbeats both ways
	require.Equal(t, []writerState{writerNone}, writerStates(a), "a's connection started a writer")
	require.Equal(t, []writerState{writerNone}, writerStates(b), "b's connection started a writer")
	require.Positive(t, a.inlineWrites.Load())
	require.Positive(t, b.inlineWrites.Load(), "b's acknowledgements and heartbeats are written inline")

	large := pattern(0, 4<<20) // more than a loopback socket takes at once
	require.NoError(t, a.Send("b", large))
	wait("the large message")
	require.Equal(t, []writerState{writerRunning}, writerStates(a), "the rest of the large message needs a's writer")
	mu.Lock()
	require.Len(t, got, len(small)+1)
	for i, p := range small {
		require.Equal(t, p, got[i])
	}
	require.True(t, bytes.Equal(large, got[len(small)]), "the large message arrived changed")
	mu.Unlock()

	// Idle again: the next heartbeat written inline past writerRetireAfter
	// ends the writer.
	deadline := time.Now().Add(10 * time.Second)
	for !slices.Equal(writerStates(a), []writerState{writerNone}) {
		require.True(t, time.Now().Before(deadline), "a's writer did not end within 10s of idling")
		time.Sleep(10 * time.Millisecond)
	}
	require.Positive(t, a.writersRetired.Load())
	time.Sleep(2 * time.Millisecond)
	require.NoError(t, a.Send("b", []byte("after")))
	wait("a message after the writer ended")
	require.Equal(t, []writerState{writerNone}, writerStates(a), "a quiet send after the writer ended started another")

	require.NoError(t, a.Disconnect("b"))
	for range 2 {
		select {
		case <-gone:
		case <-time.After(10 * time.Second):
			t.Fatal("the session did not end at both ends within 10s")
		}
	}
}

// TestWriterlessCloseHalfCloses: a connection without a writer that the
// layer closes gracefully flushes its goodbye inline and half-closes
// itself, with no writer started for it: the peer reads the BYE, then the
// FIN, and both ends forget the connection. It fails when the close waits
// for a writer that never starts (the peer sees no FIN; the reader never
// ends) or starts one it does not need.
func TestWriterlessCloseHalfCloses(t *testing.T) {
	cfg := fsm.Config{ID: "b"}
	b := startNode(t, cfg, nil, Events{})
	a := startNode(t, fsm.Config{ID: "a"}, nil, Events{})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := a.Connect(ctx, b.Info())
	require.NoError(t, err)
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
