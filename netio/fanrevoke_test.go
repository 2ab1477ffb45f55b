package netio

import (
	"sync"
	"sync/atomic"
	"testing"

	"github.com/masterless-go/masterless/fsm"
	"github.com/masterless-go/masterless/wire"
)

// TestRevokedLaneJoinsNoOtherFan: a lane in fan f whose lease is revoked
// (leased) while a producer stages in another fan g of the same peer is
// not joined by g. leased lets go of the lane's lock to take it out of f
// (revokeFan); with its lease still on the lane then, g could join it
// (out of f, a lease, nothing waiting), and leased zeroed the lease after,
// leaving the lane in g: g went on staging frames for it, reporting them
// sent, that no writer would admit, neither delivered nor reported lost. A
// review found it; under the race detector (make test's race run, whose
// scheduling widens the window) this test failed 3 runs in 3 before
// leased dropped the lease first, and 20 runs without it passed.
func TestRevokedLaneJoinsNoOtherFan(t *testing.T) {
	payload := []byte("12345678")
	frame := wire.AppendData(nil, payload)
	hits, lostFrames := 0, 0
	for iter := 0; iter < 5000 && hits == 0; iter++ {
		c := &conn{} // idle false: kick wakes nothing
		mk := func(p string) *lane {
			return &lane{peer: p, gen: 7, msgs: 1000, cost: 1 << 30, maxPayload: 1000, c: c}
		}
		l, y, z := mk("x"), mk("y"), mk("z")
		f := newFan([]*lane{l, y})
		if r := f.stage(frame, len(payload)); r != fanStaged {
			t.Fatal("f did not stage")
		}
		// f's frame for l admitted (as its writer would), l stays in f.
		a, _ := l.takeFan(f)
		l.took = f
		_ = a
		l.admitted(f)
		// The writer renewed the lease meanwhile (leased's grant adds to
		// l.msgs while l is in f; f reserves it only when its room runs out).
		l.mu.Lock()
		l.msgs, l.cost = 500, 1<<20
		l.mu.Unlock()
		g := newFan([]*lane{l, z})
		n := &Runtime{lanesHeld: map[string]*lane{"x": l}}
		n.lanes.Store("x", l)
		var stop atomic.Bool
		var wg sync.WaitGroup
		var after atomic.Int64
		var leasedDone atomic.Bool
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !stop.Load() {
				if g.stage(frame, len(payload)) == fanStaged && leasedDone.Load() {
					after.Add(1)
				}
			}
		}()
		n.leased(&fsm.Action{Kind: fsm.ActLease, Peer: "x", Lease: fsm.Lease{Gen: 7}})
		leasedDone.Store(true)
		for range 200 {
			if g.stage(frame, len(payload)) == fanStaged {
				after.Add(1)
			}
		}
		stop.Store(true)
		wg.Wait()
		l.mu.Lock()
		joined := l.fan == g && l.gen == 0
		l.mu.Unlock()
		if joined {
			hits++
			lostFrames = int(after.Load())
			g.mu.Lock()
			s := g.slots[l.slot]
			t.Logf("iteration %d: revoked lane (gen 0, not in lanesHeld: %v) left in fan g, slot joined=%v, %d frames pending for it in g that no writer/admitPeer can reach; g.stage reported success %d times after leased returned; g.broken=%v",
				iter, n.lanesHeld["x"] == nil, s.joined, g.count-s.idx, lostFrames, g.broken)
			g.mu.Unlock()
		}
	}
	if hits > 0 {
		t.Errorf("a revoked lane joined another fan while leased took it out of its own")
	}
}
