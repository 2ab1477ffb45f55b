package netio

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/masterless-go/masterless/fsm"
	"github.com/masterless-go/masterless/wire"
)

// TestLogLimiter: each kind of line may be logged burst times per window;
// the first one logged after a suppression carries the count, and drain
// reports what is still pending.
func TestLogLimiter(t *testing.T) {
	l := newLogLimiter(3, time.Second)
	t0 := time.Unix(1000, 0)
	a, b := logKind{"closing connection", "x"}, logKind{"closing connection", "y"}
	for i := range 3 {
		ok, n := l.allow(a, slog.LevelWarn, t0.Add(time.Duration(i)*time.Millisecond))
		require.True(t, ok, "line %d within the burst", i)
		require.Zero(t, n)
	}
	for i := range 5 {
		ok, _ := l.allow(a, slog.LevelWarn, t0.Add(100*time.Millisecond))
		require.False(t, ok, "line %d past the burst", i)
	}
	ok, _ := l.allow(b, slog.LevelInfo, t0.Add(100*time.Millisecond))
	require.True(t, ok, "another kind has its own burst")
	ok, n := l.allow(a, slog.LevelWarn, t0.Add(time.Second))
	require.True(t, ok, "a new window")
	require.Equal(t, 5, n, "the count of lines suppressed since the last one logged")
	ok, n = l.allow(a, slog.LevelWarn, t0.Add(time.Second+1))
	require.True(t, ok)
	require.Zero(t, n, "the count is reported once")
	l.allow(a, slog.LevelWarn, t0.Add(time.Second+2))
	l.allow(a, slog.LevelWarn, t0.Add(time.Second+3)) // suppressed
	l.allow(a, slog.LevelWarn, t0.Add(time.Second+4)) // suppressed
	require.Equal(t, []pending{{kind: a, level: slog.LevelWarn, suppressed: 2}}, l.drain())
	require.Empty(t, l.drain(), "drained counts are not reported twice")
}

// TestReasonClass: reasons that differ only in the connection, size or
// bytes they name are one kind of line; a reason wrapping no known
// sentinel is "other", so a peer cannot make the kinds grow.
func TestReasonClass(t *testing.T) {
	e1 := fmt.Errorf("%w: c12 in state hello after 5s", fsm.ErrHandshakeTimeout)
	e2 := fmt.Errorf("%w: c97 in state detect after 5s", fsm.ErrHandshakeTimeout)
	require.Equal(t, reasonClass(e1), reasonClass(e2))
	require.NotEqual(t, reasonClass(e1), reasonClass(fmt.Errorf("%w: %w", fsm.ErrProtocol, wire.ErrBadMagic)))
	require.Equal(t, reasonClass(fmt.Errorf("%w: %w", fsm.ErrProtocol, wire.ErrBadMagic)), wire.ErrBadMagic.Error(), "the most specific sentinel")
	require.Equal(t, "other", reasonClass(errors.New("something new 1")))
	require.Equal(t, "other", reasonClass(errors.New("something new 2")))
	require.Equal(t, "requested", reasonClass(nil))
}

// TestLogPeerSuppressesAndReports: through the Runtime's logger, a burst of
// identical peer errors logs logBurst lines, and Close reports how many it
// suppressed.
func TestLogPeerSuppressesAndReports(t *testing.T) {
	out := logged(t, func(n *Runtime, i int) {
		n.logPeer(slog.LevelWarn, "closing connection", fmt.Errorf("%w: %w: junk %d", fsm.ErrProtocol, wire.ErrBadMagic, i), "conn", i)
	})
	require.Equal(t, logBurst, strings.Count(out, "msg=\"closing connection\""), out)
	require.Contains(t, out, "closing connection (similar lines suppressed)")
	require.Contains(t, out, fmt.Sprintf("suppressed=%d", 1000-logBurst))
}

// TestLostMessagesLogIsLimited: "messages lost" is a line a peer can cause
// (leave with an answer unacknowledged, under a new id each time), so it
// goes through the limiter too: a thousand peers' reports log logBurst
// lines, and Close reports the rest.
func TestLostMessagesLogIsLimited(t *testing.T) {
	out := logged(t, func(n *Runtime, i int) {
		(*transport)(n).Notify(&fsm.Action{Kind: fsm.ActLost, Peer: fmt.Sprintf("p%d", i), Lost: [][]byte{{1}}, Err: fmt.Errorf("%w: p%d went away", fsm.ErrMessagesLost, i)})
	})
	require.Equal(t, logBurst, strings.Count(out, "msg=\"messages lost\""), out)
	require.Contains(t, out, fmt.Sprintf("suppressed=%d", 1000-logBurst))
}

// logged runs line 1,000 times, with i from 0, under the core lock of a
// Runtime that logs to a buffer, closes it, and returns what it logged.
func logged(t *testing.T, line func(n *Runtime, i int)) string {
	t.Helper()
	var buf bytes.Buffer
	n, err := Start(Config{FSM: fsm.Config{ID: "x"}, Logger: slog.New(slog.NewTextHandler(&buf, nil))})
	require.NoError(t, err)
	n.mu.Lock()
	for i := range 1000 {
		line(n, i)
	}
	n.settle()
	n.mu.Unlock()
	require.NoError(t, n.Close())
	return buf.String()
}
