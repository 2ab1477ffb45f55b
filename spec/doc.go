// Package spec is the executable specification of the masterless protocol.
//
// PROTOCOL.md (next to this file) states the rules in prose; this package
// states what must always be true of a running system, as plain Go functions
// over a [Snapshot] of every node and the network between them. The same
// functions are called by the deterministic simulator (package sim) after
// every step and by the rapid property tests, so there is exactly one
// definition of "correct"; the TLA+ model (tla/) states the same properties
// for TLC, and the traces TLC validates are written in this package's trace
// format (TraceLine).
//
// Why functions over snapshots and not assertions inside the fsm: a node sees
// only its own half of every connection. The interesting properties ("both
// ends agree which connection is the session") are about pairs of nodes and
// the wire between them, which only an observer of the whole system can
// check. Each invariant returns a descriptive error naming the nodes and
// connections involved, never a bare bool, so a failing simulator seed reads
// like a bug report.
//
// Invariants come in two kinds:
//
//   - safety ([CheckSafety]): must hold after every single step, whatever the
//     network does;
//   - quiescence ([CheckQuiescent]): must hold once nothing is in flight and no
//     pending timer can change the state — the "eventually" half.
//
// With an adversary in the network (processes that are not in
// Snapshot.Nodes: spec/PROTOCOL.md 7.1), two more invariants say it gets
// nowhere: [NoImpersonation] (via [CheckAdversary], after every step: no
// honest node takes an adversary's connection for an honest id's, so the
// adversary never holds a session of an honest pair) and [NoEviction] (on
// every session an honest node closes: never while it handles an
// adversary's connection). The simulator's TestSweepAdversary checks them
// with authentication on, and its negative controls without it and with the
// fsm's HELLO id check skipped.
//
// Deliveries are checked incrementally by a [DeliveryChecker] (never twice,
// never out of order), so that a long run does not rescan its whole history
// after each step, and a [StreamLedger] says at quiescence that no accepted
// message vanished (delivered, or reported lost to its sender): together,
// exactly-once in-order delivery within a pair of incarnations. A
// [LostLedger] says the rest of the guarantee across sessions
// (no-lost-while-kept): while both processes of a pair live and one of them
// keeps the pair, a node hands messages back as lost only once its peer has
// stayed away for the reconnect grace, however the connection broke and
// whichever end keeps the pair.
//
// [NoProtocolErrorBetweenHonest] (no-protocol-error) holds every BYE a
// node writes in a world of honest nodes to the rule that none of them ever
// gives another cause to close with BYE protocol error.
//
// Under load, a [LoadChecker] and [CheckLoadProgress] state steady-under-load
// (PROTOCOL.md 4.1): under continuous two-way load without faults, no
// session ends and no pair's delivery to the user stalls past a bound. The
// simulator's load sweep checks it in virtual time against bounded socket
// buffers and delivery queues; the echo storms over TCP check it on the wall
// clock.
package spec
