package fsm

import (
	"errors"
	"fmt"

	"github.com/masterless-go/masterless/wire"
)

// Handshake slots (spec/PROTOCOL.md, 3.6). Every connection not yet
// established holds one of MaxHandshakes slots. A connection accepted when
// they are all taken neither waits nor is refused: an accepted connection
// that has not sent its HELLO (a silent one) makes room for it, the oldest
// of the source address holding the most slots if that source holds more
// than its share (MaxHandshakesPerSource), else the oldest of all. Our own
// dials, sessions and connections past their peer's HELLO are never
// evicted; only when no silent connection is left is the newcomer refused.
// Below capacity nothing is evicted, whatever a source holds: a burst of
// real dials from one host (a NAT, a mesh on one machine) costs nothing.
//
// Why: a refused newcomer lets anyone who opens connections faster than
// slots per handshake timeout keep every real node out (issue 11 measured
// 17.6 s). With eviction a silent connection lives about slots / arrival
// rate (256 / 5,000 per second = 51 ms), while a real dialer sends its
// preamble and HELLO in its first segment and stops being silent as soon as
// the acceptor reads it; and one address holding more than its share has
// its own connections evicted first, never another address's.

// ErrEvicted: an accepted connection was closed before its handshake to make
// room for a newer one: the handshake slots were full, and it was the oldest
// that had not sent its HELLO (of its source address, when that address
// held more than its share of the slots).
var ErrEvicted = errors.New("masterless: handshake slot given to a newer connection: the slots were full and this was the oldest connection that had not sent its HELLO")

// waitList holds accepted connections that have not sent their HELLO,
// oldest first, linked through the connections themselves: adding, removing
// and finding the oldest cost O(1) and no allocation.
type waitList struct{ head, tail *conn }

// links are one connection's place in a waitList.
type links struct{ prev, next *conn }

// source is what one source address holds of the handshake slots.
type source struct {
	handshaking int      // accepted connections from it not yet established
	waiting     waitList // of those, the ones that have not sent their HELLO
}

func (l *waitList) push(c *conn, at func(*conn) *links) {
	*at(c) = links{prev: l.tail}
	if l.tail != nil {
		at(l.tail).next = c
	} else {
		l.head = c
	}
	l.tail = c
}

func (l *waitList) remove(c *conn, at func(*conn) *links) {
	k := at(c)
	if k.prev != nil {
		at(k.prev).next = k.next
	} else {
		l.head = k.next
	}
	if k.next != nil {
		at(k.next).prev = k.prev
	} else {
		l.tail = k.prev
	}
	*k = links{}
}

func allLinks(c *conn) *links { return &c.all }
func srcLinks(c *conn) *links { return &c.src }

// makeRoom frees a slot for a newly accepted connection, evicting one if
// they are full; it returns why the newcomer is refused when nothing can be
// evicted.
func (n *Node) makeRoom() error {
	if n.handshaking < n.cfg.MaxHandshakes {
		return nil
	}
	if n.cfg.mutation.refuseWhenFull() {
		return fmt.Errorf("%w: %d already", ErrTooManyHandshakes, n.handshaking)
	}
	if src, s := n.greediest(); s != nil {
		n.evict(s.waiting.head, fmt.Errorf("%w: %d slots, all taken; %s held %d, more than its share of %d", ErrEvicted, n.cfg.MaxHandshakes, src, s.handshaking, n.cfg.MaxHandshakesPerSource))
		return nil
	}
	if c := n.waiting.head; c != nil {
		n.evict(c, fmt.Errorf("%w: %d slots, all taken", ErrEvicted, n.cfg.MaxHandshakes))
		return nil
	}
	return fmt.Errorf("%w: %d already, none of them evictable", ErrTooManyHandshakes, n.handshaking)
}

// greediest returns the source holding the most slots among those holding
// more than their share and having a silent connection; ties go to the one
// whose oldest silent connection is older. nil when there is none (most of
// the time: the scan runs only while some source is over its share).
func (n *Node) greediest() (string, *source) {
	if n.overShare == 0 {
		return "", nil
	}
	var best *source
	bestSrc := ""
	for src, s := range n.sources {
		if s.handshaking <= n.cfg.MaxHandshakesPerSource || s.waiting.head == nil {
			continue
		}
		if best == nil || s.handshaking > best.handshaking ||
			s.handshaking == best.handshaking && older(s.waiting.head, best.waiting.head) {
			best, bestSrc = s, src
		}
	}
	return bestSrc, best
}

// older reports whether a was opened before b (by id on a tie: the
// adapters number connections in the order they open).
func older(a, b *conn) bool {
	return a.openedAt < b.openedAt || a.openedAt == b.openedAt && a.id < b.id
}

// evict closes c, which holds a slot a newer connection needs. To the model
// it is a handshake timeout that came early.
func (n *Node) evict(c *conn, why error) {
	n.evicted++
	n.closeConn(c, wire.CodeHandshake, why)
	n.traceTimeout(c)
}

// takeSlot counts the new connection c as handshaking; an accepted one also
// against its source and as evictable until its HELLO.
func (n *Node) takeSlot(c *conn) {
	n.handshaking++
	if c.dial != nil {
		return
	}
	c.waiting = true
	n.waiting.push(c, allLinks)
	if c.source == "" {
		return
	}
	s := n.sources[c.source]
	if s == nil {
		s = &source{}
		n.sources[c.source] = s
	}
	if s.handshaking++; s.handshaking == n.cfg.MaxHandshakesPerSource+1 {
		n.overShare++
	}
	s.waiting.push(c, srcLinks)
}

// heard takes c off the evictable lists: its peer's HELLO arrived.
func (n *Node) heard(c *conn) {
	if !c.waiting {
		return
	}
	c.waiting = false
	n.waiting.remove(c, allLinks)
	if s := n.sources[c.source]; s != nil && c.source != "" {
		s.waiting.remove(c, srcLinks)
	}
}

// freeSlot gives back c's slot: it was established or closed before that.
func (n *Node) freeSlot(c *conn) {
	n.heard(c)
	n.handshaking--
	n.invariant(n.handshaking >= 0, "handshaking count below zero after c%d", c.id)
	if c.dial != nil || c.source == "" {
		return
	}
	s := n.sources[c.source]
	n.invariant(s != nil && s.handshaking > 0, "source %q of c%d has no handshake counted", c.source, c.id)
	if s.handshaking == n.cfg.MaxHandshakesPerSource+1 {
		n.overShare--
	}
	if s.handshaking--; s.handshaking == 0 {
		delete(n.sources, c.source)
	}
}

// Evicted returns how many accepted connections the node has closed to make
// room for newer ones (ErrEvicted).
func (n *Node) Evicted() uint64 { return n.evicted }
