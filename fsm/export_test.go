package fsm

import (
	"fmt"
	"reflect"
	"time"
)

// CheckRedialTurn is CheckTimers' check of the redial queue alone
// (checkRedialTurn), for its negative control.
func (n *Node) CheckRedialTurn() error { return n.checkRedialTurn() }

// RedialsWaiting returns how many automatic dials wait for their turn, in
// both lines (entries that no longer need one included until they reach
// the head).
func (n *Node) RedialsWaiting() int { return len(n.redials) + len(n.redialsSlow) }

// SlowRedials returns how many automatic dials wait in the slow line, and
// how many slow dials are in flight.
func (n *Node) SlowRedials() (waiting, inFlight int) { return len(n.redialsSlow), n.slowDials }

// RedialHead returns what heads the queue of automatic dials waiting for a
// turn (redials.go), the line of the others first: a peer's id, or a kept
// address; "" when none waits.
func (n *Node) RedialHead() string {
	q := n.redials
	if len(q) == 0 {
		q = n.redialsSlow
	}
	if len(q) == 0 {
		return ""
	}
	if p := q[0].peer; p != nil {
		return p.id
	}
	return q[0].seed.addr
}

// TimerPops returns how many entries Ticks have taken off the node's
// timers, live or stale: the work its Ticks did.
func (n *Node) TimerPops() uint64 {
	t := &n.timers
	return t.conns.pops + t.dials.pops + t.reqs.pops + t.peers.pops
}

// DropPeerTimer forgets peer id's timer, as a missing arm would: the
// negative control of CheckTimers.
func (n *Node) DropPeerTimer(id string) {
	if p := n.peers[id]; p != nil {
		p.timer = timer{}
		n.timers.peers.reset()
	}
}

// BreakStreamTail moves the tail of the stream to peer off its last message,
// for CheckStreams' negative control.
func (n *Node) BreakStreamTail(peer string) { n.peers[peer].out.tail++ }

// ForgetSendPeer drops peer's record as maybeForgetPeer does, but leaves it
// remembered as the peer of the latest Send, for CheckStreams' negative
// control.
func (n *Node) ForgetSendPeer(peer string) {
	n.sentTo = n.peers[peer]
	delete(n.peers, peer)
}

// DropManyPeer drops peer's record from peers without marking it
// forgotten, as maybeForgetPeer would, while a SendMany remembers it, for
// CheckStreams' negative control.
func (n *Node) DropManyPeer(peer string) { delete(n.peers, peer) }

// CheckActionSlots cleans the action slots the last Ready handed over, as
// the next Step does, and reports a slot left with a field set: clean
// clears only some fields of DATA writes and messages, which holds only
// while nothing else sets another field of those actions.
func (n *Node) CheckActionSlots() error {
	n.clean()
	for i, a := range n.out[:cap(n.out)] {
		if !reflect.ValueOf(a).IsZero() {
			return fmt.Errorf("action slot %d not clear after clean: %+v", i, a)
		}
	}
	return nil
}

// SharedCopies returns, for each message queued toward peer, the shared
// copy it keeps (nil when the stream holds its own), for the tests of
// SendMany's shared payloads.
func (n *Node) SharedCopies(peer string) []*[]byte {
	var out []*[]byte
	for _, r := range n.peers[peer].out.runs {
		for range r.count {
			out = append(out, r.shared)
		}
	}
	return out
}

// StreamBufCap is the capacity of the segments holding the messages queued
// for peer, spares included (0 without any).
func (n *Node) StreamBufCap(peer string) int {
	p := n.peers[peer]
	if p == nil {
		return 0
	}
	return p.out.segmentsCap()
}

// LastRecv returns when connection id last received a frame (0 for a
// connection the node does not hold), for the tests that compare a run of
// DATA taken in one step with its frames taken one by one.
func (n *Node) LastRecv(id ConnID) time.Duration {
	if c := n.conns[id]; c != nil {
		return c.lastRecv
	}
	return 0
}

// AnswersQueued returns the cost of the messages queued toward peer that
// are answers (sent without Reserve), as the backlog flag counts them.
func (n *Node) AnswersQueued(peer string) uint64 {
	o := &n.peers[peer].out
	return o.queued() - o.reserved
}
