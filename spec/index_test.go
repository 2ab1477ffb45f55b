package spec

import (
	"errors"
	"fmt"
	"slices"
	"testing"

	"pgregory.net/rapid"

	"github.com/masterless-go/masterless/fsm"
)

// The invariants look nodes, peers and connections up through an index
// (snapshot.go) rebuilt by each check. TestIndexedCheckersMatchScans holds
// them to the plain scans they replaced, kept below as they were, on random
// snapshots: sorted and unsorted peer tables, repeated ids, adversary ids,
// dense and sparse connection ids, more and fewer nodes than nodeIndexFrom,
// and one snapshot changed between two checks (nothing may be remembered).
func TestIndexedCheckersMatchScans(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		s := genSnapshot(t)
		for round := 0; round < 2; round++ {
			compareCheckers(t, s)
			// Change the snapshot in place, as a caller may between checks.
			if len(s.Nodes) > 0 {
				n := &s.Nodes[rapid.IntRange(0, len(s.Nodes)-1).Draw(t, "changed")]
				n.Peers = n.Peers[:rapid.IntRange(0, len(n.Peers)).Draw(t, "peersLeft")]
				n.Conns = n.Conns[:rapid.IntRange(0, len(n.Conns)).Draw(t, "connsLeft")]
			}
			s.Conns = s.Conns[:rapid.IntRange(0, len(s.Conns)).Draw(t, "netLeft")]
		}
	})
}

func compareCheckers(t *rapid.T, s *Snapshot) {
	for _, c := range []struct {
		name      string
		got, want func(*Snapshot) error
	}{
		{"EndsMatchNetwork", EndsMatchNetwork, refEndsMatchNetwork},
		{"AtMostOneSession", AtMostOneSession, refAtMostOneSession},
		{"BothEndsAgree", BothEndsAgree, refBothEndsAgree},
		{"NoImpersonation", NoImpersonation, refNoImpersonation},
		{"CheckSafety", CheckSafety, func(s *Snapshot) error {
			return errors.Join(NoSelfConnection(s), refEndsMatchNetwork(s), refAtMostOneSession(s), refBothEndsAgree(s), CheckDeliveries(s.Delivered))
		}},
	} {
		got, want := errText(c.got(s)), errText(c.want(s))
		if got != want {
			t.Fatalf("%s:\n got: %s\nwant: %s", c.name, got, want)
		}
	}
}

func errText(err error) string {
	if err == nil {
		return "<nil>"
	}
	return err.Error()
}

// genSnapshot draws a snapshot that the invariants mostly accept and
// sometimes not, so that both their silence and their reports are compared.
func genSnapshot(t *rapid.T) *Snapshot {
	ids := []string{"a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k", "l", "m", "n", "o", "p", "q", "r"}
	nNodes := rapid.IntRange(0, len(ids)).Draw(t, "nodes")
	pool := append(slices.Clone(ids[:nNodes]), "x1", "x2") // x: adversaries
	id := func(label string) string { return rapid.SampledFrom(pool).Draw(t, label) }
	step := ConnID(1)
	if rapid.IntRange(0, 3).Draw(t, "sparse") == 0 {
		step = 1000 // too sparse for the table
	}
	nConns := rapid.IntRange(0, 40).Draw(t, "conns")
	g := func(label string) ConnID { return step * ConnID(rapid.IntRange(0, nConns+1).Draw(t, label)) }
	s := &Snapshot{}
	for k := 1; k <= nConns; k++ {
		if rapid.IntRange(0, 4).Draw(t, "gap") == 0 {
			continue
		}
		c := Conn{ID: step * ConnID(k)}
		for e := range c.Ends {
			c.Ends[e] = End{Node: id("end"), Incarnation: uint64(rapid.IntRange(1, 2).Draw(t, "endInc")), Open: rapid.IntRange(0, 4).Draw(t, "closed") > 0}
		}
		s.Conns = append(s.Conns, c)
	}
	for i := 0; i < nNodes; i++ {
		n := NodeView{ID: ids[i], Incarnation: uint64(rapid.IntRange(1, 2).Draw(t, "inc")), Alive: rapid.IntRange(0, 9).Draw(t, "down") > 0}
		if rapid.IntRange(0, 9).Draw(t, "dupID") == 0 {
			n.ID = id("dupID")
		}
		for k := rapid.IntRange(0, 8).Draw(t, "ends"); k > 0; k-- {
			st := fsm.StateEstablished
			if rapid.IntRange(0, 3).Draw(t, "handshaking") == 0 {
				st = fsm.StateHello
			}
			peer := id("peer")
			if rapid.IntRange(0, 5).Draw(t, "unknown") == 0 {
				peer = ""
			}
			c := ConnEnd{ConnStatus: fsm.ConnStatus{State: st, Dialed: rapid.Bool().Draw(t, "dialed"), Peer: peer, Sess: uint64(rapid.IntRange(1, 2).Draw(t, "connSess"))}, Global: g("global")}
			c.ID = fsm.ConnID(2 * c.Global) // local ids as the simulator numbers them
			if !c.Dialed {
				c.ID++
			}
			n.Conns = append(n.Conns, c)
		}
		if rapid.IntRange(0, 3).Draw(t, "connsUnsorted") > 0 {
			slices.SortFunc(n.Conns, func(a, b ConnEnd) int { return int(a.ID) - int(b.ID) })
		}
		for k := rapid.IntRange(0, 8).Draw(t, "peers"); k > 0; k-- {
			p := Peer{PeerStatus: fsm.PeerStatus{ID: id("peerID"), Sess: uint64(rapid.IntRange(1, 2).Draw(t, "sess"))}}
			switch rapid.IntRange(0, 2).Draw(t, "session") {
			case 1: // any connection
				p.SessionGlobal = g("session")
				p.SessionConn = fsm.ConnID(2*p.SessionGlobal + 1)
			case 2: // one of the node's, mostly as it should be
				if len(n.Conns) > 0 {
					c := n.Conns[rapid.IntRange(0, len(n.Conns)-1).Draw(t, "sessionConn")]
					p.SessionConn, p.SessionGlobal = c.ID, c.Global
					if c.Peer != "" && rapid.IntRange(0, 4).Draw(t, "otherID") > 0 {
						p.ID = c.Peer
					}
				}
			}
			n.Peers = append(n.Peers, p)
		}
		if rapid.IntRange(0, 3).Draw(t, "unsorted") > 0 {
			slices.SortFunc(n.Peers, func(a, b Peer) int { return cmpString(a.ID, b.ID) })
			if rapid.Bool().Draw(t, "compact") {
				n.Peers = slices.CompactFunc(n.Peers, func(a, b Peer) bool { return a.ID == b.ID })
			}
		}
		s.Nodes = append(s.Nodes, n)
	}
	return s
}

func cmpString(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// The invariants as they were before the index, by scans.

func refEndsMatchNetwork(s *Snapshot) error {
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
func refAtMostOneSession(s *Snapshot) error {
	var errs []error
	tally := map[string]sessionTally{}
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
func refBothEndsAgree(s *Snapshot) error {
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
func refNoImpersonation(s *Snapshot) error {
	var errs []error
	for i := range s.Nodes {
		n := &s.Nodes[i]
		for _, e := range n.Conns {
			if e.Peer == "" || !s.honest(e.Peer) {
				continue
			}
			c := s.Conn(e.Global)
			if c == nil {
				continue
			}
			side := 1
			if e.Dialed {
				side = 0
			}
			if other := c.Ends[1-side].Node; other != e.Peer {
				what := "connection"
				if p := n.Peer(e.Peer); p != nil && p.SessionGlobal == e.Global {
					what = "session"
				}
				errs = append(errs, fmt.Errorf("no-impersonation: %s holds g%d (%s, %s) as its %s with %s, but the other end is held by %s",
					n.ID, e.Global, e.State, adversaryOrNot(s, other), what, e.Peer, other))
			}
		}
	}
	return errors.Join(errs...)
}
