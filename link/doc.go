// Package link is the connection layer of a masterless node: everything
// between a socket's bytes and the protocol's state machine, with no I/O.
//
// # Why a layer of its own
//
// Package fsm decides; it speaks in frames. Something must turn the bytes a
// socket reads into those frames and the frames fsm writes into bytes: tell
// a v1 dialer from a masterless 0.4.1 one by its first bytes, check the v1
// preamble, cut the stream into frames, pick how a 0.4.1 message is read
// from where its connection is in the handshake, size the input buffer to the
// frame in progress, encode what fsm writes, and carry out fsm's actions on
// the connections. If the production adapter (netio) and the simulator (sim)
// each did this themselves, the simulator would check its own copy and the
// bugs of the copy users run would stay out of reach. So both drive the same
// Layer: netio with real sockets, goroutines and a lock; sim with simulated
// streams in one goroutine. Only the socket below it differs, as in
// FoundationDB's simulation and TigerBeetle's VOPR.
//
// # Shape
//
// A Layer owns one *fsm.Node and is driven like it: by one goroutine at a
// time (netio holds its core lock), with the time always a parameter. The
// driver reports what its sockets did (Incoming, Dialed, DialFailed,
// Received, Closed; DialedAuth, IncomingAuth and Authenticated when a security
// handshake below the Layer proved the peer's id, so the bytes it reports
// are the decrypted ones) and the user's commands (Step, Send, SendMany); the Layer
// steps the state machine and carries out its actions through the driver's
// Transport: bytes to write, connections to close, dials to start, and the
// notifications meant for the user. Reading is zero-copy: the driver reads a
// socket straight into the slice ReadBuffer returns and reports how many
// bytes arrived; a message payload handed to Notify aliases that buffer and
// is valid only during the call.
//
// Small messages go in batches (fsm/doc.go, "Batches"): the whole DATA
// frames a read completed are one step of the state machine
// (fsm.DataReceived), whose messages come to Notify as one ActMessages of
// their frames; and the DATA frames a step lets go from a send queue come as
// one ActWriteData, written as they are. A delivery queue (Turns) may hold
// such a run as one item: its Count and Cut let it take turns by message
// all the same.
//
// # Rules that are not here
//
// No protocol rule lives in this package. Which connection survives, when a
// handshake or a silent peer times out (including an accepted connection
// whose dialer never says which protocol it speaks), how many connections
// may handshake at once: all of it is fsm's, with its deadlines in
// fsm.Node.NextDeadline. This package only frames bytes; its one judgement,
// the protocol a dialer speaks, is read off the bytes by wire.DetectLegacy.
package link
