package fsm

import "fmt"

// CheckSlots verifies the bookkeeping of the handshake slots (slots.go)
// against the connections themselves: a connection holds a slot exactly
// when it is not established or is a v1 session not yet confirmed; the
// handshaking count is the number holding one; each source's count is the
// number of its accepted connections holding one, no source is listed
// without one, and the count of sources over their share is right; the
// tiers' lists hold exactly the accepted connections holding a slot, the
// silent ones (no HELLO yet) in the first and the others in the second,
// oldest first, each linked both ways; and accepted connections holding a
// slot never exceed the slots (our own dials are not bounded).
func (n *Node) CheckSlots() error {
	handshaking, accepted := 0, 0
	perSource := map[string]int{}
	var inTier [tierHeard + 1]int
	inTierFrom := [tierHeard + 1]map[string]int{{}, {}, {}}
	for id, c := range n.conns {
		holds := c.state != StateEstablished || c.unconfirmed
		if holds != c.slot {
			return fmt.Errorf("c%d (%s, unconfirmed %v) holds a slot: %v, want %v", id, c.state, c.unconfirmed, c.slot, holds)
		}
		if !c.slot {
			if c.tier != tierNone {
				return fmt.Errorf("c%d holds no slot but is evictable (tier %d)", id, c.tier)
			}
			continue
		}
		handshaking++
		if c.dial != nil {
			if c.tier != tierNone || c.source != "" {
				return fmt.Errorf("c%d is our own dial but evictable or from source %q", id, c.source)
			}
			continue
		}
		accepted++
		if c.source != "" {
			perSource[c.source]++
		}
		want := tierHeard
		if c.peer == nil {
			want = tierSilent
		}
		if c.tier != want {
			return fmt.Errorf("c%d (%s) has heard its peer's HELLO: %v, but is in tier %d", id, c.state, c.peer != nil, c.tier)
		}
		inTier[c.tier]++
		inTierFrom[c.tier][c.source]++
	}
	if handshaking != n.handshaking {
		return fmt.Errorf("handshaking count %d, but %d connections hold a slot", n.handshaking, handshaking)
	}
	if accepted > n.cfg.MaxHandshakes {
		return fmt.Errorf("%d accepted connections handshaking, more than the %d slots", accepted, n.cfg.MaxHandshakes)
	}
	over := 0
	for src, s := range n.sources {
		if s.handshaking != perSource[src] {
			return fmt.Errorf("source %q counts %d handshaking, but %d of its connections are", src, s.handshaking, perSource[src])
		}
		if s.handshaking > n.cfg.MaxHandshakesPerSource {
			over++
		}
		for t := tierSilent; t <= tierHeard; t++ {
			if err := n.checkList(&s.tiers[t], srcLinks, t, inTierFrom[t][src], fmt.Sprintf("%d of source %s", t, src)); err != nil {
				return err
			}
		}
	}
	for src, k := range perSource {
		if n.sources[src] == nil {
			return fmt.Errorf("source %q has %d connections handshaking but no count", src, k)
		}
	}
	if over != n.overShare {
		return fmt.Errorf("%d sources hold more than their share, but the count says %d", over, n.overShare)
	}
	for t := tierSilent; t <= tierHeard; t++ {
		if err := n.checkList(&n.tiers[t], allLinks, t, inTier[t], fmt.Sprintf("%d of all", t)); err != nil {
			return err
		}
	}
	return nil
}

// checkList walks l, the list of tier t, forward and checks its links, its
// length and its order.
func (n *Node) checkList(l *waitList, at func(*conn) *links, t tier, want int, what string) error {
	var prev *conn
	k := 0
	for c := l.head; c != nil; c = at(c).next {
		switch {
		case n.conns[c.id] != c:
			return fmt.Errorf("evictable list %s holds c%d, which is closed", what, c.id)
		case c.tier != t:
			return fmt.Errorf("evictable list %s holds c%d, which is not evictable in that tier", what, c.id)
		case at(c).prev != prev:
			return fmt.Errorf("evictable list %s: c%d's back link is wrong", what, c.id)
		case prev != nil && prev.openedAt > c.openedAt:
			return fmt.Errorf("evictable list %s: c%d is older than c%d before it", what, c.id, prev.id)
		}
		prev = c
		if k++; k > len(n.conns) {
			return fmt.Errorf("evictable list %s loops", what)
		}
	}
	if l.tail != prev {
		return fmt.Errorf("evictable list %s: the tail is not the last connection", what)
	}
	if k != want {
		return fmt.Errorf("evictable list %s holds %d connections, want %d", what, k, want)
	}
	return nil
}

// BreakSlots corrupts the bookkeeping of the handshake slots the way a
// missed update would: the negative control of CheckSlots. what is
// "count", "source", "share" or "list".
func (n *Node) BreakSlots(what string) {
	switch what {
	case "count":
		n.handshaking++
	case "source":
		for _, s := range n.sources {
			s.handshaking++
			return
		}
	case "share":
		n.overShare++
	case "list":
		if c := n.tiers[tierSilent].head; c != nil {
			n.tiers[tierSilent].head = c.all.next // c is dropped from the list but still says it is in it
		}
	}
}

// Oldest returns the oldest silent connection (the first eviction tier),
// of source src or of all (src ""), and how many are silent there; 0, 0
// when none is.
func (n *Node) Oldest(src string) (ConnID, int) { return n.oldestIn(tierSilent, src) }

// OldestHeard is Oldest for the second tier: accepted connections past
// their peer's HELLO and not confirmed sessions.
func (n *Node) OldestHeard(src string) (ConnID, int) { return n.oldestIn(tierHeard, src) }

func (n *Node) oldestIn(t tier, src string) (ConnID, int) {
	l, at := &n.tiers[t], allLinks
	if src != "" {
		s := n.sources[src]
		if s == nil {
			return 0, 0
		}
		l, at = &s.tiers[t], srcLinks
	}
	k := 0
	for c := l.head; c != nil; c = at(c).next {
		k++
	}
	if l.head == nil {
		return 0, 0
	}
	return l.head.id, k
}

// SourceOf exposes sourceOf: the source the dialer of ev counts against.
func SourceOf(ev Incoming) string { return sourceOf(ev) }

// HandshakingFrom returns how many accepted connections from source src
// (as sourceOf groups them) are handshaking, by the node's count.
func (n *Node) HandshakingFrom(src string) int {
	if s := n.sources[src]; s != nil {
		return s.handshaking
	}
	return 0
}
