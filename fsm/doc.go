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
// parameter, except for the sends (Send, SendMany), which are time-free: no
// rule they run reads the clock, so Step ignores their now and an adapter
// need not read its clock per message (TestSendIsTimeFree holds the node to
// it, with a negative control); timers are data, read with NextDeadline and run by a Tick that
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
// with backoff, taking its turn among the node's dials in flight
// (redials.go) so that many redials due at once do not each hold a
// descriptor at once, and those toward targets that went unanswered
// (blackholed, gone) never hold more than half of the slots; the leader grants the first connection it can, and refuses
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
//
// # Flow control: no wait cycle, and room for answers
//
// Reliable sessions (stream.go, spec/PROTOCOL.md 4.1) bound every buffer,
// and a cycle of bounded buffers across nodes is how a mesh wedges (issue
// 9). Three rules keep every chain of waits open-ended. A receiver grants
// credit for what its user consumed, never for room in its own queue, so a
// reader never waits and credit waits only for a user. A callback's Send
// never waits: past the queue's bounds it fails with ErrQueueFull. Only a
// producer outside the callbacks (SendContext) waits: for
// acknowledgements, and while the peer says its answers back up. Each ends at a user's callback, which waits for nothing.
//
// That a callback's answer is then never refused needs the producers paced
// by the answers they cause, which a node cannot see from its own side: a
// producer's requests are acknowledged as soon as the peer delivers them,
// however long the answers then wait for its own slow user. So the peer
// tells it. Node A keeps B, the cost (payload plus 32 per message) of the
// answers it has queued toward S, less the room S's credit leaves; past one
// window it sets the backlog flag in its ACKs to S, and clears it within
// half a window, sending an ACK on each flip. S's producers toward A wait
// while the flag S heard last is set. The bound, for an application whose
// callbacks answer each request (a producer's message) at most once, to its
// sender, from the callback, no larger than the request, and do not answer
// answers:
//
//   - While the flag is clear, A's answers toward S cost at most M(S) + W(A):
//     the room S's credit leaves is at most its window, which grows to
//     M(S) at most (window.go), and B at most W(A). When A sets it, at most
//     one answer more.
//   - Answers added after A set it (at t0) answer requests unanswered at t0:
//     those in A's delivery queue (unconsumed: at most A's window, M(A), as a
//     message is reported consumed after its callback returned) and those
//     S's producers sent before S applied an ACK sent after t0. Those ACKs
//     all carry the flag, S applies them in order, and until it applies the
//     first, S's count of what A acknowledged is at most what A had
//     delivered at t0: those requests were all in S's queue at once, within
//     the producers' share of it, the room A's credit left, at most M(S).
//   - So the queue toward S, A's own producers' share included, costs at
//     most 4 M + W plus two messages when both ends start at window W and
//     grow to M (2 M + 4 W with a peer of an earlier build, whose window
//     stays and whose producers keep two windows; both at most 4 M + 3 W,
//     7 W when M = W); the default bounds (QueueMessages at least
//     (M + W)/8, QueueBytes at least 5 M + 4 W) hold that for messages up
//     to a window.
//
// The flag closes no cycle: it holds producers only, never a callback's
// Send and never credit, and it clears as S's user consumes, which waits for
// nothing. A fan-out application, whose callbacks answer to other peers,
// is outside the assumption: it sends its fan-out from a producer. The
// simulator's load runs check it (sim.TestLoadAnswersHaveRoomSmallMessages,
// whose negative control runs the old pacing: fsm.MutationNoPacing), and
// the echo storms over TCP count every refused answer.
//
// # Leases
//
// A producer's message costs no step of its own when the adapter holds a
// lease (lease.go): the node grants, in an ActLease, the room left in the
// producers' share toward a peer (at most 1,024 messages and 64 KiB of
// cost), counted as queued; the adapter stages
// messages within it and hands them over in order in one Admit step, which
// queues them and writes what credit allows. The node revokes the lease at
// the end of any step after which a producer's Send would no longer be
// taken as such (the session ended, the peer's backlog flag, a large
// message waiting, shutdown, a producer's Send refused beside it); what
// was staged under it is still admitted, at once, held as queued messages
// are, and handed back as lost only toward a peer no longer held. The rules
// stay here, when to grant one included (a producer's Send accepted that a
// lease could have carried, Config.Leases): the adapter only counts within
// what it was granted. A lease also holds room for answers (Sends without
// Reserve, a callback's replies), from the slack the queue's bounds leave
// past what the bound on answers needs, so that an echo's answers are
// staged too; the Admit says which staged messages are answers (Runs), and
// they are queued as answers. The simulator runs its producers and half its
// answers through leases on half its seeds (sim.Knobs.Leases).
//
// # Batches
//
// Small messages travel in batches without a rule changing. A read's run
// of DATA frames is one DataReceived step, defined as the FrameReceived of
// each in order (TestDataReceivedIsFramesInOrder holds it to that), and
// the messages it delivers one after the other come out as one
// ActMessages holding their frames (and their count, Action.Messages). On a
// steady session (steadyData: v2, established, confirmed, resumed by the
// peer), which no DATA frame can change but by closing it, the step checks
// the session once for the run and then takes each frame's own rule
// (deliverData): the same outcome, with the per-frame dispatch through
// the transition table left out. The send queue keeps each message as
// its encoded DATA frame, so the messages a step lets go (an Admit's, those
// an ACK's credit frees) come out as one ActWriteData of consecutive frames
// of that queue, which the adapter writes as they are. Either kind is the
// per-message actions it stands for (Action.Split): the bookkeeping per
// message an action costs the adapter (an action slot, a call, an encoding)
// is paid per batch, and checkers that look at single messages split.
//
// Runs of frames of one length (records of a fixed size, a fan-out's one
// frame) are said to be so: an ActMessages says its frames' length when
// they have one (Action.FrameSize), so that the adapter cuts and hands over
// the run by arithmetic, and an Admit may say it of what the adapter
// staged (Admit.FrameSize), which the node then takes by arithmetic too.
// Walking those frames again on another CPU than the one that wrote them
// was about a tenth of a small fan-out's CPU.
package fsm
