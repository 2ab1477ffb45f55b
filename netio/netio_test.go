package netio

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/masterless-go/masterless/fsm"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestParseAddr(t *testing.T) {
	for addr, want := range map[string]string{
		"tcp://127.0.0.1:80": "127.0.0.1:80",
		"tcp://localhost:1":  "localhost:1",
		"tcp://[::1]:9":      "[::1]:9",
	} {
		got, err := ParseAddr(addr)
		require.NoError(t, err, addr)
		require.Equal(t, want, got)
	}
	for _, bad := range []string{"", "127.0.0.1:80", "udp://h:1", "tcp://h", "tcp://h:", "tcp://h:1/x", "tcp://u@h:1"} {
		_, err := ParseAddr(bad)
		require.ErrorIs(t, err, ErrBadAddress, bad)
	}
}

func quiet() *slog.Logger { return slog.New(slog.DiscardHandler) }

func TestStartCloseLeavesNothing(t *testing.T) {
	listening := make(chan string, 1)
	n, err := Start(Config{FSM: fsm.Config{ID: "x"}, Logger: quiet(), Events: Events{Listening: func(info string) { listening <- info }}})
	require.NoError(t, err)
	require.Equal(t, "tcp://"+n.Addr().String(), n.Info())
	require.NotZero(t, n.Incarnation())
	select {
	case info := <-listening:
		require.Equal(t, n.Info(), info, "Listening reports the address peers dial")
	case <-time.After(30 * time.Second):
		t.Fatal("no Listening event")
	}
	require.NoError(t, n.Close())
	require.NoError(t, n.Close())
	require.ErrorIs(t, n.Send("y", nil), fsm.ErrClosed)
	_, err = n.Connect(context.Background(), "tcp://127.0.0.1:1")
	require.ErrorIs(t, err, fsm.ErrClosed)
	require.ErrorIs(t, n.Disconnect("y"), fsm.ErrClosed)
}

func TestStartRejectsBadConfig(t *testing.T) {
	_, err := Start(Config{FSM: fsm.Config{ID: ""}, Logger: quiet()})
	require.ErrorIs(t, err, fsm.ErrBadConfig)
	_, err = Start(Config{FSM: fsm.Config{ID: "x"}, Advertise: "nonsense", Logger: quiet()})
	require.ErrorIs(t, err, ErrBadAddress)
	_, err = Start(Config{FSM: fsm.Config{ID: "x"}, Host: "256.0.0.1", Logger: quiet()})
	require.Error(t, err)
}

// silentListener accepts TCP connections and never says a word, so a
// handshake with it cannot finish before the handshake timeout.
func silentListener(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	done := make(chan struct{})
	go func() {
		defer close(done)
		var conns []net.Conn
		defer func() {
			for _, c := range conns {
				c.Close()
			}
		}()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns = append(conns, c)
		}
	}()
	t.Cleanup(func() { ln.Close(); <-done })
	return "tcp://" + ln.Addr().String()
}

// TestConnectCancelled: a Connect whose context ends before the handshake
// can finish returns the context's error, well before the handshake timeout,
// and establishes no session.
func TestConnectCancelled(t *testing.T) {
	a, err := Start(Config{FSM: fsm.Config{ID: "a", HandshakeTimeout: time.Minute}, Logger: quiet()})
	require.NoError(t, err)
	defer a.Close()
	addr := silentListener(t)

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = a.Connect(ctx, addr)
	require.True(t, errors.Is(err, context.Canceled), "got %v", err)

	ctx, cancel = context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err = a.Connect(ctx, addr)
	require.True(t, errors.Is(err, context.DeadlineExceeded), "got %v", err)
	require.Less(t, time.Since(start), 30*time.Second, "the context, not the handshake timeout, ended the wait")
	require.Empty(t, a.Sessions())
}
