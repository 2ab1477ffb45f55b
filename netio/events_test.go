package netio

import (
	"context"
	"testing"
	"time"

	"github.com/masterless-go/masterless/fsm"
	"github.com/stretchr/testify/require"
)

// TestEventsWithoutHandlerAreNotQueued: a node with no Listening,
// Connected or Disconnected handler queues none of those events, so its
// dispatcher takes nothing off its queue over sessions that begin and end
// (core.go, Notify); one that has the handlers gets them. It fails when
// such events are queued regardless (checked by hand: 1 chunk taken per
// event).
func TestEventsWithoutHandlerAreNotQueued(t *testing.T) {
	pops := func(n *Runtime) uint64 {
		n.disp.mu.Lock()
		defer n.disp.mu.Unlock()
		return n.disp.pops
	}
	got := make(chan string, 16)
	b := startNode(t, fsm.Config{ID: "b"}, nil, Events{})
	a := startNode(t, fsm.Config{ID: "a"}, nil, Events{
		Connected:    func(string, string) { got <- "connected" },
		Disconnected: func(string, error) { got <- "disconnected" },
	})
	for range 3 {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_, err := a.Connect(ctx, b.Info())
		cancel()
		require.NoError(t, err)
		nextEvent(t, got, "connected")
		require.NoError(t, a.Disconnect("b"))
		nextEvent(t, got, "disconnected")
		deadline := time.Now().Add(10 * time.Second)
		for len(b.Sessions()) > 0 {
			require.True(t, time.Now().Before(deadline), "b did not see the session end within 10s")
			time.Sleep(time.Millisecond)
		}
	}
	require.Zero(t, pops(b), "b has no handler, yet its dispatcher took events off its queue")
	require.Positive(t, pops(a))
}

// nextEvent waits for the next event on got and checks it is want.
func nextEvent(t *testing.T, got <-chan string, want string) {
	t.Helper()
	select {
	case e := <-got:
		require.Equal(t, want, e)
	case <-time.After(10 * time.Second):
		t.Fatalf("no %s event within 10s", want)
	}
}
