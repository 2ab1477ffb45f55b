package sim

import (
	"maps"
	"slices"
	"time"
)

// Stalled readers (Knobs.LateReads). A process whose goroutines wait for
// CPU can run its timer on time while the goroutines that read its sockets
// wait: the silence its sessions then show is its own, and netio says how
// late its reading is in each Tick (Tick.Lag, measured by its lag probe,
// netio/lagprobe.go), which fsm counts as it counts a late Tick (the rule
// for a node's own pause, spec/PROTOCOL.md 4). Without this, no simulated
// Tick ever carried a Lag, and that input of the state machine ran only in
// its unit tests.
//
// The model: in the safety phase, at a Tick of a node whose readers run,
// they stall with probability one quarter, for up to Knobs.LateReads.
// Meanwhile the bytes and FINs that reach the node wait in its receive
// buffers (a reset does not), and each Tick carries the time since the
// stall began;
// when it ends, every connection of the node reads what waited, in order,
// in connection order. Writes, dials and accepts go on as usual.

// stalled reports whether n's readers are stalled now.
func (w *World) stalled(n *process) bool { return w.now < n.stallUntil }

// tickLag is the Lag of the Tick n takes now: how long its readers have
// stalled, or 0. A Tick of a node whose readers run may start a stall.
func (w *World) tickLag(n *process) time.Duration {
	if w.stalled(n) {
		return w.now - n.stallFrom
	}
	if w.k.LateReads > 0 && w.phase == PhaseSafety && w.c.Intn(4) == 0 {
		n.stallFrom, n.stallUntil = w.now, w.now+between(w.c, time.Millisecond, w.k.LateReads)
		w.stats.ReadStalls++
		w.schedule(event{at: n.stallUntil, kind: evReadsResume, node: n.idx, inc: n.inc})
	}
	return 0
}

// readsResume ends a stall of a node's readers: each of its connections
// reads what waited.
func (w *World) readsResume(ev *event) {
	n := w.nodes[ev.node]
	if !n.alive || n.inc != ev.inc || w.stalled(n) {
		return
	}
	for _, id := range slices.Sorted(maps.Keys(n.conns)) {
		if c := n.conns[id]; c != nil {
			w.readEnd(c, int(id%2))
		}
	}
}
