package fsm_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/masterless-go/masterless/fsm"
	"github.com/masterless-go/masterless/wire"
)

// windowRun streams A's messages of 1,000 bytes to node n (established with
// A on connection 1, as establishedWith leaves it): each round A sends all
// the credit n granted lets it, and n's user takes them all a gap later. It
// keeps the most credit seen past what the user consumed, and hands what
// CheckStreams says after every step to checked (by default: it must say
// nothing).
type windowRun struct {
	t                  *testing.T
	n                  *fsm.Node
	now                time.Duration
	received, consumed uint64 // costs: payload plus fsm.MessageCost a message
	limit              uint64 // the credit n granted: A may send up to it
	unconsumed         int    // messages
	maxAhead           uint64 // the most credit past consumed
	payload            []byte
	checked            func(error)
	stopped            bool // checked stopped the run
}

func newWindowRun(t *testing.T, cfg fsm.Config) *windowRun {
	n := establishedWith(t, cfg)
	r := &windowRun{t: t, n: n, limit: uint64(n.Config().Window), payload: make([]byte, 1000)}
	r.checked = func(err error) { require.NoError(t, err) }
	return r
}

// stream plays rounds rounds of A sending what the credit allows and the
// user taking it all, gap later.
func (r *windowRun) stream(rounds int, gap time.Duration) {
	r.t.Helper()
	cost := uint64(len(r.payload) + fsm.MessageCost)
	for range rounds {
		for r.received+cost <= r.limit && !r.stopped {
			require.NoError(r.t, r.n.Step(r.now, fsm.FrameReceived{Conn: 1, Frame: wire.Frame{Type: wire.Data, Payload: r.payload}}))
			r.received += cost
			r.unconsumed++
			r.ready()
		}
		if r.stopped {
			return
		}
		r.now += gap
		k := r.unconsumed
		require.NoError(r.t, r.n.Step(r.now, fsm.Consumed{Peer: "A", Incarnation: 1, Messages: k, Bytes: k * len(r.payload)}))
		r.consumed += uint64(k) * cost
		r.unconsumed = 0
		r.ready()
	}
}

// ready takes n's actions (each ACK's credit moves the limit) and hands
// CheckStreams' verdict to checked.
func (r *windowRun) ready() {
	r.t.Helper()
	for _, a := range r.n.Ready() {
		if a.Kind == fsm.ActWrite && a.Frame.Type == wire.Ack {
			r.limit = max(r.limit, r.received+a.Frame.Credit)
		}
	}
	r.maxAhead = max(r.maxAhead, r.limit-r.consumed)
	r.checked(r.n.CheckStreams())
}

// window returns the window n grants A now.
func (r *windowRun) window() int {
	k, ok := r.n.PeerCounters("A")
	require.True(r.t, ok)
	return k.Window
}

// A user that takes a fast stream as fast as it comes gets a window that
// grows to MaxWindow, and no more: the credit never goes past MaxWindow
// beyond what the user consumed (plus the message that may start within
// it).
func TestWindowGrowsForAUserThatKeepsUp(t *testing.T) {
	const w, most = 64 << 10, 512 << 10
	r := newWindowRun(t, fsm.Config{ID: "M", Incarnation: 1, Window: w, MaxWindow: most})
	r.stream(40, 100*time.Microsecond) // a window in well under windowSpan
	require.Equal(t, most, r.window())
	require.Greater(t, r.maxAhead, uint64(w), "the credit never went past the first window")
	require.LessOrEqual(t, r.maxAhead, uint64(most), "credit past MaxWindow")
	require.Equal(t, uint64(3), r.n.Counters().WindowsGrown, "64 KiB to 512 KiB is three doublings")
}

// A user that takes a window in more than a quarter of windowSpan (8 ms)
// keeps the window it started with: what may wait for a slow user stays
// small.
func TestWindowStaysForASlowUser(t *testing.T) {
	const w = 64 << 10
	r := newWindowRun(t, fsm.Config{ID: "M", Incarnation: 1, Window: w, MaxWindow: 8 * w})
	// Each round A sends a window and the user takes it 3 ms later: each
	// check finds a window taken in 3 ms, more than a quarter of windowSpan
	// and less than all of it.
	r.stream(40, 3*time.Millisecond)
	require.Equal(t, w, r.window(), "the window grew for a user that takes 3 ms a window")
	require.Zero(t, r.n.Counters().WindowsGrown)
	require.LessOrEqual(t, r.maxAhead, uint64(w+1032))
}

// A window that grew shrinks back, halving at each check, once its user
// takes more than windowSpan for a window.
func TestWindowShrinksWhenTheUserSlows(t *testing.T) {
	const w, most = 64 << 10, 512 << 10
	r := newWindowRun(t, fsm.Config{ID: "M", Incarnation: 1, Window: w, MaxWindow: most})
	r.stream(40, 100*time.Microsecond)
	require.Equal(t, most, r.window())
	r.stream(10, 20*time.Millisecond)
	require.Equal(t, w, r.window(), "the window of a user that slowed down stayed grown")
}

// A window set alone (Window without MaxWindow) stays as set: the credit
// never goes past it, however fast the user.
func TestWindowSetAloneStaysFixed(t *testing.T) {
	const w = 64 << 10
	r := newWindowRun(t, fsm.Config{ID: "M", Incarnation: 1, Window: w})
	require.Equal(t, w, r.n.Config().MaxWindow)
	r.stream(40, 100*time.Microsecond)
	require.Equal(t, w, r.window())
	require.LessOrEqual(t, r.maxAhead, uint64(w+1032))
}

// The defaults: Window 1 MiB growing to 4 MiB, and queue bounds that keep
// room for answers with the larger window; queue bounds set smaller lower
// the default MaxWindow to what they keep room for, never below Window;
// MaxWindow below Window is refused.
func TestWindowDefaults(t *testing.T) {
	c := mustConfig(t, fsm.Config{ID: "M"})
	require.Equal(t, fsm.DefaultWindow, c.Window)
	require.Equal(t, fsm.DefaultMaxWindow, c.MaxWindow)
	c = mustConfig(t, fsm.Config{ID: "M", QueueBytes: 16 << 20, QueueMessages: 1 << 18})
	require.Less(t, c.MaxWindow, fsm.DefaultMaxWindow, "the window grows past what the queue keeps room for")
	require.GreaterOrEqual(t, c.MaxWindow, c.Window)
	c = mustConfig(t, fsm.Config{ID: "M", QueueBytes: 1 << 20, QueueMessages: 100})
	require.Equal(t, c.Window, c.MaxWindow, "a small queue: a window that stays")
	_, err := fsm.New(fsm.Config{ID: "M", Window: 2 << 20, MaxWindow: 1 << 20})
	require.ErrorIs(t, err, fsm.ErrBadConfig)
}

func mustConfig(t *testing.T, cfg fsm.Config) fsm.Config {
	t.Helper()
	n, err := fsm.New(cfg)
	require.NoError(t, err)
	return n.Config()
}
