package sim

import (
	"fmt"
	"time"

	"github.com/masterless-go/masterless/fsm"
)

// randomFault injects one fault of an enabled kind (safety phase only).
func (w *World) randomFault() {
	if w.phase != PhaseSafety {
		return
	}
	defer w.schedule(event{at: w.now + w.interval(w.k.FaultEvery), kind: evFault})
	var kinds []Fault
	for f := Fault(1); f < faultEnd; f <<= 1 {
		if w.k.Faults&f != 0 && f != FaultDialFail && f != FaultDialTimeout && (f != FaultCrash || !w.k.KeptPairs) {
			kinds = append(kinds, f) // dial faults are rates, applied per dial
		}
	}
	if len(kinds) == 0 {
		return
	}
	switch kinds[w.c.Intn(len(kinds))] {
	case FaultReset:
		if c := w.someLiveConn(); c != nil {
			w.noteFault("reset g%d", c.id)
			w.resetConn(c)
		}
	case FaultSilence:
		if c := w.someLiveConn(); c != nil {
			w.stats.Silences++
			w.noteFault("silence g%d (no FIN, no bytes, ever)", c.id)
			c.silent = true
			c.ep++
		}
	case FaultAsym:
		i, j := w.c.Intn(len(w.nodes)), w.c.Intn(len(w.nodes))
		w.noDial[i][j] = w.now + between(w.c, 100*time.Millisecond, 20*time.Second)
		w.noteFault("%s cannot dial %s until %v", w.nodes[i].id, w.nodes[j].id, w.noDial[i][j])
	case FaultPartition:
		until := w.now + between(w.c, 100*time.Millisecond, 20*time.Second)
		side := make([]bool, len(w.nodes))
		for i := range side {
			side[i] = w.c.Intn(2) == 0
		}
		var a, b []string
		for i := range side {
			if side[i] {
				a = append(a, w.nodes[i].id)
			} else {
				b = append(b, w.nodes[i].id)
			}
			for j := range side {
				if side[i] != side[j] {
					w.cut[i][j] = max(w.cut[i][j], until)
				}
			}
		}
		w.noteFault("partition %v | %v until %v", a, b, until)
	case FaultCrash:
		n := w.nodes[w.c.Intn(len(w.nodes))]
		if !n.alive {
			return
		}
		switch w.c.Intn(3) {
		case 0:
			w.crash(n, true)
		case 1:
			w.crash(n, false)
		default:
			// A clean exit: BYE shutdown and FIN on every connection. The
			// ledger hears of it first: its peers may hand their messages
			// back at once (lost.go).
			w.lost.Exempt(n.id, "", fmt.Sprintf("%s inc %d closed at %v", n.id, n.inc, w.now))
			w.admitAll(n) // as netio's Close: staged messages are queued ones
			w.step(n, fsm.Shutdown{})
			w.crash(n, false)
		}
		delay := between(w.c, 0, 10*time.Second)
		if w.c.Intn(3) == 0 {
			delay = between(w.c, 0, 50*time.Millisecond) // back at once: a restart storm
		}
		w.noteFault("%s inc %d down, back at %v", n.id, n.inc, w.now+delay)
		w.schedule(event{at: w.now + delay, kind: evRestart, node: n.idx, inc: n.inc})
	}
}

// someLiveConn picks a connection with an open end, or nil.
func (w *World) someLiveConn() *simConn {
	var open []*simConn
	for _, c := range w.snapshotConns() {
		if !c.reset && !c.silent {
			open = append(open, c)
		}
	}
	if len(open) == 0 {
		return nil
	}
	return open[w.c.Intn(len(open))]
}

// snapshotConns returns the connections with an open end, pruning the rest.
func (w *World) snapshotConns() []*simConn {
	w.snapshot()
	return w.conns
}
