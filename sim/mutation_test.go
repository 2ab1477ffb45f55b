//go:build masterless_mutation

package sim_test

// The negative controls that need a deliberately broken fsm: they exist only
// in builds with the masterless_mutation tag, which make test passes (see the
// Makefile's sweep target).

import (
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/masterless-go/masterless/fsm"
	"github.com/masterless-go/masterless/sim"
)

// TestSweepLegacyDialersCatchesNoUpgrade is the negative control of
// TestSweepLegacyDialers: without the move to v1, the same sweep must find
// a pair whose ends hold different live sessions.
func TestSweepLegacyDialersCatchesNoUpgrade(t *testing.T) {
	res := mutated(500_000, 2000, 50, fsm.MutationNoLegacyUpgrade, func(seed uint64) sim.Knobs {
		k := sim.DrawKnobs(seed)
		k.LegacyPM = 500
		return k
	})
	require.NotEmpty(t, res.Failures, "the sweep did not notice Go nodes keeping a 0.4.1 session with each other")
	// Such sessions also lose messages (0.4.1 has no resend), which the
	// stream ledger reports first in some seeds; the point here is the
	// two leaders, so some seed must break both-ends-agree.
	require.True(t, anyFailure(res.Failures, "both-ends-agree"), "no seed broke both-ends-agree; first failure: %v", res.Failures[0].Err)
}

// TestSweepCatchesDialerLeads is the negative control of the whole pipeline
// (TestSweep): with a deliberately wrong leadership rule the sweep must find
// a violation of the agreement invariant, and its report must be replayable.
func TestSweepCatchesDialerLeads(t *testing.T) {
	res := mutated(1, 2000, 1, fsm.MutationDialerLeads, sim.DrawKnobs)
	require.NotEmpty(t, res.Failures, "the sweep did not notice that the dialer leads")
	f := res.Failures[0]
	var b strings.Builder
	f.Report(&b)
	t.Log("\n" + b.String())
	require.ErrorContains(t, f.Err, "both-ends-agree")
	report := b.String()
	require.Contains(t, report, "-seed="+strconv.FormatUint(f.Knobs.Seed, 10))
	require.Contains(t, report, "-mutation=1")
	require.Contains(t, report, "go test -tags masterless_mutation ./sim -run 'TestSeed$'")
	require.Contains(t, report, "go run -tags masterless_mutation ./sim/cmd/simsweep")
	require.NotEmpty(t, f.Recent)
	// Replaying the failure gives the same failure at the same step.
	again := sim.RunSeed(f.Knobs, sim.Options{})
	require.Equal(t, f.Err.Error(), again.Err.Error())
	require.Equal(t, f.Steps, again.Steps)
}

// TestSweepCatchesNoResend is the negative control of reliable sessions in
// the simulator: a node that forgets, when a session resumes, what it sent
// on the last one and was not acknowledged must be caught: those messages
// were accepted and are neither delivered nor reported lost.
func TestSweepCatchesNoResend(t *testing.T) {
	res := mutated(1, 2000, 1, fsm.MutationNoResend, sim.DrawKnobs)
	require.NotEmpty(t, res.Failures, "the sweep did not notice messages vanishing")
	require.ErrorContains(t, res.Failures[0].Err, "none-vanished")
}

// TestSweepCatchesRunMiscount is the negative control of the simulator's
// check that an ActMessages says how many messages its frames hold
// (process.go, Notify), which the adapters trust: with the count left at
// one (fsm.MutationRunMiscount), the first run of two messages or more in a
// read must fail the sweep on it.
func TestSweepCatchesRunMiscount(t *testing.T) {
	res := mutated(1, 200, 1, fsm.MutationRunMiscount, sim.DrawKnobs)
	require.NotEmpty(t, res.Failures, "the sweep did not notice a run's count left at one")
	require.ErrorContains(t, res.Failures[0].Err, "in an ActMessages that says 1")
}

// TestSweepCatchesRunFrameSize is the negative control of the simulator's
// check that an ActMessages says the length of its frames when they have
// one (process.go, Notify), by which netio's delivery queue cuts runs:
// with a stretch of frames given its first frame's length
// (fsm.MutationRunFrameSize), the first read of messages of two lengths
// must fail the sweep on it.
func TestSweepCatchesRunFrameSize(t *testing.T) {
	res := mutated(1, 200, 1, fsm.MutationRunFrameSize, sim.DrawKnobs)
	require.NotEmpty(t, res.Failures, "the sweep did not notice a run given its first frame's length")
	require.ErrorContains(t, res.Failures[0].Err, "of several lengths) in an ActMessages that says")
}

// TestSweepLoadCatchesWindowPastMax is the negative control of the check
// that the credit a node grants stays within MaxWindow (fsm's CheckStreams,
// checkWindow): with a window that grows past it
// (fsm.MutationWindowPastMax), a load sweep whose windows grow must fail on
// it.
func TestSweepLoadCatchesWindowPastMax(t *testing.T) {
	res := mutated(1, 20, 1, fsm.MutationWindowPastMax, sim.DrawLoadKnobs)
	require.NotEmpty(t, res.Failures, "the sweep did not notice a window past MaxWindow")
	require.ErrorContains(t, res.Failures[0].Err, "past MaxWindow")
}

// TestSweepAdversaryCatchesNoIDCheck is the negative control of the fsm's
// authentication rule in the adversary sweep: with the HELLO id check
// skipped (fsm.MutationNoIDCheck), an insider, authenticated as its own id,
// forges honest ids; the adversary invariants must catch it taking an
// honest id and evicting an honest pair's session.
func TestSweepAdversaryCatchesNoIDCheck(t *testing.T) {
	res := mutated(900_000, 300, 20, fsm.MutationNoIDCheck, func(seed uint64) sim.Knobs {
		k := sim.DrawAdversaryKnobs(seed)
		k.Attacks |= sim.AttackInsider
		return k
	})
	require.NotEmpty(t, res.Failures, "an insider speaking for other nodes went unnoticed")
	require.True(t, anyFailure(res.Failures, "no-impersonation"), "no seed broke no-impersonation; first failure: %v", res.Failures[0].Err)
	require.True(t, anyFailure(res.Failures, "no-eviction"), "no seed broke no-eviction; first failure: %v", res.Failures[0].Err)
	// The same seed without the mutation passes.
	k := res.Failures[0].Knobs
	k.Mutation = 0
	r := sim.RunSeed(k, sim.Options{})
	require.NoError(t, r.Err)
}

// TestSweepLoadCatchesNoCredit is the negative control of TestSweepLoad:
// with the blocking design that credit replaced (MutationNoCredit: no
// credit, a reader that waits for room in the delivery queue, a Send that
// waits for the output buffer), callbacks that answer what they receive
// wedge two nodes, and the load sweep must see it: a session dropped by
// the peer timeout, or delivery stalled past its bound.
func TestSweepLoadCatchesNoCredit(t *testing.T) {
	res := mutated(1, 40, 1, fsm.MutationNoCredit, sim.DrawLoadKnobs)
	require.NotEmpty(t, res.Failures, "the load sweep did not notice the blocking design")
	f := res.Failures[0]
	var b strings.Builder
	f.Report(&b)
	t.Log("\n" + b.String())
	require.ErrorContains(t, f.Err, "steady-under-load")
	require.Contains(t, b.String(), "-workload=")
	require.Contains(t, b.String(), "-mutation="+strconv.Itoa(int(fsm.MutationNoCredit)))
	again := sim.RunSeed(f.Knobs, sim.Options{})
	require.Equal(t, f.Err.Error(), again.Err.Error(), "the report replays")
	// The wedge needs what the simulator did not model before: with
	// unbounded socket buffers the same seed never wedges (bytes always
	// flow; queues grow instead).
	k := f.Knobs
	k.SockBuf = 0
	if r := sim.RunSeed(k, sim.Options{}); r.Err != nil {
		require.NotContains(t, r.Err.Error(), "steady-under-load", "without bounded socket buffers")
	}
}

// TestLoadAnswersCatchesNoPacing is the negative control of
// TestLoadAnswersHaveRoomSmallMessages: with producers that ignore the
// peer's backlog flag (MutationNoPacing, the pacing before it), the answers
// toward the slow user pile up until a callback's answer is refused.
func TestLoadAnswersCatchesNoPacing(t *testing.T) {
	k := answersHaveRoomKnobs()
	k.Mutation = fsm.MutationNoPacing
	r := sim.RunSeed(k, sim.Options{})
	require.Error(t, r.Err, "answers kept room without the backlog flag")
	require.ErrorContains(t, r.Err, "answers sent from a callback were refused")
	require.ErrorIs(t, r.Err, fsm.ErrQueueFull)
}

// mutated sweeps seeds first to first+seeds-1, stopping after stop
// failures, with each seed's knobs from draw and the protocol broken by m.
func mutated(first uint64, seeds, stop int, m fsm.Mutation, draw func(uint64) sim.Knobs) sim.SweepResult {
	return sim.Sweep(sim.SweepConfig{First: first, Seeds: seeds, StopAfter: stop, Knobs: func(seed uint64) sim.Knobs {
		k := draw(seed)
		k.Mutation = m
		return k
	}})
}

// anyFailure reports whether some failure names the invariant.
func anyFailure(fs []sim.Result, invariant string) bool {
	for _, f := range fs {
		if strings.Contains(f.Err.Error(), invariant) {
			return true
		}
	}
	return false
}
