//go:build masterless_mutation

package fsm

// This file exists only in builds with the masterless_mutation tag (the
// checkers' negative controls: make test passes the tag to the tests that
// need it). A build without the tag has no way to break the protocol: see
// mutation_off.go.

// Mutation selects a deliberately wrong variant of the protocol, for the
// checkers' negative controls (simulator sweeps, rapid tests): each must
// catch every mutation.
type Mutation uint8

const (
	// MutationNone is the real protocol.
	MutationNone Mutation = iota
	// MutationDialerLeads makes the dialer of each connection its leader,
	// instead of the node with the greater id: each end then grants the
	// connection it dialed, and the two ends can hold different sessions.
	MutationDialerLeads
	// MutationNoLegacyUpgrade lets two Go nodes that meet over 0.4.1 keep
	// that connection instead of moving to v1: a pair can then have two
	// leaders, the 0.4.1 acceptor and the greater id (fsm/legacy.go).
	MutationNoLegacyUpgrade
	// MutationNoResend forgets, when a session resumes, the messages sent
	// on earlier sessions and not acknowledged, without resending or
	// reporting them: they vanish (stream.go).
	MutationNoResend
	// MutationRefuseWhenFull refuses a new accepted connection when the
	// handshake slots (or its source's) are full, instead of evicting the
	// oldest silent one (slots.go): an idle flood then keeps real nodes out.
	MutationRefuseWhenFull
	// MutationNoIDCheck skips the first authentication rule (auth.go): an
	// authenticated connection may name any id in its HELLO, so a node with
	// a trusted key of its own (an insider) can speak for every other node.
	MutationNoIDCheck
	// MutationNoCredit brings back the blocking design that credit replaced
	// (issue 9): the receiver grants unlimited credit, a producer's Send
	// (SendContext) keeps no room for replies, and v2 sessions say
	// they are not flow controlled (Node.FlowControl), so the adapter's
	// reader stops reading while the delivery queue is over its bound and a
	// Send waits while the connection's output buffer is over its bound, as
	// on a 0.4.1 session. Two nodes whose callbacks reply can then wait for
	// each other for ever, and the peer timeout drops healthy sessions.
	MutationNoCredit
	// MutationNoPacing makes producers ignore the peer's backlog flag (ACK,
	// stream.go: "Room for answers"), the pacing before the flag existed: a
	// producer stops only while its own user is behind, so answers toward a
	// user slower than its peers pile up past the room kept for them and,
	// with small messages, a callback's answer is refused.
	MutationNoPacing
	// MutationDiscoveryBothDial makes both ends of a discovered pair dial
	// at once (the leader does not leave the first dial to the follower):
	// pairs then open two TCP connections where one would do, which the
	// simulator's connection bound must catch (discovery.go).
	MutationDiscoveryBothDial
	// MutationRedialStranger lets a redial of a kept peer that another node
	// answers go on to a session with that node, although nothing on this
	// node wants it (dial.go, dialReached; spec/PROTOCOL.md, section 5:
	// "Another node at the address"): a node that took over a kept peer's
	// port gets a session it was never asked for.
	MutationRedialStranger
	// MutationRedialWithSession lets a kept peer's redial timer dial it
	// although the pair has its session (peer.go, peerTimers;
	// spec/PROTOCOL.md 5.1: "once the pair has its session, a kept peer is
	// not redialed"): a redial scheduled before the session came (when the
	// peer was first kept, or its last session was lost) dials on, and so
	// does every one after it. The handshake closes each such connection as
	// a duplicate, so agreement holds and the mesh converges, but pairs open
	// more connections than the bound allows, after faults too, which the
	// simulator's count after faults must catch.
	MutationRedialWithSession
	// MutationDialWhileHandshaking makes a Connect dial its address even
	// when a connection whose HELLO advertised that address is already
	// handshaking (dial.go, peerAt): two nodes that Connect to each other
	// one after the other then open two TCP connections where one would do,
	// which the simulator's connection bound must catch.
	MutationDialWhileHandshaking
	// MutationSendKeepsTime makes Step keep the now of a Send or SendMany as
	// the node's clock, as it did before sends were time-free (events.go,
	// Send): an adapter that passes its latest step's time, or any other,
	// then moves the node's clock, and the time-free check must see the
	// difference.
	MutationSendKeepsTime
	// MutationLostAtOnce brings back the rule before an end that does not
	// keep the pair waited for its peer (peer.go, peerMayComeBack): when a
	// session ends for any reason, such an end hands the messages the peer
	// has not acknowledged back as lost at once, though the peer keeps the
	// pair and comes back for them within the reconnect grace. The
	// simulator's no-lost-while-kept check (spec.LostLedger) must catch it.
	MutationLostAtOnce
	// MutationUnwantedFinal brings back the rule before the peer's BYE
	// unwanted was waited out like any other session end (peer.go,
	// peerMayComeBack): an end that does not keep the pair takes the
	// leader's "unwanted" as final and hands its unacknowledged messages
	// back at once, though the leader decided on a keep flag that a KEEP in
	// flight had superseded, or keeps the pair again itself. Keeper switches
	// within a round trip (sim.Knobs.FastSwitches) must then break
	// no-lost-while-kept.
	MutationUnwantedFinal
	// MutationGraceIgnoresUnconfirmed brings back the reconnect grace that
	// ended on time even while the peer was back on a session the other end
	// had not yet confirmed (peer.go, peerTimers): the node hands back as
	// lost the messages it already resent on that session and skips their
	// numbers, so the peer's next ACK, which counts them, looks like one
	// that goes back, and an honest session closes with BYE protocol error,
	// which the simulator's no-protocol-error check must catch.
	MutationGraceIgnoresUnconfirmed
	// MutationLeaseNotHeld makes a session's end ignore a lease
	// outstanding toward the peer (peer.go, sessionEnded; lease.go): an end
	// that does not keep the pair, with its producer's messages staged and
	// none yet queued, reports the peer down at once, and the staged ones,
	// admitted after the lease is revoked, come back lost although the peer
	// keeps the pair and returns within the reconnect grace. The
	// simulator's no-lost-while-kept check must catch it with Knobs.Leases.
	MutationLeaseNotHeld
	// MutationRunAcrossActions lets the ActMessages of a DataReceived take
	// in a message although another action came after it (node.go,
	// emitMessage): an ACK written between two messages of a run then goes
	// out after both, not between them, and the run is no longer the
	// FrameReceived of each frame in order, which the twin check
	// (runDataTwins) must catch.
	MutationRunAcrossActions
	// MutationRunMiscount leaves an ActMessages's count (Action.Messages)
	// at one however many messages its frames hold (node.go, emitMessage):
	// an adapter that trusts the count (netio's dispatcher queue counts and
	// cuts by it) then tells the user of fewer messages than it hands over,
	// which the simulator's delivery check and the twins' renderer must
	// catch.
	MutationRunMiscount
	// MutationOneRedialLine puts every automatic dial in one line again
	// (redials.go): the redials of targets that did not answer last time
	// may fill every slot, and a kept peer that comes back waits behind
	// them, up to a handshake timeout, which TestRedialsCatchesOneLine
	// must see.
	MutationOneRedialLine
	// MutationIgnoreLag makes Tick ignore its Lag (timers.go, tick): the
	// adapter's word that its reading lags no longer counts as the node's
	// own pause, and the sessions whose silence is the node's own are timed
	// out, which the simulator's stalled readers (sim.Knobs.LateReads) must
	// show: no session gets a grace.
	MutationIgnoreLag
	// MutationSharedNoCopy makes a SendMany of sharedMin bytes or more keep
	// the caller's payload itself for its peers' streams, not a copy
	// (peer.go, sharedPayload): a caller that reuses its buffer after the
	// call, as the API allows, changes what a resend or a Lost carries,
	// which the simulator's SendMany (sim.Knobs.SendMany) must see.
	MutationSharedNoCopy
	// MutationSilentFirst brings back the eviction rule before the silent
	// grace (slots.go): within each tier the source over its share pays,
	// but the silent tier always goes first, so during a flood of
	// connections that each send a HELLO and then nothing a real dialer is
	// evicted before its HELLO is read, which
	// TestEvictionSparesNewcomersCatchesSilentFirst and TestTimersRapid's
	// model must see.
	MutationSilentFirst
	// MutationRunPastCredit lets pump write the rest of a run of frames in
	// one go whatever the credit (stream.go): messages go out past the
	// limit the peer granted, which TestSendQueueModel's model must see.
	MutationRunPastCredit
	// MutationAnswerRoomPastBounds grants a lease's answer room (lease.go,
	// "Room for answers") up to the slack alone, not within what the
	// queue's bounds leave beside its messages and the producers' room:
	// answers staged within it then fill the queue past QueueMessages or
	// QueueBytes, which CheckStreams must see, and so must the simulator's
	// bookkeeping check (TestAnswerRoomCatchesPastBounds,
	// TestSweepBookkeepingCatchesAnswerRoomPastBounds).
	MutationAnswerRoomPastBounds
	// MutationDiscoveryDropsWaiting brings back the discovery queue
	// before it handed a member it dropped to redialIfDue (discovery.go,
	// discWake): a member whose turn came while its backoff ran or a dial
	// to its address was under way left the queue with no timer for its
	// redial, and waited for its member timer. CheckTimers must see it,
	// and so must the simulator's bookkeeping check
	// (TestDiscoveryRedialWaitsOnADialToItsAddress,
	// TestSweepDiscoveryCatchesDroppedRedial).
	MutationDiscoveryDropsWaiting
	// MutationRunFrameSize gives a stretch of received DATA the length of
	// its first frame as every frame's (node.go, steadyRun,
	// Action.FrameSize), whatever the others' lengths: an adapter that
	// cuts the run by it (netio's dispatcher queue) then cuts through
	// frames, which the simulator's delivery check and the twins' renderer
	// must catch.
	MutationRunFrameSize
	// MutationWindowPastMax makes a peer's window grow eightfold, past a
	// MaxWindow of fewer windows than that
	// (window.go): the credit it grants then lets more wait for the user
	// than the queue bounds' room for answers counts on (CheckStreams).
	MutationWindowPastMax
	// MutationSizedPastCredit lets a run of received frames of one length
	// (DataReceived.FrameSize, node.go, steadySized) take one frame more
	// than the credit granted, where the reading of each header stops at
	// the credit (steadyRun): a peer could send past its credit unseen,
	// which TestSizedRunIsTheWalk must see.
	MutationSizedPastCredit
)

// mutation is what Config holds: the Mutation itself.
type mutation = Mutation

// WithMutation returns c with the deliberately wrong rule m. Only for the
// checkers' negative controls.
func (c Config) WithMutation(m Mutation) Config {
	c.mutation = m
	return c
}

// Mutation returns the deliberately wrong rule c selects (MutationNone for
// the real protocol).
func (c Config) Mutation() Mutation { return c.mutation }

func (m Mutation) dialerLeads() bool     { return m == MutationDialerLeads }
func (m Mutation) noLegacyUpgrade() bool { return m == MutationNoLegacyUpgrade }
func (m Mutation) noResend() bool        { return m == MutationNoResend }
func (m Mutation) refuseWhenFull() bool  { return m == MutationRefuseWhenFull }
func (m Mutation) noIDCheck() bool       { return m == MutationNoIDCheck }
func (m Mutation) noCredit() bool        { return m == MutationNoCredit }
func (m Mutation) noPacing() bool        { return m == MutationNoPacing }
func (m Mutation) discoveryBothDial() bool {
	return m == MutationDiscoveryBothDial
}
func (m Mutation) redialStranger() bool    { return m == MutationRedialStranger }
func (m Mutation) redialWithSession() bool { return m == MutationRedialWithSession }
func (m Mutation) dialWhileHandshaking() bool {
	return m == MutationDialWhileHandshaking
}
func (m Mutation) sendKeepsTime() bool           { return m == MutationSendKeepsTime }
func (m Mutation) lostAtOnce() bool              { return m == MutationLostAtOnce }
func (m Mutation) unwantedFinal() bool           { return m == MutationUnwantedFinal }
func (m Mutation) graceIgnoresUnconfirmed() bool { return m == MutationGraceIgnoresUnconfirmed }
func (m Mutation) leaseNotHeld() bool            { return m == MutationLeaseNotHeld }
func (m Mutation) runAcrossActions() bool        { return m == MutationRunAcrossActions }
func (m Mutation) runMiscount() bool             { return m == MutationRunMiscount }
func (m Mutation) oneRedialLine() bool           { return m == MutationOneRedialLine }
func (m Mutation) ignoreLag() bool               { return m == MutationIgnoreLag }
func (m Mutation) sharedNoCopy() bool            { return m == MutationSharedNoCopy }
func (m Mutation) silentFirst() bool             { return m == MutationSilentFirst }
func (m Mutation) runPastCredit() bool           { return m == MutationRunPastCredit }
func (m Mutation) answerRoomPastBounds() bool    { return m == MutationAnswerRoomPastBounds }
func (m Mutation) discoveryDropsWaiting() bool   { return m == MutationDiscoveryDropsWaiting }
func (m Mutation) runFrameSize() bool            { return m == MutationRunFrameSize }
func (m Mutation) windowPastMax() bool           { return m == MutationWindowPastMax }
func (m Mutation) sizedPastCredit() bool         { return m == MutationSizedPastCredit }
