package masterless

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// The timeouts every test server gets (newServer). They are long: on a
// loaded machine under -race (a load average of 20 on 2 cores) a goroutine
// can wait seconds for a CPU, and a session must not time out, nor a
// handshake fail, only because the test ran slowly. A test that wants a
// timeout to fire sets a short one on the servers concerned (shortPeerTO,
// shortHandshake) and then asserts no more than the timeout promises.
const (
	testHeartbeat = time.Second
	testPeerTO    = 15 * time.Second
	testHandshake = 15 * time.Second
	testGrace     = 15 * time.Second

	shortHeartbeat = 200 * time.Millisecond
	shortPeerTO    = time.Second
	shortHandshake = 3 * time.Second

	waitFor   = 30 * time.Second // bound of every wait for something that must happen
	pollEvery = 5 * time.Millisecond
)

// recorder collects a server's events for assertions.
type recorder struct {
	mu       sync.Mutex
	connects []string
	discs    []discEvent
	msgs     map[string][][]byte
	lostMsgs map[string][][]byte
	onMsg    func(s *Server, from string, p []byte)
}

type discEvent struct {
	id  string
	err error
}

func newRecorder() *recorder {
	return &recorder{msgs: map[string][][]byte{}, lostMsgs: map[string][][]byte{}}
}

func (r *recorder) events() Events {
	return Events{
		Connect: func(_ *Server, id, _ string) {
			r.mu.Lock()
			r.connects = append(r.connects, id)
			r.mu.Unlock()
		},
		Disconnect: func(_ *Server, id string, err error) {
			r.mu.Lock()
			r.discs = append(r.discs, discEvent{id, err})
			r.mu.Unlock()
		},
		Lost: func(_ *Server, id string, payloads [][]byte, _ error) {
			r.mu.Lock()
			r.lostMsgs[id] = append(r.lostMsgs[id], payloads...)
			r.mu.Unlock()
		},
		Message: func(s *Server, from string, p []byte) {
			r.mu.Lock()
			r.msgs[from] = append(r.msgs[from], p)
			f := r.onMsg
			r.mu.Unlock()
			if f != nil {
				f(s, from, p)
			}
		},
	}
}

func (r *recorder) connectCount(id string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, c := range r.connects {
		if c == id {
			n++
		}
	}
	return n
}

func (r *recorder) disconnects(id string) []error {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []error
	for _, d := range r.discs {
		if d.id == id {
			out = append(out, d.err)
		}
	}
	return out
}

// sessionEnded reports whether the session with peer ended after it began: a
// Disconnect event, or a second Connect. A server sees no end of a session
// whose peer came back within its grace, when either end keeps the pair.
func (r *recorder) sessionEnded(peer string) bool {
	return len(r.disconnects(peer)) > 0 || r.connectCount(peer) > 1
}

// lost returns the messages to id handed back by the Lost event.
func (r *recorder) lost(id string) [][]byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([][]byte(nil), r.lostMsgs[id]...)
}

func (r *recorder) messages(from string) [][]byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([][]byte(nil), r.msgs[from]...)
}

// testLogger writes to the test log only when -v asks for it (MASTERLESS_LOG=1
// shows debug too), and can be captured for assertions on what was logged.
type logSink struct {
	mu  sync.Mutex
	buf strings.Builder
}

func (l *logSink) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if os.Getenv("MASTERLESS_LOG") != "" {
		os.Stderr.Write(p)
	}
	return l.buf.Write(p)
}

func (l *logSink) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

func newLogger(w io.Writer) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// newServer starts a server with test timeouts and closes it at cleanup.
func newServer(t testing.TB, id string, opts ...Option) (*Server, *recorder) {
	t.Helper()
	rec := newRecorder()
	base := []Option{
		WithHeartbeat(testHeartbeat), WithPeerTimeout(testPeerTO), WithHandshakeTimeout(testHandshake),
		WithReconnectBackoff(20*time.Millisecond, 200*time.Millisecond), WithReconnectGrace(testGrace),
		WithLogger(newLogger(&logSink{})), WithEvents(rec.events()),
	}
	s, err := New(id, append(base, opts...)...)
	require.NoError(t, err)
	t.Cleanup(func() { s.Close() })
	return s, rec
}

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	t.Cleanup(cancel)
	return ctx
}

// eventually polls cond until it holds or the generous deadline passes.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	eventuallyWithin(t, waitFor, what, cond)
}

// eventuallyWithin polls cond until it holds or d passes.
func eventuallyWithin(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(pollEvery)
	}
}

// connectFullMesh has every server Connect to every later one and waits
// until each has a session with all the others.
func connectFullMesh(t testing.TB, servers []*Server) {
	t.Helper()
	for i := range servers {
		for j := i + 1; j < len(servers); j++ {
			_, err := servers[i].Connect(ctxT(t), servers[j].Info())
			require.NoError(t, err)
		}
	}
	for _, s := range servers {
		eventually(t, "the full mesh", func() bool { return len(s.Connections()) == len(servers)-1 })
	}
}

func sameSet(got []string, want ...string) bool {
	sort.Strings(want)
	if len(got) != len(want) {
		return false
	}
	for i := range got {
		if got[i] != want[i] {
			return false
		}
	}
	return true
}

// pauseWatch measures how long the test process could not run: a goroutine
// that wakes every 5 ms notes how late it wakes, and lateness past 20 ms
// counts as a pause. Tests that bound a stall on the wall clock take the
// pauses off it: on a loaded machine (make test beside other work on 2
// cores) a stall of the process is not a stall of the protocol.
type pauseWatch struct {
	paused atomic.Int64 // ns, in all
	worst  atomic.Int64 // ns, the longest
}

// watch measures pauses until done is closed.
func (p *pauseWatch) watch(done <-chan struct{}) {
	const tick, slack = 5 * time.Millisecond, 20 * time.Millisecond
	for {
		select {
		case <-done:
			return
		default:
		}
		t0 := time.Now()
		time.Sleep(tick)
		if late := time.Since(t0) - tick; late > slack {
			p.paused.Add(int64(late))
			if late > time.Duration(p.worst.Load()) {
				p.worst.Store(int64(late))
			}
		}
	}
}

// total returns the pauses so far.
func (p *pauseWatch) total() time.Duration { return time.Duration(p.paused.Load()) }

// since is the time since start less the pauses.
func (p *pauseWatch) since(start time.Time) time.Duration { return time.Since(start) - p.total() }

func (p *pauseWatch) String() string {
	return fmt.Sprintf("the process paused %v in all, %v at most (not counted)",
		p.total().Round(time.Millisecond), time.Duration(p.worst.Load()).Round(time.Millisecond))
}

// every runs f every d on a goroutine of its own until f fails or the
// returned stop is called; stop waits for the goroutine to end.
func every(d time.Duration, f func() error) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-done:
				return
			case <-time.After(d):
			}
			if f() != nil {
				return
			}
		}
	}()
	return func() { close(done); wg.Wait() }
}
