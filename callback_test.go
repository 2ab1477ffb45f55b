package masterless

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// Close, SendContext and SendManyContext called from an event callback: none
// of them may wait for the callbacks' own goroutine. TestMain's goleak check
// also holds every test here to leaving no goroutine behind.

// callbackServer is newServer with ev as its callbacks.
func callbackServer(t *testing.T, id string, ev Events, opts ...Option) *Server {
	t.Helper()
	base := []Option{
		WithHeartbeat(testHeartbeat), WithPeerTimeout(testPeerTO), WithHandshakeTimeout(testHandshake),
		WithLogger(newLogger(&logSink{})), WithEvents(ev),
	}
	s, err := New(id, append(base, opts...)...)
	require.NoError(t, err)
	t.Cleanup(func() { s.Close() })
	return s
}

// TestCloseFromMessageCallback: a Message callback closes its own server.
// Close returns while the callback runs, the server is closed for every
// method, its peer sees the session end, and no event follows.
func TestCloseFromMessageCallback(t *testing.T) {
	closed := make(chan error, 1)
	var after atomic.Int32 // events delivered after Close returned
	var done atomic.Bool
	note := func() {
		if done.Load() {
			after.Add(1)
		}
	}
	a := callbackServer(t, "a", Events{
		Message: func(s *Server, from string, p []byte) {
			note()
			if string(p) == "close" && !done.Load() {
				err := s.Close()
				done.Store(true)
				closed <- err
			}
		},
		Disconnect: func(*Server, string, error) { note() },
		Lost:       func(*Server, string, [][]byte, error) { note() },
	})
	b, _ := newServer(t, "b")
	_, err := b.Connect(ctxT(t), a.Info())
	require.NoError(t, err)
	require.True(t, b.Send("a", []byte("close")))
	for range 50 { // more behind it, which the closed server must not deliver
		b.Send("a", []byte("more"))
	}
	select {
	case err := <-closed:
		require.NoError(t, err)
	case <-time.After(waitFor):
		t.Fatal("Close called from a Message callback did not return")
	}
	require.ErrorIs(t, a.SendErr("b", []byte("x")), ErrClosed)
	require.Empty(t, a.Connections())
	require.NoError(t, a.Close(), "a second Close, outside the callback")
	eventually(t, "b to see the session end", func() bool { return len(b.Connections()) == 0 })
	require.Zero(t, after.Load(), "events delivered after Close returned in a callback")
}

// TestCloseFromCallbackWhileClosing: another goroutine's Close waits for the
// running callback, and that callback calls Close too: both return.
func TestCloseFromCallbackWhileClosing(t *testing.T) {
	entered := make(chan struct{})
	release := make(chan struct{})
	inner := make(chan error, 1)
	a := callbackServer(t, "a", Events{
		Connect: func(s *Server, id, info string) {
			close(entered)
			<-release // the outer Close is under way meanwhile
			inner <- s.Close()
		},
	})
	b, _ := newServer(t, "b")
	_, err := b.Connect(ctxT(t), a.Info())
	require.NoError(t, err)
	<-entered
	outer := make(chan error, 1)
	go func() { outer <- a.Close() }()
	time.Sleep(50 * time.Millisecond) // the outer Close waits for the callback by now
	select {
	case <-outer:
		t.Fatal("Close returned while a callback was still running")
	default:
	}
	close(release)
	for _, ch := range []chan error{inner, outer} {
		select {
		case err := <-ch:
			require.NoError(t, err)
		case <-time.After(waitFor):
			t.Fatal("a Close did not return")
		}
	}
}

// TestSendContextFromCallbackDoesNotWait: toward a peer whose queue is full
// (its callbacks hold every message), SendContext and SendManyContext called
// from a callback return the refusal at once instead of waiting for room.
func TestSendContextFromCallbackDoesNotWait(t *testing.T) {
	hold := make(chan struct{})
	slow := callbackServer(t, "slow", Events{
		Message: func(*Server, string, []byte) { <-hold }, // consumes nothing
	})
	t.Cleanup(func() { close(hold) }) // before slow's Close, which waits for the callback
	type result struct {
		one  error
		many error
		n    int
	}
	got := make(chan result, 1)
	a := callbackServer(t, "a", Events{
		Message: func(s *Server, from string, p []byte) {
			if from != "c" {
				return
			}
			var r result
			r.one = s.SendContext(context.Background(), "slow", []byte("from a callback"))
			r.n, r.many = s.SendManyContext(context.Background(), []string{"slow"}, []byte("from a callback"))
			got <- r
		},
	}, WithSendQueue(64, 64<<10))
	c, _ := newServer(t, "c")
	_, err := a.Connect(ctxT(t), slow.Info())
	require.NoError(t, err)
	_, err = c.Connect(ctxT(t), a.Info())
	require.NoError(t, err)
	// Fill a's queue toward slow: a producer's SendContext times out once
	// nothing more fits.
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		err := a.SendContext(ctx, "slow", make([]byte, 1024))
		cancel()
		if err != nil {
			require.ErrorIs(t, err, context.DeadlineExceeded)
			break
		}
	}
	require.True(t, c.Send("a", []byte("go")))
	select {
	case r := <-got:
		require.ErrorIs(t, r.one, ErrQueueFull)
		require.False(t, errors.Is(r.one, context.DeadlineExceeded))
		require.Zero(t, r.n)
		require.ErrorIs(t, r.many, ErrQueueFull)
	case <-time.After(waitFor):
		t.Fatal("SendContext from a callback waited for room")
	}
}

// TestCallbackCallsEveryMethod: a Message callback calls every other method
// of its server, Connect to a third node and Disconnect included, and each
// returns.
func TestCallbackCallsEveryMethod(t *testing.T) {
	c, _ := newServer(t, "c")
	done := make(chan []string, 1)
	a := callbackServer(t, "a", Events{
		Message: func(s *Server, from string, p []byte) {
			if string(p) != "go" {
				return
			}
			var got []string
			step := func(name string, err error) {
				if err != nil {
					got = append(got, name+": "+err.Error())
				}
			}
			ctx, cancel := context.WithTimeout(context.Background(), waitFor)
			defer cancel()
			id, err := s.Connect(ctx, c.Info())
			step("Connect", err)
			step("SendErr", s.SendErr(id, []byte("hi")))
			step("SendContext", s.SendContext(ctx, id, []byte("hi")))
			_, err = s.SendManyContext(ctx, []string{id, from}, []byte("hi"))
			step("SendManyContext", err)
			if s.SendMany([]string{id}, []byte("hi")) != 1 {
				got = append(got, "SendMany: refused")
			}
			step("SendJSON", s.SendJSON(id, map[string]int{"n": 1}))
			_, err = s.SendManyJSON([]string{id}, map[string]int{"n": 2})
			step("SendManyJSON", err)
			step("Keep", s.Keep(id, false))
			if s.IsKept(id) {
				got = append(got, "IsKept: still kept")
			}
			_ = s.Connections()
			_ = s.Members()
			_ = s.Stats()
			_ = s.String()
			step("Disconnect", s.Disconnect(id))
			step("StopConnecting", s.StopConnecting("tcp://127.0.0.1:1"))
			done <- got
		},
	})
	b, _ := newServer(t, "b")
	_, err := b.Connect(ctxT(t), a.Info())
	require.NoError(t, err)
	require.True(t, b.Send("a", []byte("go")))
	select {
	case got := <-done:
		for _, g := range got {
			t.Error(g)
		}
	case <-time.After(2 * waitFor):
		t.Fatal("a callback calling the server's methods did not finish")
	}
}
