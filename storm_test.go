package masterless

import (
	"context"
	"errors"
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
// skipped without it; $MASTERLESS_STORM_CASE (say 8nodes-32B) runs one
// case. Each checks steady-under-load, the simulator's invariant
// (spec.LoadChecker) on the wall clock less the test process's pauses: no
// session ends; no node's callback goes a second without a message while
// some are due to it (counting a producer's message from the moment it
// calls SendContext); no pair (source, destination) goes a second without a
// message handed over while some it accepted are due and its receiver
// keeps handing over others' (stormChecker); and every message is echoed
// exactly once, in order.
//
// The pair bound failed here while the delivery queue was one FIFO: a node
// may hold a window (1 MiB, 16,384 messages of 32 bytes) from each of its 7
// peers, a peer's messages arrive in runs as its credit comes back, and
// each run waited behind all the others' (in the 8-node 32-byte storm 1.6
// to 2.1 s at load 9-10, dozens of pairs over a second in each run; 0.93 s
// at load 2, just within the bound). The queue now takes turns among the
// peers (link.Turns): 0.40-0.48 s at load 2.
//
// How long a producer waits in SendContext is logged, not bounded: it is
// flow control (the peer's backlog flag holding it until this node's user
// has taken in the answers queued for it, fsm/stream.go), and with 32-byte
// messages, where those answers may be a window or two taken in at a
// seventh of the callbacks' pace, it lasts seconds (1.5 s at load 1-2,
// 3.2-3.4 s at load 6-8; 1.8-1.9 s and 4.1-7.5 s while a producer kept two
// windows and also waited for its own user to catch up on the peer's
// messages).
func TestEchoStormFor(t *testing.T) {
	d := os.Getenv("MASTERLESS_STORM")
	if d == "" {
		t.Skip("set MASTERLESS_STORM to a duration (make test runs 12s, make test-full 20s)")
	}
	dur, err := time.ParseDuration(d)
	require.NoError(t, err, "MASTERLESS_STORM")
	only := os.Getenv("MASTERLESS_STORM_CASE")
	for _, c := range []struct{ nodes, size int }{{2, 64 << 10}, {2, 32}, {8, 64 << 10}, {8, 32}} {
		name := fmt.Sprintf("%dnodes-%dB", c.nodes, c.size)
		if only != "" && only != name {
			continue
		}
		t.Run(name, func(t *testing.T) {
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

// stormChecker is spec.LoadChecker on the wall clock less the time the
// test process itself could not run (pauseWatch): by receiver (recv) and by
// pair (pairs), both asserted. Each receiver's and each pair's checkers
// have a lock of their own: one lock for all, taken by every callback and
// producer of the eight nodes for every message, made the callbacks wait
// for the test (a goroutine dump during a stall found them there).
//
// The pair check runs on its receiver's clock of activity: the wall clock
// less the pauses, where a gap between two messages the receiver handed
// over counts for at most activeGap. A pair then fails when it waited for a
// second while its receiver kept handing over other messages (the fairness
// the pair bound is about); a time when the receiver handed over nothing at
// all, its dispatcher starved (a loaded machine on 2 cores: the pause
// watcher wakes in time but the process gets little CPU), is the receiver
// check's to judge. The pair's stall on the wall clock, and counting its
// producer's wait from the moment it calls SendContext (waits), are
// logged, as is each producer's longest wait in SendContext.
type stormChecker struct {
	start time.Time
	pause pauseWatch
	ids   map[string]int
	recv  []*stormShard   // by destination
	pairs [][]*stormShard // [source][destination]
}

// activeGap is the most a gap between two messages a receiver hands over
// counts on its clock of activity.
const activeGap = 200 * time.Millisecond

// stormShard is the checkers one lock guards: a receiver's (c, and its
// clock of activity) or a pair's (c on its receiver's clock of activity,
// wall and waits on the wall clock).
type stormShard struct {
	mu       sync.Mutex
	c        spec.LoadChecker
	wall     spec.LoadChecker
	waits    spec.LoadChecker
	count    spec.LoadChecker // on the receiver's count of messages handed over (1 ns each)
	prodWait time.Duration    // the longest a producer waited in SendContext
	prodAt   time.Duration
	// A receiver's clock of activity as of its last message handed over
	// (written by its dispatcher alone), and when that was.
	active, last atomic.Int64
	handed       atomic.Int64 // a receiver's: messages handed over
}

func newStormChecker(ids []string) *stormChecker {
	s := &stormChecker{start: time.Now(), ids: map[string]int{}}
	for i, id := range ids {
		s.ids[id] = i
		s.recv = append(s.recv, &stormShard{c: spec.LoadChecker{Bound: time.Second, ByReceiver: true}})
		row := make([]*stormShard, len(ids))
		for j := range row {
			row[j] = &stormShard{c: spec.LoadChecker{Bound: time.Second}, wall: spec.LoadChecker{Bound: waitFor}, waits: spec.LoadChecker{Bound: waitFor}, count: spec.LoadChecker{Bound: 1 << 40}}
		}
		s.pairs = append(s.pairs, row)
	}
	return s
}

func (s *stormChecker) now() time.Duration { return s.pause.since(s.start) }

// activeAt is receiver r's clock of activity at now.
func (r *stormShard) activeAt(now time.Duration) time.Duration {
	return time.Duration(r.active.Load()) + min(max(now-time.Duration(r.last.Load()), 0), activeGap)
}

func (s *stormChecker) shards(src, dst string) (r, p *stormShard) {
	return s.recv[s.ids[dst]], s.pairs[s.ids[src]][s.ids[dst]]
}

// accepted: src's callback is about to Send an answer to dst.
func (s *stormChecker) accepted(src, dst string) {
	r, p := s.shards(src, dst)
	now := s.now()
	r.accept(now, src, dst)
	p.mu.Lock()
	p.waits.Accepted(now, src, dst)
	p.acceptPair(r, now, src, dst)
	p.mu.Unlock()
}

// producing: src's producer calls SendContext toward dst; it returns its
// start for produced.
func (s *stormChecker) producing(src, dst string) time.Duration {
	r, p := s.shards(src, dst)
	now := s.now()
	r.accept(now, src, dst)
	p.mu.Lock()
	p.waits.Accepted(now, src, dst)
	p.mu.Unlock()
	return now
}

// produced: SendContext returned, the message was accepted (it may have
// been handed over already: spec.LoadChecker allows for that).
func (s *stormChecker) produced(src, dst string, began time.Duration) {
	r, p := s.shards(src, dst)
	now := s.now()
	p.mu.Lock()
	p.acceptPair(r, now, src, dst)
	if w := now - began; w > p.prodWait {
		p.prodWait, p.prodAt = w, now
	}
	p.mu.Unlock()
}

// accept records, on receiver shard r, a message from src accepted at now.
func (r *stormShard) accept(now time.Duration, src, dst string) {
	r.mu.Lock()
	r.c.Accepted(now, src, dst)
	r.mu.Unlock()
}

// acceptPair records, on pair shard p (its lock held), a message accepted
// at now, on the clocks of the pair's checkers: receiver r's activity, the
// wall clock, and r's count of messages handed over.
func (p *stormShard) acceptPair(r *stormShard, now time.Duration, src, dst string) {
	p.c.Accepted(r.activeAt(now), src, dst)
	p.wall.Accepted(now, src, dst)
	p.count.Accepted(time.Duration(r.handed.Load()), src, dst)
}

// handed: dst's callback was called with a message from src.
func (s *stormChecker) handed(src, dst string) {
	r, p := s.shards(src, dst)
	now := s.now()
	active := r.activeAt(now)
	r.active.Store(int64(active))
	r.last.Store(int64(now))
	k := r.handed.Add(1)
	r.mu.Lock()
	r.c.Handed(now, src, dst)
	r.mu.Unlock()
	p.mu.Lock()
	p.c.Handed(active, src, dst)
	p.wall.Handed(now, src, dst)
	p.waits.Handed(now, src, dst)
	p.count.Handed(time.Duration(k), src, dst)
	p.mu.Unlock()
}

func (s *stormChecker) ended(node, peer string, err error) {
	r := s.recv[s.ids[node]]
	r.mu.Lock()
	r.c.SessionEnded(s.now(), node, peer, err)
	r.mu.Unlock()
}

// check returns the checks' verdict and how many messages are outstanding.
func (s *stormChecker) check() (int, error) {
	now := s.now()
	out := 0
	var errs []error
	for _, r := range s.recv {
		r.mu.Lock()
		out += r.c.Outstanding()
		errs = append(errs, spec.CheckLoadProgress(&r.c, now))
		r.mu.Unlock()
	}
	for _, row := range s.pairs {
		for j, p := range row {
			p.mu.Lock()
			errs = append(errs, spec.CheckLoadProgress(&p.c, s.recv[j].activeAt(now)))
			_ = spec.CheckLoadProgress(&p.wall, now) // for their longest stalls
			_ = spec.CheckLoadProgress(&p.waits, now)
			p.mu.Unlock()
		}
	}
	return out, errors.Join(errs...)
}

// stallFigure is a longest stall and where.
type stallFigure struct {
	d     time.Duration
	where string
}

func (f *stallFigure) note(d time.Duration, where string) {
	if d > f.d {
		*f = stallFigure{d, where}
	}
}

func (f stallFigure) String() string {
	return fmt.Sprintf("%v (%s)", f.d.Round(time.Millisecond), f.where)
}

// stalls reports the longest stalls and waits.
func (s *stormChecker) stalls() string {
	var r, p, w, pw, pwall, pcount stallFigure
	for _, sh := range s.recv {
		sh.mu.Lock()
		r.note(sh.c.MaxStall())
		sh.mu.Unlock()
	}
	for i, row := range s.pairs {
		for j, sh := range row {
			sh.mu.Lock()
			p.note(sh.c.MaxStall())
			pwall.note(sh.wall.MaxStall())
			pcount.note(sh.count.MaxStall())
			w.note(sh.waits.MaxStall())
			pw.note(sh.prodWait, fmt.Sprintf("n%02d>n%02d at %v", i, j, sh.prodAt))
			sh.mu.Unlock()
		}
	}
	return fmt.Sprintf("longest stall of a receiver %v, of a pair %v on its receiver's clock of activity, %v on the wall clock, "+
		"%v counting its producer's wait, %d messages of others handed over meanwhile (%s); longest wait in SendContext %v; %s",
		r, p, pwall, w, int64(pcount.d), pcount.where, pw, &s.pause)
}

func stormFor(t *testing.T, n, size int, dur time.Duration) {
	var active atomic.Bool // the mesh is up: from now on a session that ends is a failure
	servers := make([]*Server, n)
	ledgers := make([]*ledger, n)
	firstRefusal := make([]error, n)
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("n%02d", i)
	}
	chk := newStormChecker(ids)
	for i := range servers {
		l := newLedger()
		ledgers[i] = l
		id := ids[i]
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
	chk.start = time.Now()
	watchDone := make(chan struct{})
	defer close(watchDone)
	go chk.pause.watch(watchDone)
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
					began := chk.producing(s.ID(), o.ID())
					if err := s.SendContext(ctx, o.ID(), msg('o', s.ID(), seq, size)); err != nil {
						t.Errorf("%s to %s #%d: %v", s.ID(), o.ID(), seq, err)
						return
					}
					chk.produced(s.ID(), o.ID(), began)
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
