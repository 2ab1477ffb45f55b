package sim

import (
	"cmp"
	"fmt"
	"time"

	"github.com/masterless-go/masterless/fsm"
	"github.com/masterless-go/masterless/spec"
)

// The invariant no-lost-while-kept (spec.LostLedger): the world tells the
// ledger what it needs as it happens. A user's un-keep and Disconnect, a
// crash and a Close go to it before the step that carries them out (user.go,
// faults.go, crash); the keeps and confirmed sessions of each node as each
// refresh re-reads them (noteKeepsAndSessions); every Lost as the fsm
// reports it (transport.Notify), which fails the run when the rule forbids it.

// peerSeen is what one node's view said of one peer at its last refresh.
type peerSeen struct {
	id     string
	kept   bool // the fsm keeps it
	up     bool // a confirmed session
	global spec.ConnID
	queued int
}

// watchLost sets the ledger up: the nodes' grace, and the nodes that dial
// with masterless 0.4.1, whose sessions resend nothing.
func (w *World) watchLost() {
	w.lost.Grace = w.k.Grace
	if w.lost.Grace == 0 {
		w.lost.Grace = fsm.DefaultReconnectGrace
	}
	for _, n := range w.nodes {
		if n.legacy {
			w.lost.Exempt(n.id, "", fmt.Sprintf("%s dials with masterless 0.4.1, which resends nothing", n.id))
		}
	}
}

// seePeers returns what n's view says of its peers before a refresh
// re-reads it (in w.seen, valid until the next call).
func (w *World) seePeers(n *process) []peerSeen {
	seen := w.seen[:0]
	for _, p := range w.snap.Nodes[n.idx].Peers {
		seen = append(seen, seeOf(&p))
	}
	w.seen = seen
	return seen
}

func seeOf(p *spec.Peer) peerSeen {
	return peerSeen{id: p.ID, kept: p.Kept, up: p.SessionConn != 0 && p.Confirmed, global: p.SessionGlobal, queued: p.Queued}
}

// noteKeepsAndSessions tells the ledger what changed in n's view since
// before (its peers before the refresh, sorted by id, as the view's are).
func (w *World) noteKeepsAndSessions(n *process, before []peerSeen) {
	now := w.snap.Nodes[n.idx].Peers
	i, j := 0, 0
	for i < len(before) || j < len(now) {
		switch {
		case j == len(now) || (i < len(before) && before[i].id < now[j].ID): // forgotten, or the node crashed
			w.sawPeer(n, before[i], peerSeen{id: before[i].id})
			i++
		case i == len(before) || now[j].ID < before[i].id:
			w.sawPeer(n, peerSeen{id: now[j].ID}, seeOf(&now[j]))
			j++
		default:
			w.sawPeer(n, before[i], seeOf(&now[j]))
			i++
			j++
		}
	}
}

// sawPeer tells the ledger how n's view of one peer changed. A keep counts
// only when n's user asked for it (intends): a peer kept by discovery alone
// is not kept by the user. A session replaced by another counts as ended.
func (w *World) sawPeer(n *process, was, is peerSeen) {
	if is.kept != was.kept {
		w.lost.Keep(n.id, is.id, is.kept && w.intends(n, is.id))
	}
	if was.up && (!is.up || is.global != was.global) {
		w.lost.Session(w.now, n.id, is.id, false, is.queued)
	}
	if is.up && (!was.up || is.global != was.global) {
		w.lost.Session(w.now, n.id, is.id, true, is.queued)
	}
}

// keeps reports whether n keeps peer as the ledger counts it: its fsm
// keeps it, and its user asked it to (a Connect keeps only once its dial
// reaches the peer).
func (w *World) keeps(n *process, peer string) bool {
	return n.alive && n.fsm.IsKept(peer) && w.intends(n, peer)
}

// intends reports whether n's user asked it to keep peer: SetKeep, or a
// Connect to one of peer's addresses.
func (w *World) intends(n *process, peer string) bool {
	if n.keeps[peer] {
		return true
	}
	for addr := range n.connectAddrs {
		if i, ok := w.byAddr[addr]; ok && w.nodes[i].id == peer {
			return true
		}
	}
	return false
}

// keepEveryPair starts a KeptPairs run: for each pair, one end (a quarter
// of the time both) Connects to the other, and so keeps the pair once the
// dial reaches it.
func (w *World) keepEveryPair() {
	for i := range w.nodes {
		for j := i + 1; j < len(w.nodes); j++ {
			switch w.c.Intn(4) {
			case 0:
				w.Connect(i, w.nodes[j].addr)
				w.Connect(j, w.nodes[i].addr)
			case 1:
				w.Connect(i, w.nodes[j].addr)
			default:
				w.Connect(j, w.nodes[i].addr)
			}
		}
	}
}

// keptPairsCommand issues one random command of a KeptPairs run: sends
// between two nodes, or a keeper switch of their pair that leaves no
// instant at which neither end keeps it.
func (w *World) keptPairsCommand() {
	if len(w.nodes) < 2 {
		return
	}
	n := w.nodes[w.c.Intn(len(w.nodes))]
	other := w.nodes[(n.idx+1+w.c.Intn(len(w.nodes)-1))%len(w.nodes)]
	if w.c.Intn(100) >= 30 {
		for k := between(w.c, 1, 5); k > 0 && w.err == nil; k-- {
			w.Send(n.idx, other.id)
			if w.c.Intn(2) == 0 {
				w.Send(other.idx, n.id)
			}
		}
		return
	}
	pair := [2]int{min(n.idx, other.idx), max(n.idx, other.idx)}
	if last, ok := w.switched[pair]; ok && w.now < last+w.switchGap() && !w.k.FastSwitches {
		return // see switchGap
	}
	if w.switched == nil {
		w.switched = map[[2]int]time.Duration{}
	}
	w.switched[pair] = w.now
	nKeeps, otherKeeps := w.keeps(n, other.id), w.keeps(other, n.id)
	switch {
	case nKeeps && otherKeeps: // one of them stops
		if w.c.Intn(2) == 0 {
			n, other = other, n
		}
		w.SetKeep(n.idx, other.id, false)
	case !nKeeps && !otherKeeps:
		if !w.intends(n, other.id) && !w.intends(other, n.id) {
			w.fail(fmt.Errorf("sim: KeptPairs run: neither %s nor %s keeps the pair", n.id, other.id))
		}
		delete(w.switched, pair) // a Connect not yet through: no switch
	default: // the end that does not keep takes over; the keeper stops now, or stays until a later switch
		if nKeeps {
			n, other = other, n
		}
		w.SetKeep(n.idx, other.id, true)
		if w.c.Intn(2) == 0 {
			w.SetKeep(other.idx, n.id, false)
		}
	}
}

// switchGap is the least time between two keeper switches of one pair in a
// KeptPairs run (unless Knobs.FastSwitches): longer than a frame sent at the
// first can take to arrive, or to have its connection closed at the other
// end first (the handshake or peer timeout, for the bytes a partition or a
// full socket buffer holds, twice over, plus the worst one-way delays).
// Runs with Knobs.FastSwitches switch faster, within a round trip, where
// the leader can end the session as unwanted on a KEEP 0 of the follower
// that a KEEP 1 in flight already superseded, and keep the pair again
// before the BYE arrives (sim/doc.go): the two kinds of run exercise
// different interleavings.
func (w *World) switchGap() time.Duration {
	timeout := max(cmp.Or(w.k.PeerTimeout, fsm.DefaultPeerTimeout), cmp.Or(w.k.HandshakeTimeout, fsm.DefaultHandshakeTimeout))
	return 2*timeout + 4*(w.k.Latency+w.k.Jitter)
}
