package netio

import (
	"context"
	"errors"
	"log/slog"
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
	var listening string
	n, err := Start(Config{FSM: fsm.Config{ID: "x"}, Logger: quiet(), Events: Events{Listening: func(info string) { listening = info }}})
	require.NoError(t, err)
	require.Equal(t, "tcp://"+n.Addr().String(), n.Info())
	require.NotZero(t, n.Incarnation())
	require.NoError(t, n.Close())
	require.NoError(t, n.Close())
	_ = listening // delivered or dropped: Close may win the race
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

func TestConnectCancelled(t *testing.T) {
	a, err := Start(Config{FSM: fsm.Config{ID: "a"}, Logger: quiet()})
	require.NoError(t, err)
	defer a.Close()
	// A context cancelled before the handshake ends the wait with its error.
	b, err := Start(Config{FSM: fsm.Config{ID: "b", HandshakeTimeout: 10 * time.Second}, Logger: quiet()})
	require.NoError(t, err)
	defer b.Close()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = a.Connect(ctx, b.Info())
	if err != nil {
		require.True(t, errors.Is(err, context.Canceled), "got %v", err)
	}
}
