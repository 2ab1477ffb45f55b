// Package sim is a deterministic network simulator for masterless.
//
// It runs many real nodes in one goroutine, each a [fsm.Node] driven by the
// same connection layer ([link.Layer]) that the production adapter (netio)
// runs: protocol detection, preambles, framing, buffers and the carrying out
// of the state machine's actions are the production code's. The simulator
// replaces only what lies below the socket: per-connection FIFO byte streams
// with latency, reads of whatever size the layer's buffer offers, and the
// faults. Nothing is mocked above the socket: the bytes, the codec and the
// rules are the real ones.
//
// Why a simulator (in the style of FoundationDB's simulation and
// TigerBeetle's VOPR): the bugs that matter in a duplicate-connection protocol
// live in rare interleavings — simultaneous dials, a FIN racing a grant, a
// restart whose old connection never closes. Real sockets and timers cannot
// reproduce them on demand. Here every source of nondeterminism is one
// [Chooser] seeded from a single seed (or driven by rapid, which can then
// shrink a failure), time is virtual and jumps to the next deadline, and maps
// are always iterated in sorted order. A failing seed therefore replays byte
// for byte, and a sweep over thousands of seeds explores more interleavings
// in a minute than a real cluster sees in a year.
//
// A simulated user takes each delivered message off its queue after a short
// random delay (the Consumed event), which is what grants the sender credit
// again, so the flow control of reliable sessions runs as in production.
//
// Half the seeds of the random sweeps, and every load run, bound the socket
// buffers of each direction of a connection (Knobs.SockBuf, sockets.go):
// what a writer cannot hand to the kernel waits in the adapter's output
// buffer, a Write that cannot complete within the peer timeout fails the
// connection, and a closing connection that cannot drain within the linger
// time is reset, as in netio.
//
// Starved timers (Knobs.LateTicks, TestSweepLateTicks): half of a node's
// Ticks come up to a few heartbeats late while bytes arrive on time, as in a
// process starved of CPU, which exercises fsm's rule for a node's own pause
// (a late Tick gives the sessions it would time out a grace): in 2,000 such
// seeds the safety invariants hold, every run heals, and the peer-timeout
// BYEs are far fewer than with the rule taken out (350 against 492 when last
// counted).
//
// Stalled readers (Knobs.LateReads, TestSweepLateReads, stall.go): a
// node's readers stall for up to three heartbeats while its timer runs on
// time, and each Tick says how long in Tick.Lag, as netio's lag probe does:
// in 2,000 seeds the peer-timeout BYEs are 48, and 791 with the Lag ignored
// (fsm.MutationIgnoreLag; TestSweepLateReadsCatchesIgnoredLag runs 500 of
// them: 15 against 218; counts of 2026-12-04).
//
// SendMany (Knobs.SendMany, TestSweepSendMany, user.go): half the random
// bursts of sends are one fsm.SendMany to several nodes, stepped through
// the connection layer's encode-once path as netio's SendMany is, with a
// payload that names each destination's own sequence number
// (spec.AppendManyPayload), so that every delivery check holds per pair
// as for Send; half of them are 600 bytes, which the streams share as one
// copy. The simulator overwrites the payload after each step, as a caller
// may: a node that kept the caller's bytes (fsm.MutationSharedNoCopy,
// TestSweepSendManyCatchesSharedNoCopy) delivers garbage at the second seed.
// On seeds with Knobs.Leases too, half the SendManys are a producer's
// (producerSendMany, as netio's SendManyContext): a payload below
// fsm.SharedMin is staged in the lane of each peer whose lease has room,
// and the others take the step with Reserve, which may grant them leases.
// Under Knobs.Leases half the answers (Sends without Reserve) are staged in
// the room a lease holds for answers, when it has some (answerSend), as
// netio's Send is while the session's writer is busy; half the load runs'
// seeds (DrawLoadKnobs) have leases.
//
// Load runs (Knobs.Workload, load.go) model the rest of the adapter: one
// delivery queue per node drained by a dispatcher that calls a Message
// callback per message, callbacks that answer what they receive (echo, or
// fan-out to every node) with Send, producers that send with SendContext's
// semantics (wait for room), and netio's blocking rules exactly where netio
// has them: on a connection that is not flow controlled (0.4.1), the reader
// stops reading while the delivery queue is over its bound and a Send waits
// while the output buffer is over SendBuffer (sockets.go, app.go). The full
// mesh is put under continuous two-way load without faults, and
// spec.CheckLoadProgress (steady-under-load) must hold throughout: no session
// ends, and no pair's delivery to its callback stalls longer than
// Knobs.StallBound (two heartbeats, the round trips for bytes behind a
// window in the socket buffers, twice the time to drain a window from every
// peer from the delivery queue: a loose bound since that queue takes turns
// among the peers, link.Turns, as netio's does). TestSweepLoad runs 40 such seeds; its
// negative control, TestSweepLoadCatchesNoCredit, brings back the blocking
// design (fsm.MutationNoCredit) and must see the wedge of issue 9 (callbacks
// waiting in Send on each other, readers that stop reading): delivery
// stalled past its bound, or the peer timeout dropping healthy sessions.
//
// Each run has two phases. In the safety phase users issue random commands
// and faults are injected (swarm testing: each seed enables a random subset of
// fault kinds, see [Knobs]); the safety invariants of package spec are checked
// after every single step. Then the healing phase stops all faults and
// commands, restarts crashed nodes, and requires the system to reach
// quiescence, with spec.CheckQuiescent holding, within a bounded virtual time.
//
// Besides the invariants of the mesh, a world checks each node's own
// bookkeeping, what the fsm's fast paths read without reading the state
// again (fsm/check.go: the timers' table against every deadline, the send
// queues' runs and counters, the leases against the queue's bounds), after
// every 8th step for the timers and every 64th for the queues (process.go,
// checkBookkeeping; every step cost TestSweepLoad thirteen times its time).
// Its first run found a discovery member dropped from the dial queue with
// no timer for its redial, which then came 25 s late (fixed; its control is
// TestSweepDiscoveryCatchesDroppedRedial), and the lookups a Send keeps
// outliving Shutdown.
//
// No node that follows the protocol closes with BYE protocol error on
// another (spec.NoProtocolErrorBetweenHonest, checked on every BYE written
// in a run without adversaries or a broken adapter: process.go, observe).
// It found a reconnect grace that ended while the peer was back on an
// unconfirmed session (honest_test.go; fsm.MutationGraceIgnoresUnconfirmed).
//
// No message is reported lost while its pair is kept (lost.go,
// spec.LostLedger, spec/PROTOCOL.md 5): the world tells the ledger, before
// the step that carries them out, of every user's un-keep and Disconnect and
// every crash and Close, after each step of the keeps and confirmed sessions
// the node's view shows (a keep counts when the fsm keeps the peer and the
// user asked it to), and every Lost the fsm reports is held to the rule at
// once: unless the pair is exempt (a crash, restart or Close of either end,
// a Disconnect, 0.4.1, an instant at which neither end kept it), the node
// must have had no confirmed session with the peer for the reconnect grace.
// In the random sweeps the commands soon exempt most pairs; the strong form
// is TestSweepKeptPairs (3,000 seeds of [DrawKeptPairsKnobs]): every pair is
// Connected from one end (or both) at the start and kept from then on, the
// commands are sends and keeper switches (the other end starts keeping,
// then the first stops, at once or at a later switch), every fault kind but
// crashes is drawn, and no pair may end the run exempt. Its negative
// controls (mutation tag) run it, TestSweep's seeds and a scripted reset
// (TestScenarioNonKeeperResetResends) against fsm.MutationLostAtOnce, which
// hands the messages of the end that does not keep the pair back at every
// session end. Keeper switches come at least switchGap apart on odd seeds
// and within a round trip on even ones (Knobs.FastSwitches). The latter
// found that the peer's BYE unwanted must be waited out too (fsm/peer.go,
// peerMayComeBack): the leader can end the session as unwanted on a KEEP 0
// of the follower that a KEEP 1 in flight already superseded, and keep the
// pair again before the BYE arrives; a follower that took the BYE as final
// reported its messages lost, though the leader redialed for them. Its
// negative control is fsm.MutationUnwantedFinal; the first trace it was
// found in:
//
//	go run -tags masterless_mutation ./sim/cmd/simsweep -first 239 -seeds 1 -keptpairs -fastswitches -faults=none -mutation=14
//
// (fails at 11.38 s with two nodes; 3 of seeds 1–600 fail so with no faults).
//
// Authentication and the adversary (adversary.go, spec/PROTOCOL.md 7.1):
// with the knob -auth every node requires authentication and the network
// plays TLS with one key per process, reporting each honest connection
// authenticated as the process at its other end. With -adversaries, processes
// that are not honest members (x1, x2, ...) open connections to honest nodes
// and forge honest ids with larger incarnations, replay frames recorded from
// honest connections, and, with the attack "insider", hold a trusted key of
// their own. TestSweepAdversary (1,000 seeds of [DrawAdversaryKnobs], random
// faults and commands as usual) checks after every step, besides everything
// else, that the adversary never holds a connection or session an honest
// node takes for an honest id's (spec.NoImpersonation) and that no honest
// pair's session is closed while its node handles an adversary's connection
// (spec.NoEviction), and that the honest nodes converge. Its negative
// controls: TestSweepCatchesUnauthenticatedAdversary runs the same adversary
// against nodes without authentication (an option only tests can set), and
// TestSweepAdversaryCatchesNoIDCheck (mutation tag) skips the fsm's HELLO id
// check; both must be caught by the two invariants. The strong form,
// TestSweepAdversaryChangesNothing (200 seeds without faults): the honest
// users are told exactly the same things at the same virtual times with the
// adversaries as without them (the adversaries draw from a generator of
// their own, so the honest draws do not move). The same holds of an idle
// flood (-attacks=idle, which DrawAdversaryKnobs never draws) that fills
// every node's handshake slots (TestSweepAdversaryIdleFloodChangesNothing);
// against the old rule that refused newcomers when the slots were full
// (fsm.MutationRefuseWhenFull) no invariant notices anything, and the
// comparison must (TestSweepAdversaryCatchesRefuseWhenFull, mutation tag).
//
// The plain mesh at scale (meshscale_test.go, spec/PROTOCOL.md 5.1): every
// node Connects to every other at the same virtual moment, without
// discovery (a Connect whose dial fails is retried, as in every run unless
// Options.ConnectOnce). TestSweepMeshScale runs 48 nodes without faults
// ($SIM_MESH_NODES=64 for 64) and TestSweepMeshScaleWithFaults 32 nodes
// with every fault kind for 15 s; both must end in a full mesh, and the TCP
// connections each pair opened (World.PairConns, HealPairConns) are checked
// with spec.CheckPairConns: exactly two per pair without faults (both ends
// dial, the handshake keeps one), at most two per pair after the faults
// stop. The safety checks after every step cost O(connections), so these
// runs grow with about N⁴: 2.2 s of CPU for 48 nodes and 0.9 s for the 32
// with faults (one seed each, measured 2026-11-30 at a load average of
// 4.3–4.6; 2.8 s together, 11.8 s in the same conditions before the
// checkers looked connections, nodes and peers up through an index and
// skipped the invariants of one node alone at the nodes that did not step
// (spec.Snapshot.Unchanged); 19 s for 48 nodes before spec.AtMostOneSession
// counted by peer id, and 79–106 s for 64, not measured since); under the
// race detector they shrink to 16 nodes (3.6 s for the three mesh tests,
// measured before those changes).
// The negative controls: TestSweepMeshCatchesExtraDials has every node also
// connect to a second address of each peer and must break the bound
// without faults; TestSweepMeshCatchesRedialWithSession (mutation tag) lets
// a kept peer's redial timer dial it although the pair has its session, and
// must break the bound after faults.
// TestSweepMeshStaggered has 16 nodes Connect one after the other, each
// four one-way delays after the previous one, so that every Connect to the
// node of the wave before lands while that node's connection is past its
// HELLO: no pair may open more than one connection. Its negative control,
// TestSweepMeshCatchesDialWhileHandshaking (mutation tag), dials anyway.
//
// On failure a [Result] carries the seed, every knob, the violated invariant,
// the last events and a copy-paste command that replays exactly that run;
// for a run that options or a test's scheduled commands shaped (discovery,
// a broken adapter, World.At), which the knobs do not carry, it says to run
// that test again instead (Result.Scripted).
//
// Running it:
//
//	go test ./sim                                  # scenarios, rapid, the sweeps (the load sweep too), the negative controls without a mutation
//	go test -tags masterless_mutation ./sim -run Catches   # the negative controls that need a broken fsm
//	SIM_SEEDS=100000 go test ./sim -run 'TestSweep$' -v
//	go test ./sim -run 'TestSeed$' -v -seed=N ...  # replay: the command a failure prints
//	go run ./sim/cmd/simsweep -seeds 10000         # ends with "sim: 10000 seeds, 0 failed"
//	go run ./sim/cmd/simsweep -seeds 1000 -auth -adversaries=2 -attacks=all -attackevery=50ms   # adversaries
//	go run ./sim/cmd/simsweep -load -seeds 100     # load runs (TestSweepLoad's knobs)
//	SIM_TRACE_DIR=dir SIM_SEEDS=50 go test -tags masterless_trace ./sim -run 'TestSweep$'   # NDJSON traces for tla/
//	go run -tags masterless_trace ./sim/cmd/simsweep -seeds 50 -trace dir                    # the same
//	go test ./sim -run XXX -bench Sweep            # simulated events per second
//
// What the sweeps found, each now a regression test: a keep change made by
// the follower between its JOIN and the grant was never announced, so a pair
// nobody kept lived forever (TestScenarioKeepChangeDuringHandshake,
// testdata/fsm/keep_and_discard.txt; the rule is spec/PROTOCOL.md 3.4); and
// two Go nodes meeting over 0.4.1 and v1 at once had two leaders and could
// hold different sessions (TestSweepLegacyDialers, PROTOCOL.md 3.5's
// single-leader argument).
//
// Connection ids: the simulator numbers every TCP connection with one global
// id (g1, g2, ... in reports and traces). A node's fsm knows it as local id
// 2g (the dialer's end) or 2g+1 (the acceptor's), so the two ends of a
// self-dial, which live in one fsm, stay distinct.
package sim
