package fsm

import (
	"errors"
	"fmt"
	"time"

	"github.com/masterless-go/masterless/wire"
)

// Handshake slots (spec/PROTOCOL.md, 3.6). Every connection not yet
// established, and every v1 session the other end has not confirmed yet,
// holds one of MaxHandshakes slots. A connection accepted when they are all
// taken neither waits nor is refused: an accepted connection makes room for
// it. One of the source address holding the most slots if that source holds
// more than its share (MaxHandshakesPerSource), else one of all; of those,
// in two tiers, the oldest silent one (accepted, no HELLO yet), unless it is
// a newcomer (younger than silentGrace and than the oldest of the second
// tier), else the oldest of the accepted ones past their peer's HELLO and
// not yet confirmed sessions. Our own dials and confirmed sessions
// are never evicted; only when nothing else holds a slot is the newcomer
// refused. Below capacity nothing is evicted, whatever a source holds: a
// burst of real dials from one host (a NAT, a mesh on one machine) costs
// nothing.
//
// Why: a refused newcomer lets anyone who opens connections faster than
// slots per handshake timeout keep every real node out (issue 11 measured
// 17.6 s). With eviction a silent connection lives about slots / arrival
// rate (256 / 5,000 per second = 51 ms), while a real dialer sends its
// preamble and HELLO in its first segment and stops being silent as soon as
// the acceptor reads it; and one address holding more than its share has
// its own connections evicted first, never another address's. The second
// tier is for a flood whose connections each send a HELLO and then nothing
// (a black-box audit kept every real node out with 51 such connections a
// second): a real handshake ends within a round trip of its HELLO, so the
// oldest of those past their HELLO is the one least likely to finish; and a
// leader's grant on a bare HELLO keeps its slot until the follower confirms
// it, within the handshake timeout, so such grants are capped too.

// ErrEvicted: an accepted connection was closed before its handshake ended
// to make room for a newer one: the handshake slots were full, and it was
// the oldest that had not sent its HELLO, or the oldest past its HELLO and
// not yet a confirmed session when none was silent or the silent ones had
// just been accepted (of its source address, when that address held more
// than its share of the slots). A real dialer
// whose connection is evicted tries again as after any failed handshake.
var ErrEvicted = errors.New("masterless: handshake slot given to a newer connection (the handshake slots were full)")

// waitList holds accepted connections of one tier (silent, or past their
// HELLO), oldest first, linked through the connections themselves: adding,
// removing and finding the oldest cost O(1) and no allocation.
type waitList struct{ head, tail *conn }

// links are one connection's place in a waitList.
type links struct{ prev, next *conn }

// tier is which eviction tier an accepted connection holding a slot is in.
type tier uint8

const (
	tierNone   tier = iota // not evictable: our dial, or no slot held
	tierSilent             // accepted, its peer's HELLO not arrived
	tierHeard              // accepted, past its peer's HELLO, not a confirmed session
)

// source is what one source address holds of the handshake slots.
type source struct {
	handshaking int                     // accepted connections from it holding a slot
	tiers       [tierHeard + 1]waitList // of those, each tier's
}

// push adds c in its place by age: after the last connection opened no
// later than it. Connections mostly enter a tier in the order they opened,
// so the walk back from the tail is short; one whose HELLO came late walks
// past the ones that opened after it and were heard first (at most the
// slots).
func (l *waitList) push(c *conn, at func(*conn) *links) {
	prev := l.tail
	for prev != nil && older(c, prev) {
		prev = at(prev).prev
	}
	var next *conn
	if prev != nil {
		next = at(prev).next
		at(prev).next = c
	} else {
		next = l.head
		l.head = c
	}
	if next != nil {
		at(next).prev = c
	} else {
		l.tail = c
	}
	*at(c) = links{prev: prev, next: next}
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
// evicted (spec/PROTOCOL.md 3.6). While some source holds more than its
// share, the victim is one of the source holding the most; otherwise one of
// all. Among those, victim picks the oldest silent connection unless it is
// a newcomer (younger than silentGrace and than the oldest connection past
// its HELLO), else the oldest past its HELLO.
func (n *Node) makeRoom() error {
	if n.handshaking < n.cfg.MaxHandshakes {
		return nil
	}
	if n.cfg.mutation.refuseWhenFull() {
		return fmt.Errorf("%w: %d already", ErrTooManyHandshakes, n.handshaking)
	}
	if n.cfg.mutation.silentFirst() { // deliberately wrong: see MutationSilentFirst
		return n.makeRoomSilentFirst()
	}
	if src, s := n.greediest((*source).oldest); s != nil {
		c, what := n.victim(&s.tiers)
		n.evict(c, fmt.Errorf("%w: %d slots, all taken; %s held %d, more than its share of %d; its oldest %s", ErrEvicted, n.cfg.MaxHandshakes, src, s.handshaking, n.cfg.MaxHandshakesPerSource, what))
		return nil
	}
	if c, what := n.victim(&n.tiers); c != nil {
		n.evict(c, fmt.Errorf("%w: %d slots, all taken; the oldest %s", ErrEvicted, n.cfg.MaxHandshakes, what))
		return nil
	}
	return fmt.Errorf("%w: %d already, none of them evictable (this node's own dials)", ErrTooManyHandshakes, n.handshaking)
}

// makeRoomSilentFirst is makeRoom before the silent grace, for
// MutationSilentFirst: the silent tier first, then the one past the HELLO;
// within each, the oldest of the source holding the most if over its
// share, else the oldest of all.
func (n *Node) makeRoomSilentFirst() error {
	for _, t := range []tier{tierSilent, tierHeard} {
		c := n.tiers[t].head
		if _, s := n.greediest(func(s *source) *conn { return s.tiers[t].head }); s != nil {
			c = s.tiers[t].head
		}
		if c != nil {
			n.evict(c, fmt.Errorf("%w: %d slots, all taken (silent first)", ErrEvicted, n.cfg.MaxHandshakes))
			return nil
		}
	}
	return fmt.Errorf("%w: %d already, none of them evictable (this node's own dials)", ErrTooManyHandshakes, n.handshaking)
}

// victim returns the connection to evict among the tiers t (all of them, or
// one source's) and what it is, nil if they are empty: the oldest silent
// one, unless it is younger than silentGrace and than the oldest past its
// HELLO, which then goes instead.
func (n *Node) victim(t *[tierHeard + 1]waitList) (*conn, string) {
	silent, heard := t[tierSilent].head, t[tierHeard].head
	switch {
	case silent != nil && (heard == nil || n.now-silent.openedAt >= silentGrace || older(silent, heard)):
		if heard == nil {
			return silent, "silent"
		}
		return silent, "silent, before those past their HELLO"
	case heard != nil && silent != nil:
		return heard, fmt.Sprintf("past its HELLO, the silent ones being younger than %v and than it", silentGrace)
	case heard != nil:
		return heard, "past its HELLO, none being silent"
	}
	return nil, ""
}

// silentGrace is how long an accepted connection may stay silent before it
// is evicted ahead of one past its HELLO. A real dialer writes its preamble
// and HELLO as soon as TCP connects, so its HELLO comes with the
// connection's first segment, and it is silent only until the node has read
// that: netio reads what is in when it accepts the connection (readEarly),
// else its reader does, microseconds to a few milliseconds later on a busy
// machine.
// During a flood of connections that each send a HELLO and then nothing,
// the silent tier holds only such newcomers; evicting its oldest first
// evicted nearly every real dialer while hundreds of the flood's waited
// past their HELLO (a black-box audit: 12 to 20 of 20 first Connects failed
// at about 27,000 connections a second; at a paced 17,000, 1 to 12, median
// 2, against 0 to 1 with the grace). A silent flood still goes first
// while its connections live longer than this: below 256 slots / 5 ms, about
// 51,000 connections a second with the default slots.
const silentGrace = 5 * time.Millisecond

// greediest returns the source holding the most slots among those holding
// more than their share and having a connection first(s) returns (its
// oldest evictable one: source.oldest); ties go to the one whose first is
// older. nil when there is none (most of the time: the scan runs only while
// some source is over its share).
func (n *Node) greediest(first func(*source) *conn) (string, *source) {
	if n.overShare == 0 {
		return "", nil
	}
	var best *source
	bestSrc := ""
	for src, s := range n.sources {
		if s.handshaking <= n.cfg.MaxHandshakesPerSource || first(s) == nil {
			continue
		}
		if best == nil || s.handshaking > best.handshaking ||
			s.handshaking == best.handshaking && older(first(s), first(best)) {
			best, bestSrc = s, src
		}
	}
	return bestSrc, best
}

// oldest is the oldest evictable connection of s, in either tier; nil if
// none.
func (s *source) oldest() *conn {
	a, b := s.tiers[tierSilent].head, s.tiers[tierHeard].head
	if a == nil || (b != nil && older(b, a)) {
		return b
	}
	return a
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
	if c.tier == tierSilent {
		n.evictedSilent++
	}
	n.closeConn(c, wire.CodeHandshake, why)
	n.traceTimeout(c)
}

// takeSlot counts the new connection c as handshaking; an accepted one also
// against its source and as silent (evictable first) until its HELLO.
func (n *Node) takeSlot(c *conn) {
	n.handshaking++
	c.slot = true
	if c.dial != nil {
		return
	}
	if c.source != "" {
		s := n.sources[c.source]
		if s == nil {
			s = &source{}
			n.sources[c.source] = s
		}
		if s.handshaking++; s.handshaking == n.cfg.MaxHandshakesPerSource+1 {
			n.overShare++
		}
	}
	n.enterTier(c, tierSilent)
}

// enterTier moves accepted connection c into eviction tier t (tierNone:
// out of the lists).
func (n *Node) enterTier(c *conn, t tier) {
	if c.tier == t {
		return
	}
	s := n.sources[c.source]
	if c.source == "" {
		s = nil
	}
	if c.tier != tierNone {
		n.tiers[c.tier].remove(c, allLinks)
		if s != nil {
			s.tiers[c.tier].remove(c, srcLinks)
		}
	}
	c.tier = t
	if t != tierNone {
		n.tiers[t].push(c, allLinks)
		if s != nil {
			s.tiers[t].push(c, srcLinks)
		}
	}
}

// heard moves c to the second tier: its peer's HELLO arrived.
func (n *Node) heard(c *conn) {
	if c.tier == tierSilent {
		n.enterTier(c, tierHeard)
	}
}

// freeSlot gives back c's slot, if it holds one: it was established (a v1
// session once confirmed) or closed before that.
func (n *Node) freeSlot(c *conn) {
	if !c.slot {
		return
	}
	c.slot = false
	n.enterTier(c, tierNone)
	n.handshaking--
	if n.handshaking < 0 {
		n.broken("handshaking count below zero after c%d", c.id)
	}
	if c.dial != nil || c.source == "" {
		return
	}
	s := n.sources[c.source]
	if s == nil || s.handshaking <= 0 {
		n.broken("source %q of c%d has no handshake counted", c.source, c.id)
	}
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

// EvictedSilent returns how many of those (Evicted) were silent: their
// peer's HELLO not read yet.
func (n *Node) EvictedSilent() uint64 { return n.evictedSilent }
