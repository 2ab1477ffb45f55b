package masterless

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// Reliable sessions over real TCP (spec/PROTOCOL.md, 4.1): replies sent from
// the message callback never wedge two-way traffic, a slow consumer costs
// no session, and a cut, reset or blackholed connection loses, repeats and
// reorders nothing.

// msg is a test message: kind ('o' original, 'r' reply), sender, sequence
// number, padded to size.
func msg(kind byte, from string, seq uint64, size int) []byte {
	p := make([]byte, max(size, 10+len(from)))
	p[0] = kind
	binary.BigEndian.PutUint64(p[1:], seq)
	p[9] = byte(len(from))
	copy(p[10:], from)
	return p
}

func parseMsg(p []byte) (kind byte, from string, seq uint64) {
	return p[0], string(p[10 : 10+int(p[9])]), binary.BigEndian.Uint64(p[1:])
}

// ledger checks, per sender and kind, that messages arrive exactly once and
// in order, and notes when the last one arrived.
type ledger struct {
	mu      sync.Mutex
	next    map[string]uint64 // kind+sender -> next expected seq
	bad     []string
	last    time.Time
	maxGap  time.Duration // less the process's pauses meanwhile, with pause
	count   atomic.Int64
	refused atomic.Int64 // replies a callback's Send refused
	// pause, if set, measures the process's pauses (lastPaused: as of the
	// last message), which a gap does not count.
	pause      *pauseWatch
	lastPaused time.Duration
}

func newLedger() *ledger { return &ledger{next: map[string]uint64{}, last: time.Now()} }

func (l *ledger) see(p []byte) {
	kind, from, seq := parseMsg(p)
	l.mu.Lock()
	defer l.mu.Unlock()
	now := time.Now()
	var paused time.Duration
	if l.pause != nil {
		paused = l.pause.total()
	}
	l.maxGap = max(l.maxGap, now.Sub(l.last)-(paused-l.lastPaused))
	l.last, l.lastPaused = now, paused
	k := string(kind) + from
	if want := l.next[k] + 1; seq != want && len(l.bad) < 5 {
		l.bad = append(l.bad, fmt.Sprintf("%c from %s: got #%d, want #%d", kind, from, seq, want))
	}
	l.next[k] = seq
	l.count.Add(1)
}

// waitUntil polls cond until it holds or waitFor passes.
func waitUntil(cond func() bool) bool {
	deadline := time.Now().Add(waitFor)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(pollEvery)
	}
	return true
}

// gaps returns the ledgers' longest gaps.
func gaps(ls []*ledger) []time.Duration {
	out := make([]time.Duration, len(ls))
	for i, l := range ls {
		l.mu.Lock()
		out[i] = l.maxGap
		l.mu.Unlock()
	}
	return out
}

// reset starts the stall measurement now: the traffic starts.
func (l *ledger) reset() {
	l.mu.Lock()
	l.last, l.maxGap = time.Now(), 0
	if l.pause != nil {
		l.lastPaused = l.pause.total()
	}
	l.mu.Unlock()
}

func (l *ledger) check(t *testing.T) {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	require.Empty(t, l.bad, "messages lost, repeated or reordered")
}

// echoMesh starts n servers in a full mesh. Each sends msgs originals of
// size bytes to every other from a producer goroutine (SendContext), and its
// Message callback replies to every original with Send. It returns when
// every reply has come back, checking that no session ever dropped and that
// no node went a second without a message, less the pauses of the test
// process meanwhile (pauseWatch: under -race on a loaded machine, eight
// nodes in one process may not run for a while).
func echoMesh(t *testing.T, n, msgs, size int, opts ...Option) time.Duration {
	servers := make([]*Server, n)
	ledgers := make([]*ledger, n)
	var drops atomic.Int64
	var pause pauseWatch
	watchDone := make(chan struct{})
	defer close(watchDone)
	go pause.watch(watchDone)
	for i := range servers {
		l := newLedger()
		l.pause = &pause
		ledgers[i] = l
		var err error
		servers[i], err = New(fmt.Sprintf("n%02d", i), append([]Option{
			WithHeartbeat(testHeartbeat), WithPeerTimeout(testPeerTO), WithHandshakeTimeout(testHandshake),
			WithLogger(newLogger(&logSink{})),
			WithEvents(Events{
				Message: func(s *Server, from string, p []byte) {
					l.see(p)
					if kind, _, seq := parseMsg(p); kind == 'o' {
						if err := s.SendErr(from, msg('r', s.ID(), seq, len(p))); err != nil {
							l.refused.Add(1)
						}
					}
				},
				Disconnect: func(*Server, string, error) { drops.Add(1) },
			}),
		}, opts...)...)
		require.NoError(t, err)
		t.Cleanup(func() { servers[i].Close() })
	}
	connectFullMesh(t, servers)
	start := time.Now()
	for _, l := range ledgers {
		l.reset()
	}
	var wg sync.WaitGroup
	for i, s := range servers {
		for j, o := range servers {
			if i == j {
				continue
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				for seq := uint64(1); seq <= uint64(msgs); seq++ {
					if err := s.SendContext(ctxT(t), o.ID(), msg('o', s.ID(), seq, size)); err != nil {
						t.Errorf("%s to %s #%d: %v", s.ID(), o.ID(), seq, err)
						return
					}
				}
			}()
		}
	}
	wg.Wait()
	want := int64(2 * (n - 1) * msgs) // originals and replies
	for i, l := range ledgers {
		if !waitUntil(func() bool { return l.count.Load() == want || l.refused.Load() > 0 }) || l.refused.Load() > 0 {
			for _, s := range servers {
				t.Logf("%s: %+v", s.ID(), s.n.Stats())
			}
			for j, l := range ledgers {
				t.Logf("%s: %d messages, %d replies refused", servers[j].ID(), l.count.Load(), l.refused.Load())
			}
			t.Fatalf("%s got %d of %d messages", servers[i].ID(), l.count.Load(), want)
		}
	}
	took := time.Since(start)
	for i, l := range ledgers {
		l.check(t)
		require.Zero(t, l.refused.Load(), "a reply sent from the callback was refused")
		l.mu.Lock()
		gap := l.maxGap
		l.mu.Unlock()
		require.Less(t, gap, stallBound, "%s: delivery stalled for %v; %s", servers[i].ID(), gap, &pause)
	}
	t.Logf("longest gap between two messages to a node %v; %s", slices.Max(gaps(ledgers)).Round(time.Millisecond), &pause)
	require.Zero(t, drops.Load(), "a session dropped")
	return took
}

// stallBound is the longest a node may go without a delivery in echoMesh:
// issue 9's bound, one second. Under the race detector, which makes the
// nodes several times slower and runs beside the rest of make test's unit
// step, three: a loaded machine (load average 17) once took the 8-node
// mesh to 1.17 s there, with the process's pauses of over 20 ms taken off.
// The one-second bound itself is asserted without the detector: these tests
// under go test, and the 20-second storms of make test's sweep step
// (storm_test.go).
var stallBound = map[bool]time.Duration{false: time.Second, true: 3 * time.Second}[raceEnabled]

// The echo storm that wedged before credit: two servers, default options,
// replying to every message from the callback, with 64 KiB payloads.
func TestEchoStorm(t *testing.T) {
	took := echoMesh(t, 2, 400, 64<<10)
	t.Logf("2 nodes, 400 x 64 KiB each way, each echoed: %v", took)
}

func TestEchoStormSmallMessages(t *testing.T) {
	took := echoMesh(t, 2, 20000, 32)
	t.Logf("2 nodes, 20,000 x 32 B each way, each echoed: %v", took)
}

func TestEchoStormMesh8(t *testing.T) {
	took := echoMesh(t, 8, 50, 64<<10)
	t.Logf("8-node full mesh, 50 x 64 KiB to every peer, each echoed: %v", took)
	took = echoMesh(t, 8, 1000, 32)
	t.Logf("8-node full mesh, 1,000 x 32 B to every peer, each echoed: %v", took)
}

// Request/response under two-way load: producers send requests with
// SendContext while the callbacks reply to each; no reply is refused.
func TestRequestResponseUnderLoad(t *testing.T) {
	took := echoMesh(t, 2, 2000, 64<<10)
	t.Logf("2,000 x 64 KiB requests each way, each answered: %v", took)
}

// A consumer whose callback sleeps: its peer's Send is refused once the
// queue is full, SendContext waits (and gives up with its context), and
// heartbeats keep both sessions alive for as long as it lasts.
func TestSleepingConsumer(t *testing.T) {
	var drops atomic.Int64
	short := []Option{WithHeartbeat(shortHeartbeat), WithPeerTimeout(shortPeerTO),
		WithEvents(Events{Disconnect: func(*Server, string, error) { drops.Add(1) }})}
	a, _ := newServer(t, "a", append(short, WithSendQueue(64, 1<<20))...)
	b, _ := newServer(t, "b", append(short, WithWindow(64<<10), WithEvents(Events{
		Message:    func(*Server, string, []byte) { time.Sleep(20 * time.Millisecond) },
		Disconnect: func(*Server, string, error) { drops.Add(1) },
	}))...)
	_, err := a.Connect(ctxT(t), b.Info())
	require.NoError(t, err)
	eventually(t, "b sees a", func() bool { return len(b.Connections()) == 1 })

	p := make([]byte, 16<<10)
	refused := false
	for range 1000 {
		if err := a.SendErr("b", p); err != nil {
			require.ErrorIs(t, err, ErrQueueFull)
			refused = true
			break
		}
	}
	require.True(t, refused, "Send must refuse once the queue is full, not wait")
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	err = a.SendContext(ctx, "b", p)
	require.Error(t, err, "SendContext waits for room, and its context ends the wait")
	time.Sleep(4 * shortPeerTO) // several peer timeouts with b's callbacks busy all along
	require.Zero(t, drops.Load(), "a slow consumer cost a session")
	require.Equal(t, []string{"b"}, a.Connections())
	require.Equal(t, []string{"a"}, b.Connections())
}

// A connection cut, reset or blackholed under a session while 100k
// sequence-numbered messages flow both ways: every message arrives exactly
// once, in order.
func TestCutMidStream(t *testing.T) {
	const n = 100000
	short := []Option{WithHeartbeat(shortHeartbeat), WithPeerTimeout(shortPeerTO),
		WithReconnectBackoff(10*time.Millisecond, 100*time.Millisecond)}
	la, lb := newLedger(), newLedger()
	alog := &logSink{}
	// Each keeps the other at a proxy's address, and advertises its own
	// proxy, so that every connection between them, whoever dials and
	// whichever address a redial tries, goes through one the test can
	// break. (Advertising its real address, a redial that missed at the
	// proxy turned to it, and a session that bypassed the proxies made the
	// test fail now and then: "no new session after the blackhole".)
	pb, pa := newProxy(t, ""), newProxy(t, "")
	a, _ := newServer(t, "a", append(short, WithAdvertise(pa.info()), WithLogger(newLogger(alog)), WithEvents(Events{Message: func(_ *Server, _ string, p []byte) { la.see(p) }}))...)
	b, _ := newServer(t, "b", append(short, WithAdvertise(pb.info()), WithEvents(Events{Message: func(_ *Server, _ string, p []byte) { lb.see(p) }}))...)
	pa.retarget("tcp://" + a.n.Addr().String())
	pb.retarget("tcp://" + b.n.Addr().String())
	_, err := a.Connect(ctxT(t), pb.info())
	require.NoError(t, err)
	_, err = b.Connect(ctxT(t), pa.info())
	require.NoError(t, err)
	session := func() string {
		for _, p := range a.Stats().Peers {
			if p.LocalAddr != nil { // both ends: an accepted one shares the listener's address
				return p.LocalAddr.String() + " " + p.RemoteAddr.String()
			}
		}
		return ""
	}

	var wg sync.WaitGroup
	for _, pair := range [][2]*Server{{a, b}, {b, a}} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			from, to := pair[0], pair[1]
			for seq := uint64(1); seq <= n; seq++ {
				if err := from.SendContext(ctxT(t), to.ID(), msg('o', from.ID(), seq, 16)); err != nil {
					t.Errorf("%s #%d: %v", from.ID(), seq, err)
					return
				}
			}
		}()
	}
	faults := []struct {
		name string
		do   func()
	}{
		{"cut", func() { pa.cut(); pb.cut() }},
		{"reset", func() { pa.reset(); pb.reset() }},
		{"blackhole", func() { pa.blackhole(); pb.blackhole() }},
		{"cut", func() { pa.cut(); pb.cut() }},
	}
	for _, f := range faults {
		at := la.count.Load() + lb.count.Load()
		eventually(t, "traffic before the "+f.name, func() bool { return la.count.Load()+lb.count.Load() > at+5000 })
		before := session()
		f.do()
		t.Logf("%s at %d and %d messages delivered", f.name, la.count.Load(), lb.count.Load())
		if !waitUntil(func() bool { s := session(); return s != "" && s != before }) {
			t.Logf("a: %+v", a.n.Stats())
			t.Logf("b: %+v", b.n.Stats())
			t.Logf("a's log:\n%s", alog.String())
			t.Fatalf("no new session after the %s", f.name)
		}
	}
	wg.Wait()
	eventually(t, "every message", func() bool { return la.count.Load() == n && lb.count.Load() == n })
	la.check(t)
	lb.check(t)
}

// A peer restarted mid-stream: its sender is told which messages were lost
// (sent, never acknowledged), and the new process gets the rest exactly
// once, in order. A message is acknowledged once it is in the receiver's
// delivery queue, so the messages the old process had queued but not yet
// handed to its callback when it closed are gone without a report: they
// must be the ones right after the last it handed over, at most a window's
// worth.
func TestPeerRestartReportsLost(t *testing.T) {
	const size = 64
	var (
		mu      sync.Mutex
		got     = [2]map[uint64]int{{}, {}} // by the old and the new process
		lost    = map[uint64]bool{}
		lostErr error
	)
	onMsg := func(i int) func(*Server, string, []byte) {
		return func(_ *Server, _ string, p []byte) {
			_, _, seq := parseMsg(p)
			mu.Lock()
			got[i][seq]++
			mu.Unlock()
		}
	}
	a, _ := newServer(t, "a", WithReconnectBackoff(10*time.Millisecond, 100*time.Millisecond),
		WithEvents(Events{Lost: func(_ *Server, _ string, ps [][]byte, err error) {
			mu.Lock()
			defer mu.Unlock()
			lostErr = err
			for _, p := range ps {
				_, _, seq := parseMsg(p)
				lost[seq] = true
			}
		}}))
	b1, _ := newServer(t, "b", WithEvents(Events{Message: onMsg(0)}))
	port := b1.n.Addr().(*net.TCPAddr).Port
	_, err := a.Connect(ctxT(t), b1.Info())
	require.NoError(t, err)

	const n = 50000
	var sent atomic.Uint64
	done := make(chan struct{})
	go func() {
		defer close(done)
		for seq := uint64(1); seq <= n; seq++ {
			if err := a.SendContext(ctxT(t), "b", msg('o', "a", seq, size)); err != nil {
				t.Errorf("#%d: %v", seq, err)
				return
			}
			sent.Store(seq)
		}
	}()
	eventually(t, "traffic", func() bool { return sent.Load() > 10000 })
	require.NoError(t, b1.Close()) // the process ends
	newServer(t, "b", WithPort(port), WithEvents(Events{Message: onMsg(1)}))
	<-done
	eventually(t, "the new process gets the last message", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return got[1][n] == 1 || lost[n]
	})
	mu.Lock()
	defer mu.Unlock()
	var last0 uint64 // the last message the old process handed over
	for seq, k := range got[0] {
		require.Equal(t, 1, k, "#%d delivered %d times", seq, k)
		last0 = max(last0, seq)
	}
	var gone []uint64
	for seq := uint64(1); seq <= n; seq++ {
		k := got[0][seq] + got[1][seq]
		require.LessOrEqual(t, k, 1, "#%d delivered twice", seq)
		if k == 0 && !lost[seq] {
			gone = append(gone, seq)
		}
	}
	t.Logf("old process handed over up to #%d; %d reported lost; %d were in its queue when it closed", last0, len(lost), len(gone))
	for i, seq := range gone {
		require.Equal(t, last0+1+uint64(i), seq, "only the old process's queue may vanish, right after what it handed over")
	}
	require.LessOrEqual(t, len(gone), (4<<20)/(size+32)+1, "more than a window (grown to its default MaxWindow, 4 MiB, at most) vanished")
	if len(lost) > 0 {
		require.True(t, errors.Is(lostErr, ErrMessagesLost), "the Lost event's error: %v", lostErr)
	}
}
