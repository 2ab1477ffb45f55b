package sim

import (
	"fmt"

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
