package spec

import (
	"errors"
	"fmt"

	"github.com/masterless-go/masterless/fsm"
)

// CheckQuiescent states what must be true once nothing is in flight and no
// pending timer can change the state (the caller decides when that is):
//
//   - every pair of live nodes that either end keeps, and can dial, has
//     exactly one session, the same connection at both ends, open at both
//     ends (a node that keeps a peer whose address it never learned can only
//     wait for it);
//   - no pair that neither end keeps has a session at either end;
//   - no connection is left half-way: every open end is an established
//     session whose other end is open too.
//
// Crashed nodes (Alive false) take no part.
func CheckQuiescent(s *Snapshot) error {
	var errs []error
	for i := range s.Nodes {
		a := &s.Nodes[i]
		if !a.Alive {
			continue
		}
		for j := i + 1; j < len(s.Nodes); j++ {
			b := &s.Nodes[j]
			if !b.Alive {
				continue
			}
			if err := quiescentPair(s, a, b); err != nil {
				errs = append(errs, err)
			}
		}
		for _, e := range a.Conns {
			c := s.Conn(e.Global)
			switch {
			case e.State != fsm.StateEstablished:
				errs = append(errs, fmt.Errorf("quiescent: %s still holds g%d in state %s (peer %q)", a.ID, e.Global, e.State, e.Peer))
			case c == nil || !c.Live():
				errs = append(errs, fmt.Errorf("quiescent: %s holds session g%d with %s, whose other end is closed", a.ID, e.Global, e.Peer))
			}
		}
	}
	return errors.Join(errs...)
}

func quiescentPair(s *Snapshot, a, b *NodeView) error {
	pa, pb := a.Peer(b.ID), b.Peer(a.ID)
	keptA, keptB := pa != nil && pa.Kept, pb != nil && pb.Kept
	needA, needB := keptA && pa.Dialable(), keptB && pb.Dialable()
	var ga, gb ConnID
	if pa != nil {
		ga = pa.SessionGlobal
	}
	if pb != nil {
		gb = pb.SessionGlobal
	}
	if !keptA && !keptB {
		if ga != 0 || gb != 0 {
			return fmt.Errorf("quiescent: neither %s nor %s keeps the pair, yet sessions remain (%s: g%d, %s: g%d)\n  %s\n  %s", a.ID, b.ID, a.ID, ga, b.ID, gb, a, b)
		}
		return nil
	}
	if !needA && !needB {
		return nil // kept, but by an end that cannot dial: either outcome is allowed
	}
	if ga == 0 || gb == 0 || ga != gb {
		return fmt.Errorf("quiescent: pair %s-%s is kept (%s keeps: %t, %s keeps: %t, and can dial) but the sessions are %s: g%d, %s: g%d\n  %s\n  %s",
			a.ID, b.ID, a.ID, keptA, b.ID, keptB, a.ID, ga, b.ID, gb, a, b)
	}
	if c := s.Conn(ga); c == nil || !c.Live() {
		return fmt.Errorf("quiescent: pair %s-%s agrees on session g%d, but it is not open at both ends", a.ID, b.ID, ga)
	}
	return nil
}
