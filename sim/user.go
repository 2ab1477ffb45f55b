package sim

import (
	"fmt"
	"time"

	"github.com/masterless-go/masterless/fsm"
	"github.com/masterless-go/masterless/spec"
)

// User commands. Each is an fsm event fed to the node like netio feeds a
// call from the public API; the simulated user also remembers its intent
// (what it connected to and keeps) so a restarted node can re-issue it.

// Connect asks node i to connect to addr and keep what it reaches. It returns
// the request id; the outcome is an ActConnectDone in Node(i).User.
func (w *World) Connect(i int, addr string) fsm.ReqID {
	n := w.nodes[i]
	n.connectAddrs[addr] = true
	if !n.alive {
		return 0
	}
	n.nextReq++
	w.step(n, fsm.Connect{Req: n.nextReq, Addr: addr})
	return n.nextReq
}

// Disconnect asks node i to close its session with peer and stop keeping it.
func (w *World) Disconnect(i int, peer string) error {
	n := w.nodes[i]
	// Before the step, which may hand messages back at once (lost.go).
	w.lost.Exempt(n.id, peer, fmt.Sprintf("%s's user disconnected %s at %v", n.id, peer, w.now))
	w.lost.Keep(n.id, peer, false)
	w.forget(n, peer)
	if !n.alive {
		return nil
	}
	w.admitLane(n, peer, false) // as netio's Disconnect: what its producers staged goes first
	return w.step(n, fsm.Disconnect{Peer: peer})
}

// SetKeep asks node i to keep (or stop keeping) peer.
func (w *World) SetKeep(i int, peer string, keep bool) error {
	n := w.nodes[i]
	if keep {
		n.keeps[peer] = true
	} else {
		w.lost.Keep(n.id, peer, false) // before the step, which may hand messages back at once (lost.go)
		w.forget(n, peer)
	}
	if !n.alive {
		return nil
	}
	err := w.step(n, fsm.SetKeep{Peer: peer, Keep: keep})
	if keep && n.alive && n.fsm.IsKept(peer) {
		w.lost.Keep(n.id, peer, true) // also when the fsm kept it already (by discovery)
	}
	return err
}

// forget drops n's intent to keep peer, however it was expressed.
func (w *World) forget(n *process, peer string) {
	delete(n.keeps, peer)
	for addr := range n.connectAddrs {
		if to, ok := w.byAddr[addr]; ok && w.nodes[to].id == peer {
			delete(n.connectAddrs, addr)
		}
	}
}

// Send asks node i to send the next message of the pair (i, peer); payloads
// carry a per-pair sequence number for the delivery invariants. It returns
// the sequence number used and the fsm's answer.
func (w *World) Send(i int, peer string) (uint64, error) {
	n := w.nodes[i]
	n.sendSeq[peer]++
	seq := n.sendSeq[peer]
	if !n.alive {
		return seq, fsm.ErrClosed
	}
	var err error
	if w.k.Leases && w.c.Intn(2) == 0 {
		_, err = w.producerSend(n, peer, spec.Payload(n.id, peer, seq))
	} else {
		err = w.answerSend(n, peer, spec.Payload(n.id, peer, seq))
	}
	if err == nil {
		w.streams.Accepted(n.id, n.inc, peer, seq)
	}
	return seq, err
}

// SendMany asks node i to send one payload to each of peers (distinct ids)
// in one step (fsm.SendMany), or, with Knobs.Leases on half of them, as a
// producer (producerSendMany): the next message of each pair, the payload
// naming every destination's sequence number (spec.AppendManyPayload) and
// padded to size bytes. As with Send, a refused message's number is not
// used again. After the step the simulator overwrites the payload's bytes,
// as a caller may reuse its buffer once SendMany returns: a node that kept
// them instead of a copy resends or hands back garbage.
func (w *World) SendMany(i int, peers []string, size int) ([]uint64, []error) {
	n := w.nodes[i]
	seqs, errs := make([]uint64, len(peers)), make([]error, len(peers))
	for k, p := range peers {
		n.sendSeq[p]++
		seqs[k] = n.sendSeq[p]
	}
	if !n.alive {
		for k := range errs {
			errs[k] = fsm.ErrClosed
		}
		return seqs, errs
	}
	w.manyBuf = spec.AppendManyPayload(w.manyBuf[:0], n.id, peers, seqs, size)
	if w.k.Leases && w.c.Intn(2) == 0 { // drawn only with both knobs: other seeds replay as before
		w.producerSendMany(n, peers, w.manyBuf, errs)
	} else {
		for _, p := range peers {
			w.admitLane(n, p, false) // as netio's admitPeer: what producers staged goes first
		}
		_ = w.step(n, fsm.SendMany{Peers: peers, Payload: w.manyBuf, Errs: errs})
	}
	for k := range w.manyBuf {
		w.manyBuf[k] = '!'
	}
	accepted := 0
	for k, p := range peers {
		if errs[k] == nil {
			w.streams.Accepted(n.id, n.inc, p, seqs[k])
			accepted++
		}
	}
	w.stats.SendManys++
	w.stats.SendManyMessages += accepted
	if accepted > 1 && size >= sharedSize {
		w.stats.SendManyShared++
	}
	return seqs, errs
}

// sharedSize is the size of the SendMany payloads that the streams of its
// peers share (past fsm's sharedMin, 512 bytes: one copy for them all).
const sharedSize = 600

// randomSends is a random user's burst of sends from n: one to five Sends
// to other, or, with Knobs.SendMany on half the bursts, one SendMany to
// other and a random set of the other nodes.
func (w *World) randomSends(n, other *process) {
	if w.k.SendMany && w.c.Intn(2) == 0 {
		peers := []string{other.id}
		for _, o := range w.nodes {
			if o != n && o != other && w.c.Intn(2) == 0 {
				peers = append(peers, o.id)
			}
		}
		size := 0
		if w.c.Intn(2) == 0 {
			size = sharedSize
		}
		w.SendMany(n.idx, peers, size)
		return
	}
	for k := between(w.c, 1, 5); k > 0 && w.err == nil; k-- {
		w.Send(n.idx, other.id)
	}
}

// Crash kills node i's process: its fsm is discarded. Its peers see a reset
// of every connection, or, if silent, nothing at all.
func (w *World) Crash(i int, silent bool) { w.crash(w.nodes[i], silent) }

// Restart brings crashed node i back with the next incarnation.
func (w *World) Restart(i int) { w.restart(w.nodes[i]) }

// At schedules a scripted action at virtual time t.
func (w *World) At(t time.Duration, fn func()) {
	w.scripted = true
	w.schedule(event{at: t, kind: evFunc, fn: fn})
}

// Node returns node i's current fsm (nil while crashed).
func (w *World) Node(i int) *fsm.Node { return w.nodes[i].fsm }

// ID returns node i's id.
func (w *World) ID(i int) string { return w.nodes[i].id }

// Addr returns node i's listening address.
func (w *World) Addr(i int) string { return w.nodes[i].addr }

// AliasAddr returns another address of node i (k = 1, 2 or 3): a self-dial
// through it reaches the node itself, and dials to different aliases of one
// node are not deduplicated by the dialer.
func (w *World) AliasAddr(i, k int) string { return aliasAddr(w.nodes[i].id, k) }

func aliasAddr(id string, k int) string { return fmt.Sprintf("tcp://%s-alias%d:7000", id, k) }

// ResetSession resets node i's session with peer, if any: both ends get
// ConnClosed and bytes in flight are lost. It reports whether there was one.
func (w *World) ResetSession(i int, peer string) bool {
	if c := w.sessionConn(i, peer); c != nil {
		w.resetConn(c)
		return true
	}
	return false
}

// SilenceSession makes node i's session with peer go silent both ways,
// without FIN, forever. It reports whether there was one.
func (w *World) SilenceSession(i int, peer string) bool {
	if c := w.sessionConn(i, peer); c != nil {
		c.silent = true
		c.ep++
		return true
	}
	return false
}

func (w *World) sessionConn(i int, peer string) *simConn {
	n := w.nodes[i]
	if !n.alive {
		return nil
	}
	l, ok := n.fsm.SessionConn(peer)
	if !ok {
		return nil
	}
	return n.conns[l]
}

// User returns what node i's user was told, across restarts.
func (w *World) User(i int) []UserEvent { return w.nodes[i].User }

// Delivered returns the number of messages delivered so far, in all.
func (w *World) Delivered() int { return w.deliveries.Count() }

// randomCommand issues one random user command (safety phase only).
func (w *World) randomCommand() {
	if w.phase != PhaseSafety {
		return
	}
	defer w.schedule(event{at: w.now + w.interval(w.k.CommandEvery), kind: evCommand})
	if w.k.KeptPairs {
		w.keptPairsCommand()
		return
	}
	n := w.nodes[w.c.Intn(len(w.nodes))]
	if !n.alive {
		return
	}
	other := w.nodes[w.c.Intn(len(w.nodes))]
	if other == n && w.c.Intn(10) > 0 {
		other = w.nodes[(n.idx+1+w.c.Intn(len(w.nodes)-1))%len(w.nodes)] // mostly someone else
	}
	switch r := w.c.Intn(100); {
	case r < 5 && other != n:
		// A race: both ends dial each other at the same instant, through one
		// to three addresses each.
		for k := between(w.c, 1, 3); k > 0; k-- {
			w.Connect(n.idx, aliasAddr(other.id, k))
			if other.alive {
				w.Connect(other.idx, aliasAddr(n.id, k))
			}
		}
	case r < 25:
		addr := other.addr
		switch w.c.Intn(20) {
		case 0:
			addr = "tcp://nobody:7000" // nothing listens there
		case 1:
			addr = w.AliasAddr(n.idx, 1) // a self-dial the fsm cannot see coming
		}
		w.Connect(n.idx, addr)
	case r < 35:
		w.Disconnect(n.idx, other.id)
	case r < 50:
		w.SetKeep(n.idx, other.id, w.c.Intn(3) > 0)
	case r < 52 && len(n.connectAddrs) > 0 && n.nextReq > 0:
		w.step(n, fsm.CancelConnect{Req: n.nextReq - fsm.ReqID(w.c.Intn(int(n.nextReq)))})
	default:
		w.randomSends(n, other)
	}
}
