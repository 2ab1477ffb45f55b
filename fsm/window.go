package fsm

import "time"

// A window that grows (spec/PROTOCOL.md, section 4.1, "Credit").
//
// The credit a receiver grants does two things. It bounds what a peer can
// have waiting for this node's user (a window past what the user consumed),
// and it bounds how fast a stream goes: a sender that used its credit waits
// for the next ACK, and the ACK comes only after the receiver's user took
// messages, its node granted, and the ACK went through both ends'
// goroutines and sockets. On two CPUs that loop took long enough that a
// one-way stream of small messages with a 1 MiB window stopped for credit
// between bursts; a 4 MiB window ran it about a quarter faster
// (PERFORMANCE.md, "A window that grows, and leases of 1,024 messages").
//
// So the window of each incoming stream starts at Config.Window and follows
// the rate at which the user consumes the stream, between Window and
// MaxWindow, as QUIC and HTTP/2 implementations tune theirs: each time the
// user has taken a whole window since the last check, the window doubles if
// that took less than a quarter of windowSpan (the window held less than
// 2 ms of the stream), and halves if it took more than windowSpan. (A check
// every quarter window grew windows for streams of 128 MB/s and more at
// 1 MiB: the 16 streams of a fan-out of 16 KiB messages, about 120 MB/s
// each and faster in bursts, grew theirs for nothing, and that fan-out ran
// at 0.86 of its rate on 1.24 times the CPU. A whole window asks for
// 500 MB/s.) A user that keeps up with a fast stream gets the room that
// keeps the stream going; a slow user, or a slow stream, keeps Window, so
// what a peer can have waiting for a slow user stays small. A peer's new
// incarnation starts again at Window. Credit already granted is never taken
// back: a window that halves takes effect as the user consumes.
//
// The rule counts time, not round trips. It is built for what the credit
// loop costs between goroutines and over a LAN; over a network whose round
// trip is longer than about 2 ms a window takes a round trip at least, so
// it never grows there, and a user who wants a long fat pipe filled sets
// Window to its bandwidth-delay product. (Measuring the round trip with the
// heartbeat would let it grow there too; a sample taken behind a full
// output buffer counts the queue, not the path, and was not tried.)
//
// The sender follows with its producers' share (producerShare): the room
// the peer's credit leaves, at least Window, at most MaxWindow. Both rules
// are local to their end: the ACK carries the credit as before, and a peer
// of an earlier build sees only credit that comes sooner. What the larger
// windows do to the queue bounds that keep room for answers is in stream.go
// ("Room for answers"); Config's defaults keep that room.

// windowSpan bounds how much of a stream, at the rate its user consumes it,
// a window holds: the window grows while it holds less than a quarter of
// this (2 ms, which the credit loop's scheduling delays on a busy machine of
// two CPUs come close to) and shrinks while it holds more than all of it. At
// the 1 MiB default it takes a stream of over 500 MB/s to grow.
const windowSpan = 8 * time.Millisecond

// windowOf returns the window in now grants: between Window and MaxWindow.
func (n *Node) windowOf(in *inStream) uint64 {
	return max(in.window, uint64(n.cfg.Window))
}

// tuneWindow grows or shrinks in's window once its user has taken a whole
// window since the last check (see above). Called after each consumption
// report of in's current incarnation.
func (n *Node) tuneWindow(in *inStream) {
	w := n.windowOf(in)
	if in.consumed-in.checkConsumed < w {
		return
	}
	took := n.now - in.checkAt
	in.checkConsumed, in.checkAt = in.consumed, n.now
	switch {
	case took < windowSpan/4 && n.cfg.mutation.windowPastMax(): // deliberately wrong: see MutationWindowPastMax
		in.window = 8 * w // past MaxWindow at its first growth when MaxWindow is under 8 windows
	case took < windowSpan/4 && w < uint64(n.cfg.MaxWindow):
		in.window = min(2*w, uint64(n.cfg.MaxWindow))
		n.counters.windowsGrown++
	case took > windowSpan && w > uint64(n.cfg.Window):
		in.window = max(w/2, uint64(n.cfg.Window))
	}
}

// producerShare is the cost (payload plus msgCost per message) of the queue
// toward p up to which producers may add: the room p's credit leaves past
// what it acknowledged, at least Window, at most MaxWindow and half the
// queue's bytes. Credit lets no more go out sooner; more would only wait in
// this queue, ahead of the answers queued after it, and lengthen the peer's
// backlog flag (a share of two windows made producers of the 8-node echo
// storms wait 4 s and more, issue 9).
func (n *Node) producerShare(p *peer) uint64 {
	o := &p.out
	room := uint64(n.cfg.Window)
	if o.limit > o.ackedEnd {
		room = max(room, o.limit-o.ackedEnd)
	}
	return min(room, uint64(n.cfg.MaxWindow), uint64(n.cfg.QueueBytes/2))
}
