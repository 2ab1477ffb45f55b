// Package fsm is the whole masterless protocol for one node, as a pure,
// deterministic state machine.
//
// # Why a state machine
//
// The hard part of a mesh is not moving bytes but deciding, when two nodes
// open several TCP connections to each other at once (both dial, one dials
// three times, a peer restarts), which one survives. Such bugs live in
// interleavings. Keeping every decision here, with no goroutines, sockets,
// clocks, locks or global randomness, lets the same code run under the real
// adapter (package netio), under a deterministic simulator that explores
// interleavings from a seed (package sim), and event by event in transcript
// tests (testdata/fsm). Same inputs, same outputs.
//
// The shape follows etcd's raft and quinn-proto: one entry point, Step(now,
// event), whose effects are collected and handed out together by Ready as
// Actions (dial, write a frame, close, tell the user); time is always a
// parameter; timers are data, read with NextDeadline and run by a Tick that
// is harmless when early and visits only what is due (deadlines.go), so its
// cost does not grow with the number of peers. The frame transitions live in one table
// (table.go); a peer's protocol violation closes that connection with a
// reason, never panics; a broken internal invariant panics with context.
//
// # The rule
//
// For each pair of nodes, the node with the greater id is the pair's leader.
// Only the leader decides which connection becomes the pair's session: it
// grants one with WELCOME, numbering sessions 1, 2, 3, ... per incarnation.
// The follower never decides; it adopts what the leader grants. The rule is
// computed identically at both ends from the ids alone, so there is no tie
// and no randomness (compare Erlang's name order and BGP's identifier rule;
// contrast masterless 0.4.1's random priorities, whose ties were a TODO).
//
// The leader grants a connection at once when it has no session with the
// peer, or only one from an older incarnation of the peer (a restart). When a
// session with the same incarnation exists, a new connection waits for the
// follower's JOIN, which says the greatest session number the follower has
// closed: if that covers the current session, the follower has already given
// it up (it timed out, or its user disconnected) and the leader replaces it at
// once; otherwise the new connection is a duplicate and is closed.
//
// # Why exactly one session survives
//
// At most one per end: a node holds at most one established connection per
// peer, and every path that establishes one first closes the previous one.
//
// Both ends agree: the follower holds only sessions the leader granted, and
// the leader closes a session before granting the next. So if the ends hold
// different sessions, the leader has already closed the follower's: it is a
// dead connection whose FIN is in flight. Among live connections the ends
// always agree, and once the messages in flight are delivered they agree
// outright.
//
// A session exists when wanted: a kept peer without a session is redialed
// with backoff; the leader grants the first connection it can, and refuses
// one only while the follower still holds, or is about to receive, the
// current session, which then serves the pair. Every wait has a deadline
// (handshake timeout, peer timeout, reconnect backoff), so a lost race costs
// a retry, never a wedge.
//
// No loss on duplicates: DATA flows only on the session, and a duplicate is
// closed before it carries any, so a duplicate dial while data flows loses,
// reorders or repeats nothing on the session.
//
// # Discovery (optional)
//
// With Config.Discovery, nodes tell each other over their sessions which
// members they know (MEMBERS frames, negotiated by a preamble feature bit so
// that v2 nodes without it are unaffected), and keep every live member they
// learn of; Shutdown announces a leave before each BYE. Discovery never
// chooses a session: the rule above does. It only chooses who dials and
// when: the follower of a discovered pair dials first, the leader only after
// LeaderDelay without a session, and each node paces its discovery dials. So
// a mesh forming from one seed opens one TCP connection per pair when
// nothing fails. The rules and their bound are in discovery.go and
// spec/PROTOCOL.md, section 8; seeds.go keeps a Connect's address until a
// node answers there.
//
// The argument is checked three ways: exhaustively for small meshes by TLC
// (tla/), over random interleavings with faults by the simulator's sweeps
// (sim/), and against the invariants in package spec after every simulated
// step. spec/PROTOCOL.md is the normative description.
package fsm
