package fsm

import (
	"errors"
	"fmt"

	"github.com/masterless-go/masterless/wire"
)

// Handshake slots (spec/PROTOCOL.md, 3.6). Every connection not yet
// established holds one of MaxHandshakes slots, and the accepted ones also
// one of MaxHandshakesPerSource slots of their source address. A connection
// that arrives when its source's slots, or all slots, are taken does not
// wait and is not refused: the oldest accepted connection that has not sent
// its HELLO (of that source, or of any) makes room for it. Our own dials
// and connections past their peer's HELLO are never evicted; only when none
// is left to evict is the newcomer refused.
//
// Why: a refused newcomer lets anyone who opens connections faster than the
// handshake timeout keep every real node out (issue 11 measured 17.6 s).
// With eviction each silent connection lives at most about slots / arrival
// rate (256 / 5,000 per second = 51 ms), while a real dialer sends its
// preamble and HELLO in its first segment and so leaves the evictable set as
// soon as the acceptor reads it.

// ErrEvicted: an accepted connection was closed before its handshake to make
// room for a newer one: every handshake slot (or every slot of its source
// address) was taken, and it was the oldest that had not sent its HELLO.
var ErrEvicted = errors.New("masterless: handshake slot given to a newer connection: the slots were full and this was the oldest connection that had not sent its HELLO")

// waitList holds accepted connections that have not sent their HELLO,
// oldest first, linked through the connections themselves: adding, removing
// and finding the oldest cost O(1) and no allocation.
type waitList struct{ head, tail *conn }

// links are one connection's place in a waitList.
type links struct{ prev, next *conn }

// source is one source address's share of the handshake slots.
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

// makeRoom frees a slot for a connection accepted from src, evicting if it
// must; it returns why the newcomer is refused when nothing can be evicted,
// and then evicts nothing.
func (n *Node) makeRoom(src string) error {
	var fromSrc, fromAll *conn
	busy := n.handshaking
	if s := n.sources[src]; src != "" && s != nil && s.handshaking >= n.cfg.MaxHandshakesPerSource {
		if fromSrc = s.waiting.head; fromSrc == nil || n.cfg.mutation.noEviction() {
			return fmt.Errorf("%w: %d from %s already, every one past its HELLO", ErrTooManyHandshakes, s.handshaking, src)
		}
		busy--
	}
	if busy >= n.cfg.MaxHandshakes {
		if fromAll = n.waiting.head; fromAll == fromSrc && fromAll != nil {
			fromAll = fromAll.all.next
		}
		if fromAll == nil || n.cfg.mutation.noEviction() {
			return fmt.Errorf("%w: %d already, none of them evictable", ErrTooManyHandshakes, n.handshaking)
		}
	}
	if fromSrc != nil {
		n.evict(fromSrc, fmt.Errorf("%w: %d slots per source address, all taken by %s", ErrEvicted, n.cfg.MaxHandshakesPerSource, src))
	}
	if fromAll != nil {
		n.evict(fromAll, fmt.Errorf("%w: %d slots, all taken", ErrEvicted, n.cfg.MaxHandshakes))
	}
	return nil
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
	s.handshaking++
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
	if s.handshaking--; s.handshaking == 0 {
		delete(n.sources, c.source)
	}
}

// Evicted returns how many accepted connections the node has closed to make
// room for newer ones (ErrEvicted).
func (n *Node) Evicted() uint64 { return n.evicted }
