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
// Nothing that can block runs under the core lock. Writes are appended to a
// per-connection output buffer that a writer goroutine flushes, so many small
// sends coalesce into few syscalls. User events are appended to a queue that a
// single dispatcher goroutine drains, calling the handlers one at a time.
//
// Timers are data (quinn style): after each step netio re-arms one timer to
// fsm's NextDeadline and feeds fsm.Tick when it fires. A spurious Tick is
// harmless, so the timer may fire early but is never late.
//
// Memory is bounded everywhere: a connection's output buffer has a byte bound
// (senders wait, see [Runtime.Send]), the dispatch queue has a bound (readers stop
// reading, which pushes back on the peer through TCP), a reader's buffer never
// grows past the maximum frame size, and fsm bounds its reconnect queues and
// handshaking connections.
package netio
