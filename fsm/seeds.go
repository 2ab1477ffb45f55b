package fsm

import (
	"errors"
	"maps"
	"slices"
	"time"

	"github.com/masterless-go/masterless/wire"
)

// Address-level keep (issue 10, item 5; spec/PROTOCOL.md, sections 5 and
// 8.4): by default (unless Config.ConnectOnce, and always with Discovery),
// an address the user Connects to is kept until some dial to it reaches a
// node. A dial that fails (refused, unreachable, timed out, closed before the
// peer's HELLO) is tried again after a backoff (BackoffMin doubling to
// BackoffMax, jittered like a kept peer's). Once a node answers, the address
// is dropped from this list and the node is kept, as a successful Connect
// keeps what it reaches: from then on it is redialed as a kept peer, at the
// address it last advertised, until the user disconnects it. The user's
// Connect call still completes as before (an error when its first attempt
// fails; a cancelled Connect only stops waiting); StopConnecting drops the
// address.
//
// An answer that says retrying cannot help until someone changes a
// configuration also ends the retries (seedGivesUp): the address is this
// node's own (its HELLO names our id: ErrSelfConnect, ErrDuplicateID), the
// node there speaks another protocol version (wire.ErrVersionMismatch), or
// it and this node cannot authenticate each other (ErrUnauthenticated,
// ErrIDMismatch, ErrUntrusted, ErrCertificateExpired). The first attempt's
// Connect returns that error; a later retry's is only logged by the adapter.

// seedAddr is an address kept until a node answers there.
type seedAddr struct {
	addr    string
	backoff time.Duration
	nextAt  time.Duration // when to dial it again; 0 while a dial is in flight, it waits for its turn, or none is needed yet
	queued  bool          // its retry waits for a turn (redials.go)
	slow    bool          // its last dial reached no node for half a handshake timeout or more (redials.go)
}

// StopConnecting is the user's request to stop trying an address kept
// because a Connect named it (a dial in flight goes on; a node reached by it
// is not kept, unless a Connect request is bound to it).
type StopConnecting struct{ Addr string }

func (StopConnecting) isEvent() {}

func (n *Node) keepsAddresses() bool { return n.cfg.Discovery || !n.cfg.ConnectOnce }

// keepAddr registers addr, the target of a Connect, as kept until reached.
func (n *Node) keepAddr(addr string) {
	if !n.keepsAddresses() || addr == "" {
		return
	}
	if n.seeds == nil {
		n.seeds = make(map[string]*seedAddr)
	}
	if s := n.seeds[addr]; s != nil {
		s.nextAt = 0 // the Connect dials it now, or joins the dial in flight
		return
	}
	n.seeds[addr] = &seedAddr{addr: addr, backoff: n.cfg.BackoffMin}
}

// seedReached runs when a dial to addr heard the HELLO of p: the address has
// done its job, and p is kept.
func (n *Node) seedReached(addr string, p *peer) {
	if n.seeds[addr] == nil {
		return
	}
	delete(n.seeds, addr)
	p.addr = addr
	p.disc.byDiscovery, p.disc.otherAddr = false, false
	if !p.kept {
		n.markKept(p, true)
		n.traceKeepBound(p) // as a Connect bound to p: a Keep(p, true)
	}
}

// seedDialEnded runs when dial d ended (why: the reason, nil when its
// connection got established); one that reached no node is tried again
// after the backoff, unless why says retrying cannot help.
func (n *Node) seedDialEnded(d *dial, why error) {
	s := n.seeds[d.addr]
	if s == nil || d.reached != nil || n.shutdown {
		return
	}
	if seedGivesUp(why) {
		delete(n.seeds, d.addr)
		return
	}
	if !s.queued { // a wait keeps its line (redials.go, slow)
		s.slow = n.unanswered(d)
	}
	s.nextAt = n.now + n.jitter(s.backoff)
	s.backoff = min(2*s.backoff, n.cfg.BackoffMax)
	n.lowerNext(s.nextAt)
}

// seedGivesUp reports whether a dial that ended for reason why says that
// retrying its address cannot help without a change of configuration: the
// node there is this node itself, or one it cannot talk to (see the top of
// this file).
func seedGivesUp(why error) bool {
	for _, e := range []error{ErrSelfConnect, ErrDuplicateID, wire.ErrVersionMismatch,
		ErrUnauthenticated, ErrIDMismatch, ErrUntrusted, ErrCertificateExpired} {
		if errors.Is(why, e) {
			return true
		}
	}
	return false
}

// seedTimers dials the kept addresses whose retry is due.
func (n *Node) seedTimers() {
	if len(n.seeds) == 0 || n.shutdown {
		return
	}
	for _, addr := range slices.Sorted(maps.Keys(n.seeds)) {
		s := n.seeds[addr]
		if s.nextAt == 0 || n.now < s.nextAt {
			continue
		}
		s.nextAt = 0
		if p := n.peerAt(addr); p != nil {
			n.seedReached(addr, p) // a node there reached us meanwhile
			continue
		}
		if w := (redialWait{seed: s}); n.dialsByAddr[addr] == nil && n.redialTurn(w) {
			n.redialStarted(n.startDial(addr, nil), w)
			n.redialWake()
		}
	}
}

// seedDeadline is the earliest retry of a kept address, or never.
func (n *Node) seedDeadline() time.Duration {
	t := never
	for _, s := range n.seeds {
		if s.nextAt != 0 {
			t = min(t, s.nextAt)
		}
	}
	return t
}

// KeptAddresses returns the addresses kept until a node answers there, sorted.
func (n *Node) KeptAddresses() []string { return slices.Sorted(maps.Keys(n.seeds)) }
