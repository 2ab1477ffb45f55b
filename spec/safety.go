package spec

import (
	"errors"
	"fmt"

	"github.com/masterless-go/masterless/fsm"
)

// Safety invariants: they must hold after every step, whatever the network
// and the failures do (spec/PROTOCOL.md, 3.5).

// CheckSafety runs every safety invariant and joins the violations.
func CheckSafety(s *Snapshot) error {
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
		n := &s.Nodes[i]
		for _, c := range n.Conns {
			if c.Peer == n.ID {
				errs = append(errs, fmt.Errorf("no-self-connection: %s holds g%d (local c%d, %s) with itself as peer", n.ID, c.Global, c.ID, c.State))
			}
		}
		for _, p := range n.Peers {
			if p.ID == n.ID && p.SessionConn != 0 {
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
	for i := range s.Nodes {
		n := &s.Nodes[i]
		if !n.Alive && len(n.Conns) > 0 {
			errs = append(errs, fmt.Errorf("ends-match-network: %s is down but holds %d connections", n.ID, len(n.Conns)))
		}
		for _, e := range n.Conns {
			c := s.Conn(e.Global)
			if c == nil {
				errs = append(errs, fmt.Errorf("ends-match-network: %s holds g%d, which the network does not know", n.ID, e.Global))
				continue
			}
			side := -1
			for k := range c.Ends {
				if c.Ends[k].Node == n.ID && c.Ends[k].Incarnation == n.Incarnation && c.Ends[k].Open && (e.Dialed == (k == 0)) {
					side = k
				}
			}
			if side < 0 {
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
// each node's connections and peers (one tally per peer id, in a map the
// snapshot reuses), not quadratic, which a full mesh of 48 nodes (about 94
// connections each) would feel.
func AtMostOneSession(s *Snapshot) error {
	var errs []error
	if s.tally == nil {
		s.tally = map[string]sessionTally{}
	}
	tally := s.tally
	for i := range s.Nodes {
		n := &s.Nodes[i]
		clear(tally)
		for k := range n.Peers {
			tally[n.Peers[k].ID] = sessionTally{first: -1, peer: k}
		}
		for j := range n.Conns {
			c := &n.Conns[j]
			if c.State != fsm.StateEstablished {
				continue
			}
			t, ok := tally[c.Peer]
			if !ok {
				t = sessionTally{first: -1, peer: -1}
			}
			if t.first < 0 {
				t.first = j
			}
			t.established++
			tally[c.Peer] = t
		}
		for j := range n.Conns {
			c := &n.Conns[j]
			if c.State != fsm.StateEstablished {
				continue
			}
			t := tally[c.Peer]
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
			j := tally[p.ID].first
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
	for i := range s.Nodes {
		a := &s.Nodes[i]
		for _, pa := range a.Peers {
			if pa.SessionGlobal == 0 || pa.ID <= a.ID {
				continue // each pair once, from its smaller id
			}
			b := s.Node(pa.ID)
			if b == nil || !b.Alive {
				continue
			}
			pb := b.Peer(a.ID)
			if pb == nil || pb.SessionGlobal == 0 {
				continue
			}
			ga, gb := s.Conn(pa.SessionGlobal), s.Conn(pb.SessionGlobal)
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
