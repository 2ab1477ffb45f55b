package masterless

import (
	"context"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/masterless-go/masterless/spec"
)

// The echo storms of issue 9 for a fixed time: every node of a full mesh
// sends to every other from a producer goroutine (SendContext) for the
// whole run while its Message callback answers every message to its sender
// (Send), with default options. They run for $MASTERLESS_STORM (the
// Makefile's sweep target sets 20s, without the race detector) and are
// skipped without it. Each checks steady-under-load, the simulator's
// invariant (spec.LoadChecker) on the wall clock: no session ends and no
// node's callback goes a second without a message while some are due to it;
// and that every message is echoed exactly once, in order.
//
// The simulator checks each pair (source, destination) against a bound that
// includes the time to drain the delivery queue (sim.Knobs.StallBound).
// Here the longest stall of a pair is logged, not bounded by a second: with
// default options a node's queue may hold a window (1 MiB) from each peer,
// which with 7 peers and 32-byte messages is 115,000 messages, and one
// pair's next message waits in that FIFO behind the others' (seconds at the
// callback rates of a loaded 2-core machine).
func TestEchoStormFor(t *testing.T) {
	d := os.Getenv("MASTERLESS_STORM")
	if d == "" {
		t.Skip("set MASTERLESS_STORM to a duration (make sweep runs 20s)")
	}
	dur, err := time.ParseDuration(d)
	require.NoError(t, err, "MASTERLESS_STORM")
	for _, c := range []struct{ nodes, size int }{{2, 64 << 10}, {2, 32}, {8, 64 << 10}, {8, 32}} {
		t.Run(fmt.Sprintf("%dnodes-%dB", c.nodes, c.size), func(t *testing.T) {
			// One after the other by default: run at once on 2 cores, the
			// storms saw stalls of a second (the process starved, not the
			// protocol). Answers refused were the other finding, also in
			// the 8-node 32-byte storm alone: producers toward a slow user
			// did not wait for its answers to drain; they now wait for the
			// peer's backlog flag (fsm/stream.go, "Room for answers";
			// sim.TestLoadAnswersHaveRoomSmallMessages), and every refused
			// answer fails the storm.
			if os.Getenv("MASTERLESS_STORM_PARALLEL") != "" {
				t.Parallel()
			}
			stormFor(t, c.nodes, c.size, dur)
		})
	}
}

// stormChecker is spec.LoadChecker behind a lock, on the wall clock less
// the time the test process itself could not run: c by receiver, the
// asserted one, and pairs per pair, for the log.
//
// Eight nodes share this one process (and its collector), and the machine
// may be shared too (make test beside other work on 2 cores): a stall of
// the process is not a stall of the protocol. A goroutine that wakes every
// 5 ms measures how late it wakes; lateness past 20 ms is counted as a
// pause of the process and taken off the checker's clock, and the pauses
// are logged.
type stormChecker struct {
	mu     sync.Mutex
	start  time.Time
	paused time.Duration // the process's pauses so far
	worst  time.Duration // the longest
	c      spec.LoadChecker
	pairs  spec.LoadChecker
}

func (s *stormChecker) now() time.Duration { return time.Since(s.start) - s.paused }

// watchPauses measures the process's pauses until done is closed.
func (s *stormChecker) watchPauses(done <-chan struct{}) {
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
			s.mu.Lock()
			s.paused += late
			s.worst = max(s.worst, late)
			s.mu.Unlock()
		}
	}
}

func (s *stormChecker) accepted(src, dst string) {
	s.mu.Lock()
	now := s.now()
	s.c.Accepted(now, src, dst)
	s.pairs.Accepted(now, src, dst)
	s.mu.Unlock()
}

func (s *stormChecker) handed(src, dst string) {
	s.mu.Lock()
	now := s.now()
	s.c.Handed(now, src, dst)
	s.pairs.Handed(now, src, dst)
	s.mu.Unlock()
}

func (s *stormChecker) ended(node, peer string, err error) {
	s.mu.Lock()
	s.c.SessionEnded(s.now(), node, peer, err)
	s.mu.Unlock()
}

// check returns the by-receiver check's verdict and what is outstanding.
func (s *stormChecker) check() (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	_ = spec.CheckLoadProgress(&s.pairs, now) // for its longest stall
	return s.c.Outstanding(), spec.CheckLoadProgress(&s.c, now)
}

// stalls reports the longest stalls, by receiver and by pair.
func (s *stormChecker) stalls() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, rw := s.c.MaxStall()
	p, pw := s.pairs.MaxStall()
	return fmt.Sprintf("longest stall of a receiver %v (%s), of a pair %v (%s); the process paused %v in all, %v at most (not counted)",
		r.Round(time.Millisecond), rw, p.Round(time.Millisecond), pw, s.paused.Round(time.Millisecond), s.worst.Round(time.Millisecond))
}

func stormFor(t *testing.T, n, size int, dur time.Duration) {
	chk := &stormChecker{start: time.Now(), c: spec.LoadChecker{Bound: time.Second, ByReceiver: true}, pairs: spec.LoadChecker{Bound: waitFor}}
	var active atomic.Bool // the mesh is up: from now on a session that ends is a failure
	servers := make([]*Server, n)
	ledgers := make([]*ledger, n)
	firstRefusal := make([]error, n)
	for i := range servers {
		l := newLedger()
		ledgers[i] = l
		id := fmt.Sprintf("n%02d", i)
		var err error
		servers[i], err = New(id, WithLogger(newLogger(&logSink{})), WithEvents(Events{
			Message: func(s *Server, from string, p []byte) {
				chk.handed(from, s.ID())
				l.see(p)
				if kind, _, seq := parseMsg(p); kind == 'o' {
					chk.accepted(s.ID(), from)
					if err := s.SendErr(from, msg('r', s.ID(), seq, len(p))); err != nil {
						if l.refused.Add(1) == 1 {
							firstRefusal[i] = err // only this callback writes it; read after Close
						}
					}
				}
			},
			Disconnect: func(s *Server, peer string, err error) {
				if active.Load() {
					chk.ended(s.ID(), peer, err)
				}
			},
		}))
		require.NoError(t, err)
		t.Cleanup(func() { servers[i].Close() })
	}
	connectFullMesh(t, servers)
	active.Store(true)
	chk.mu.Lock()
	chk.start = time.Now()
	chk.mu.Unlock()
	watchDone := make(chan struct{})
	defer close(watchDone)
	go chk.watchPauses(watchDone)
	stop := time.Now().Add(dur)
	sent := make([][]atomic.Uint64, n) // sent[i][j]: originals i sent j
	var wg sync.WaitGroup
	for i, s := range servers {
		sent[i] = make([]atomic.Uint64, n)
		for j, o := range servers {
			if i == j {
				continue
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				// One context for the whole run (ctxT registers a cleanup
				// per call: one per message would hold gigabytes).
				ctx, cancel := context.WithTimeout(context.Background(), dur+waitFor)
				defer cancel()
				for seq := uint64(1); time.Now().Before(stop); seq++ {
					chk.accepted(s.ID(), o.ID())
					if err := s.SendContext(ctx, o.ID(), msg('o', s.ID(), seq, size)); err != nil {
						t.Errorf("%s to %s #%d: %v", s.ID(), o.ID(), seq, err)
						return
					}
					sent[i][j].Store(seq)
				}
			}()
		}
	}
	// Check as it goes, so that a stall is reported when it happens.
	var failed error
	for failed == nil && time.Now().Before(stop) {
		time.Sleep(100 * time.Millisecond)
		_, failed = chk.check()
	}
	wg.Wait()
	drained := waitUntil(func() bool {
		out, err := chk.check()
		return err != nil || out == 0
	})
	out, err := chk.check()
	var total int64
	for i, l := range ledgers {
		total += l.count.Load()
		if k := l.refused.Load(); k > 0 {
			servers[i].Close() // its callbacks are done: firstRefusal[i] is written
			t.Errorf("%s: %d answers sent from the callback were refused (the others then see a gap); the first: %v", servers[i].ID(), k, firstRefusal[i])
		}
	}
	t.Logf("%d nodes, %d B: %d messages handed over in %v (originals and answers); %s", n, size, total, dur, chk.stalls())
	for _, l := range ledgers {
		l.check(t)
	}
	require.NoError(t, err)
	require.True(t, drained, "%d messages not handed over %v after the producers stopped", out, waitFor)
	// Every original was echoed exactly once: its sender got as many
	// answers, in order (ledger.check), as it sent.
	for i, s := range servers {
		for j, o := range servers {
			if i == j {
				continue
			}
			ledgers[i].mu.Lock()
			got := ledgers[i].next["r"+o.ID()]
			ledgers[i].mu.Unlock()
			require.Equal(t, sent[i][j].Load(), got, "%s sent %s originals; answers", s.ID(), o.ID())
		}
	}
}
