// Package netio runs a masterless protocol node (package fsm) over real TCP.
//
// Why it exists: the protocol lives in fsm as a pure, deterministic state
// machine that never touches a socket, a clock or a goroutine, and the bytes
// between a socket and fsm (detection, preambles, framing, buffers, encoding)
// live in package link, which does no I/O either. netio is the thin adapter
// that gives them sockets, clocks and goroutines, and it makes no protocol
// decision of its own: every "which connection survives", "when to ping",
// "when to redial" is answered by fsm, and netio only carries out what link
// asks of its sockets. The simulator (package sim) runs the same link code,
// so what it checks is what netio executes.
//
// Shape (etcd-raft style): the *fsm.Node is not safe for concurrent use, so a
// Runtime wraps it exactly once behind one mutex, the "core". Every goroutine that
// has news for the fsm (a connection's reader, the accept loop, a dial, the
// timer, a user call such as Send) takes the core lock, steps the fsm, carries
// out the resulting actions without blocking, and releases the lock. A mutex
// rather than an event-loop goroutine keeps the two hot paths short: Send
// encodes straight into the connection's output buffer from the caller's
// goroutine, and a reader steps a whole read's worth of frames under one lock,
// with no channel hop on either path.
//
// One path skips the core lock: a producer's SendContext within the lease
// the state machine granted toward its peer appends the message to the
// peer's lane under the lane's own lock, and the writer of the session
// admits the lane in one step before it writes (lane.go, fsm/lease.go).
// A Send (an answer) takes the same lane, within the room the lease holds
// for answers, while the session's writer is busy: the writer admits it
// with the producers' messages, in the order staged. A producer that sends
// to one list of peers over and over (SendManyContext) stages each frame
// once for all of them in the list's fan, within room reserved from each
// peer's lease, and each peer's writer admits from its own place in it
// (fan.go). What a lane or a fan may hold, and when it must stop, is the
// state machine's decision; they only count within it.
//
// Nothing that can block runs under the core lock. Writes are appended to a
// per-connection output buffer. The goroutine whose step appended them
// writes them itself once it drops the core lock, with one non-blocking
// write, when the connection's writer is idle or not started and the bytes
// are few: a handshake's frames, the acknowledgements a read makes due,
// heartbeats, goodbyes, and a Send to a connection that has been quiet
// (inline.go; this keeps a request answered from a callback on one
// goroutine). Anything else, and what the socket did not take, goes to
// the connection's writer goroutine, started for it if the connection has
// none, so many small sends coalesce into few syscalls. User events are
// appended to a queue that a
// single dispatcher goroutine drains, calling the handlers one at a time.
// A handler may call every method: the three that could wait for the
// dispatcher itself (Close, which waits for the handler in progress, and
// SendContext and SendManyContext, whose room may depend on it) know its
// goroutine (goid.go) and do not wait there.
//
// Goroutines: four per Runtime (the accept loop, the timer, the
// dispatcher, and the lag probe's reader, lagprobe.go, which also holds a
// pipe's two descriptors), one per dial in flight until it connects or
// fails, and per connection a reader, plus a writer while the connection
// has more to write than its inline writes take; a connection refused as
// it is accepted gets none. The reader exists because Go reads a socket by
// blocking a goroutine in Read (the runtime's poller parks it at no CPU
// cost). The writer exists because nothing may block under the core lock,
// nor in a user's call: a peer that stops reading fills its socket buffer,
// and a write that waited for it in the goroutine that stepped the fsm
// would stall every other connection, timer and user call of the node;
// with a writer per connection only that connection's writer waits
// (bounded by the peer timeout), and the sends that pile up meanwhile go
// out in one syscall. A connection starts without a writer, gets one at
// its first write that is not made inline (a stream of sends, a
// producer's lane, a write the socket did not take whole, TLS, whose
// writes may block), and on plain TCP on unix systems the writer ends once
// it has had nothing to write for a while (conn.go, writerState; a TLS
// connection, never written inline, keeps it, and so does every
// connection elsewhere: inline_other.go). So an idle plain-TCP connection, even
// after a burst, costs one goroutine, parked with a small stack (about 4 KiB,
// measured in TestIdlePeerMemory, outside the heap; 8 KiB with a writer
// beside it); the memory it holds while idle is small buffers only (see
// below).
//
// Timers are data (quinn style): after each step netio re-arms one timer to
// fsm's NextDeadline and feeds fsm.Tick when it fires. A spurious Tick is
// harmless, so the timer may fire early but is never late. Each Tick
// carries the lag probe's measure of how late the goroutines the network
// wakes run (Tick.Lag), which a process starved by its own goroutines
// shows and its timer does not.
//
// With Config.TLS (an identity: spec/PROTOCOL.md, section 7.2) a dial runs
// the TLS 1.3 client handshake right after the TCP connect, and an accepted
// connection's reader reads its first byte itself: a TLS record (0x16,
// wire.DetectTLS) gets the server handshake, anything else goes to the
// connection layer as read. Both handshakes run on the dial goroutine or the
// reader, never under the core lock, and an accepted one is bounded by the
// handshake timeout from the accept. netio reports the id the peer's
// certificate proved (link.DialedAuth, link.Authenticated) and
// decides nothing with it: the state machine refuses a HELLO naming another
// id, and plaintext when it requires authentication.
//
// Memory is bounded everywhere. On a v2 session fsm's credit does it: a peer
// sends at most a window beyond what the user consumed, so the dispatch queue
// holds at most that per peer and readers never stop reading; what this node
// sends waits in fsm's bounded per-peer queue, and Send never waits. On a
// masterless 0.4.1 session, which has no credit, a connection's output
// buffer has a byte bound (Send waits, see [Runtime.Send]) and the dispatch
// queue has one (the reader stops reading, which pushes back on the peer
// through TCP). A reader's buffer never grows past the maximum frame size,
// and fsm bounds handshaking connections.
//
// Buffers are taken on demand and given back when idle: a connection's read
// buffer is 128 bytes until its preamble checks out and shrinks back to
// 4 KiB once reads are small again (package link); a writer's output
// buffers grow with a burst and are dropped, down to 1 KiB, when the writer
// goes idle after a small write or ends (at the latest the next
// heartbeat), and an inline write keeps none larger; fsm
// drops a peer's stream buffers at a heartbeat that finds nothing
// unacknowledged. TestIdlePeerMemory (package masterless) measures about
// 3-4 KiB of heap per idle connected peer, and 6-8 KiB after a burst
// that grew every buffer.
package netio
