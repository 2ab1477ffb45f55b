package spec

import (
	"errors"
	"fmt"
	"slices"

	"github.com/masterless-go/masterless/fsm"
)

// Safety invariants: they must hold after every step, whatever the network
// and the failures do (spec/PROTOCOL.md, 3.5).

// CheckSafety runs every safety invariant and joins the violations. The
// invariants of one node alone skip the nodes s.Unchanged marks.
func CheckSafety(s *Snapshot) error {
	s.holdIndex() // one index for all of them
	defer s.releaseIndex()
	return errors.Join(
		NoSelfConnection(s),
		EndsMatchNetwork(s),
		AtMostOneSession(s),
		BothEndsAgree(s),
		CheckDeliveries(s.Delivered),
	)
}

// NoSelfConnection: a node never holds a connection whose peer is itself.
// (A self-dial is allowed to exist until the HELLOs are exchanged, while the
// peer is still unknown; it must then be refused with ErrSelfConnect.)
func NoSelfConnection(s *Snapshot) error {
	var errs []error
	for i := range s.Nodes {
		if s.skipLocal(i) {
			continue
		}
		n := &s.Nodes[i]
		for j := range n.Conns {
			if c := &n.Conns[j]; c.Peer == n.ID {
				errs = append(errs, fmt.Errorf("no-self-connection: %s holds g%d (local c%d, %s) with itself as peer", n.ID, c.Global, c.ID, c.State))
			}
		}
		for k := range n.Peers {
			if p := &n.Peers[k]; p.ID == n.ID && p.SessionConn != 0 {
				errs = append(errs, fmt.Errorf("no-self-connection: %s has a session g%d with itself", n.ID, p.SessionGlobal))
			}
		}
	}
	return errors.Join(errs...)
}

// EndsMatchNetwork: every connection a node holds is an open end of a real
// connection at that node, and once the peer said who it is, the node at the
// other end is that peer. This ties the fsm's bookkeeping to the network.
func EndsMatchNetwork(s *Snapshot) error {
	var errs []error
	ix := s.index()
	for i := range s.Nodes {
		n := &s.Nodes[i]
		if !n.Alive && len(n.Conns) > 0 {
			errs = append(errs, fmt.Errorf("ends-match-network: %s is down but holds %d connections", n.ID, len(n.Conns)))
		}
		for j := range n.Conns {
			e := &n.Conns[j]
			c := ix.conn(s, e.Global)
			if c == nil {
				errs = append(errs, fmt.Errorf("ends-match-network: %s holds g%d, which the network does not know", n.ID, e.Global))
				continue
			}
			side := 1 // the only end that can be this one: the dialer's is Ends[0]
			if e.Dialed {
				side = 0
			}
			if end := &c.Ends[side]; !end.Open || end.Incarnation != n.Incarnation || end.Node != n.ID {
				errs = append(errs, fmt.Errorf("ends-match-network: %s inc %d holds g%d (dialed=%t) but the network has no open end there: %+v", n.ID, n.Incarnation, e.Global, e.Dialed, c.Ends))
				continue
			}
			if other := c.Ends[1-side]; e.Peer != "" && other.Node != e.Peer {
				errs = append(errs, fmt.Errorf("ends-match-network: %s thinks g%d leads to %s, but its other end is %s", n.ID, e.Global, e.Peer, other.Node))
			}
		}
	}
	return errors.Join(errs...)
}

// AtMostOneSession: each node holds at most one established connection per
// peer, and its peer table names exactly that connection as the session.
//
// It runs after every simulated step, over every node: its cost is linear in
// each node's connections and peers (one tally per peer id, found by a binary
// search of the peer table that FillFromFSM leaves sorted, or in a map when
// it is not sorted or does not name the peer), not quadratic, which a full
// mesh of 48 nodes (about 94 connections each) would feel. Its buffers live
// in the snapshot.
func AtMostOneSession(s *Snapshot) error {
	var errs []error
	ix := s.index()
	if s.tally == nil {
		s.tally = map[string]int{}
	}
	byID := s.tally // peer id -> slot in tallies, for the ids a search does not find
	for i := range s.Nodes {
		if s.skipLocal(i) {
			continue
		}
		n := &s.Nodes[i]
		clear(byID)
		tallies := s.tallies[:0]
		for k := range n.Peers {
			tallies = append(tallies, sessionTally{first: -1, peer: k})
		}
		sorted := ix.sortedPeers(s, i)
		if sorted && sessionsClean(n) {
			continue // nothing to report: the tally would find what sessionsClean did
		}
		if !sorted {
			for k := range n.Peers {
				byID[n.Peers[k].ID] = k // the last of equal ids, as a map keeps it
			}
		}
		slot := slices.Grow(s.slots[:0], len(n.Conns))[:len(n.Conns)]
		for j := range n.Conns {
			c := &n.Conns[j]
			slot[j] = -1
			if c.State != fsm.StateEstablished {
				continue
			}
			k := -1
			if sorted {
				k = searchPeer(n.Peers, c.Peer)
			}
			if k < 0 {
				var ok bool
				if k, ok = byID[c.Peer]; !ok {
					k = len(tallies)
					tallies = append(tallies, sessionTally{first: -1, peer: -1})
					byID[c.Peer] = k
				}
			}
			slot[j] = k
			t := &tallies[k]
			if t.first < 0 {
				t.first = j
			}
			t.established++
		}
		s.tallies, s.slots = tallies, slot
		for j := range n.Conns {
			c := &n.Conns[j]
			if slot[j] < 0 {
				continue // not established
			}
			t := &tallies[slot[j]]
			if t.first != j {
				continue // reported with the first
			}
			if t.established > 1 {
				// The list of connections is built only to report a
				// violation.
				var gs []ConnID
				for k := j; k < len(n.Conns); k++ {
					if n.Conns[k].State == fsm.StateEstablished && n.Conns[k].Peer == c.Peer {
						gs = append(gs, n.Conns[k].Global)
					}
				}
				errs = append(errs, fmt.Errorf("at-most-one-session: %s has %d established connections to %s: %v", n.ID, t.established, c.Peer, gs))
			}
			switch {
			case t.peer < 0:
				errs = append(errs, fmt.Errorf("at-most-one-session: %s has established g%d to %s, which is not in its peer table", n.ID, c.Global, c.Peer))
			case n.Peers[t.peer].SessionConn == 0:
				errs = append(errs, fmt.Errorf("at-most-one-session: %s has established g%d to %s, but its peer table has no session", n.ID, c.Global, c.Peer))
			}
		}
		for k := range n.Peers {
			p := &n.Peers[k]
			if p.SessionConn == 0 {
				continue
			}
			at := k
			if !sorted {
				at = byID[p.ID]
			}
			j := tallies[at].first
			if j < 0 || n.Conns[j].Global != p.SessionGlobal {
				var gs []ConnID
				if j >= 0 {
					gs = append(gs, n.Conns[j].Global)
				}
				errs = append(errs, fmt.Errorf("at-most-one-session: %s's session with %s is g%d, which is not an established connection to it (established: %v)", n.ID, p.ID, p.SessionGlobal, gs))
			}
		}
	}
	return errors.Join(errs...)
}

// sessionsClean reports whether AtMostOneSession has nothing to report at n,
// whose peer ids are unique (sorted), in the common case: its connections
// are sorted by local id, and every established connection is the session
// of the peer it leads to, which names it by both ids. Then no peer has two
// established connections (each is some peer's session, and one peer has
// one), none leads to a peer missing from the table or without a session,
// and each session is the peer's only established connection. It costs a
// binary search of the connections per session, and compares no strings but
// one per session.
func sessionsClean(n *NodeView) bool {
	established := 0
	for j := range n.Conns {
		if j > 0 && n.Conns[j-1].ID >= n.Conns[j].ID {
			return false
		}
		if n.Conns[j].State == fsm.StateEstablished {
			established++
		}
	}
	sessions := 0
	for k := range n.Peers {
		p := &n.Peers[k]
		if p.SessionConn == 0 {
			continue
		}
		sessions++
		lo, hi := 0, len(n.Conns) // the first at or after SessionConn
		for lo < hi {
			if m := int(uint(lo+hi) >> 1); n.Conns[m].ID < p.SessionConn {
				lo = m + 1
			} else {
				hi = m
			}
		}
		if lo == len(n.Conns) || n.Conns[lo].ID != p.SessionConn {
			return false
		}
		if c := &n.Conns[lo]; c.State != fsm.StateEstablished || c.Global != p.SessionGlobal || c.Peer != p.ID {
			return false
		}
	}
	return sessions == established
}

// sessionTally is what AtMostOneSession counts of one peer id at one node.
type sessionTally struct {
	first       int // index in Conns of the first established connection to it; -1 if none
	established int // its established connections
	peer        int // its index in Peers; -1 if the peer table does not name it
}

// BothEndsAgree: if A's session with B is g and B's session with A is g',
// and both g and g' are live (open at both ends), then g = g'; and the two
// ends of a live session carry the same session number. A follower may
// briefly hold a session the leader has already closed, while the FIN is in
// flight (PROTOCOL.md 3.5); that connection is not live, so it is allowed.
func BothEndsAgree(s *Snapshot) error {
	var errs []error
	ix := s.index()
	for i := range s.Nodes {
		a := &s.Nodes[i]
		for k := range a.Peers {
			pa := &a.Peers[k]
			if pa.SessionGlobal == 0 || pa.ID <= a.ID {
				continue // each pair once, from its smaller id
			}
			b, bi := ix.node(s, pa.ID)
			if b == nil || !b.Alive {
				continue
			}
			pb := ix.peer(s, bi, a.ID)
			if pb == nil || pb.SessionGlobal == 0 {
				continue
			}
			ga, gb := ix.conn(s, pa.SessionGlobal), ix.conn(s, pb.SessionGlobal)
			if ga == nil || gb == nil || !ga.Live() || !gb.Live() {
				continue
			}
			if ga.ID != gb.ID {
				errs = append(errs, fmt.Errorf("both-ends-agree: %s's session with %s is g%d (sess %d) but %s's session with %s is g%d (sess %d), both live\n  %s\n  %s",
					a.ID, b.ID, ga.ID, pa.Sess, b.ID, a.ID, gb.ID, pb.Sess, a.String(), b.String()))
				continue
			}
			if pa.Sess != pb.Sess {
				errs = append(errs, fmt.Errorf("both-ends-agree: %s and %s share session g%d but number it %d and %d", a.ID, b.ID, ga.ID, pa.Sess, pb.Sess))
			}
		}
	}
	return errors.Join(errs...)
}
