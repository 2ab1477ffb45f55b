package sim_test

import (
	"cmp"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/masterless-go/masterless/sim"
)

// sweepSeeds is how many seeds a sweep runs: $SIM_SEEDS if set, else def
// (a tenth of it with -short). TestSweep's 10,000 take about 5 s of CPU
// without the race detector and ten times that with it, so make test runs
// the full sweeps without -race (target sweep) and SIM_SEEDS=$(RACE_SEEDS),
// 30, with it (target unit).
func sweepSeeds(t *testing.T, def int) int {
	if s := os.Getenv("SIM_SEEDS"); s != "" {
		n, err := strconv.Atoi(s)
		require.NoError(t, err, "SIM_SEEDS")
		return n
	}
	if testing.Short() {
		return def / 10
	}
	return def
}

// logFailures logs the report of every failed seed of res.
func logFailures(t *testing.T, res *sim.SweepResult) {
	t.Helper()
	for i := range res.Failures {
		var b strings.Builder
		res.Failures[i].Report(&b)
		t.Log("\n" + b.String())
	}
}

// sweepPasses runs the sweep cfg asks for, logs what it exercised and the
// report of every failed seed, and fails the test if any seed failed.
func sweepPasses(t *testing.T, cfg sim.SweepConfig) sim.SweepResult {
	t.Helper()
	res := sim.Sweep(cfg)
	logFailures(t, &res)
	t.Logf("exercised: %s", &res.Stats)
	t.Log(res.Summary())
	require.Empty(t, res.Failures, "see the reports above")
	return res
}

// TestSweep runs many random seeds of 2 to 5 nodes with random faults and
// commands; every one must keep the safety invariants at every step and reach
// quiescence once healed. $SIM_TRACE_DIR, if set, receives their traces.
func TestSweep(t *testing.T) {
	n := sweepSeeds(t, 10000)
	first := uint64(1)
	if s := os.Getenv("SIM_FIRST"); s != "" {
		f, err := strconv.ParseUint(s, 10, 64)
		require.NoError(t, err, "SIM_FIRST")
		first = f
	}
	res := sim.Sweep(sim.SweepConfig{First: first, Seeds: n, TraceDir: os.Getenv("SIM_TRACE_DIR"), StopAfter: 20})
	t.Logf("%d steps in %v: %.0f steps/s, %.0f seeds/s", res.Steps, res.Elapsed.Round(time.Millisecond),
		float64(res.Steps)/res.Elapsed.Seconds(), float64(res.Seeds)/res.Elapsed.Seconds())
	logFailures(t, &res)
	t.Log(res.Summary())
	require.LessOrEqual(t, res.Seeds, n)
	require.Empty(t, res.Failures, "see the reports above")
	t.Logf("lanes: %d admits, %d of messages of one length", res.Stats.Admits, res.Stats.SizedAdmits)
	if n >= 1000 {
		require.Positive(t, res.Stats.AnswersStaged, "no answer was staged in a lease's room for answers")
		require.Positive(t, res.Stats.SizedAdmits, "no lane's messages of one length were admitted by arithmetic")
		require.Less(t, res.Stats.SizedAdmits, res.Stats.Admits, "every lane's messages had one length: the walk went untested")
	}
}

// TestSweepLegacyDialers sweeps meshes where half the Go nodes dial with
// masterless 0.4.1's protocol. Two Go nodes that meet over 0.4.1 must move to
// v1, or the pair has two leaders (acceptor on the 0.4.1 connection, greater
// id on the v1 one) and can end up with a different session at each end: 17
// of 2,000 seeds broke both-ends-agree before fsm's legacyUpgrade.
func TestSweepLegacyDialers(t *testing.T) {
	n := sweepSeeds(t, 2000)
	sweepPasses(t, sim.SweepConfig{First: 500_000, Seeds: n, StopAfter: 5, Knobs: func(seed uint64) sim.Knobs {
		k := sim.DrawKnobs(seed)
		k.LegacyPM = 500
		return k
	}})
}

// TestSweepConnectOnce sweeps nodes whose failed Connects leave nothing
// behind (Options.ConnectOnce, the public WithConnectOnce: masterless
// 0.4.1's Connect), the default before addresses were kept; TestSweep runs
// the default.
func TestSweepConnectOnce(t *testing.T) {
	n := sweepSeeds(t, 1000)
	sweepPasses(t, sim.SweepConfig{First: 700_000, Seeds: n, StopAfter: 5, Options: sim.Options{ConnectOnce: true}})
}

// keptPairsFirst is TestSweepKeptPairs' first seed.
const keptPairsFirst = 1_100_000

// TestSweepKeptPairs is the strong form of no-lost-while-kept
// (spec.LostLedger; TestSweep checks it too, on the pairs its random
// commands leave in scope): runs where every pair is kept by one end from
// its first session on (Knobs.KeptPairs: no Disconnect, no crash, no
// instant at which neither end keeps; keeper switches at least switchGap
// apart on odd seeds, within a round trip on even ones), with random faults
// but crashes. No node may report a message
// lost but after its peer stayed away for the reconnect grace, and no pair
// may be exempt from the check. Some session must have ended at the end
// that does not keep its pair with messages in flight (the case the rule is
// about), and some message must have been reported lost after the grace (a
// fault that outlasted it). 3,000 seeds: the first that breaks the rule of
// TestSweepKeptPairsCatchesUnwantedFinal is the 2,465th (2026-12-04).
func TestSweepKeptPairs(t *testing.T) {
	n := sweepSeeds(t, 3000)
	res := sweepPasses(t, sim.SweepConfig{First: keptPairsFirst, Seeds: n, StopAfter: 5, Knobs: sim.DrawKeptPairsKnobs})
	require.Positive(t, res.Stats.LostExercised, "no session ended at the end that does not keep its pair with messages in flight")
	require.Positive(t, res.Stats.LostJudged, "no message was reported lost after the grace")
}

// BenchmarkSweep reports simulated fsm steps per second on one goroutine.
func BenchmarkSweep(b *testing.B) {
	steps := 0
	start := time.Now()
	for i := 0; b.Loop(); i++ {
		r := sim.RunSeed(sim.DrawKnobs(uint64(i%1000+1)), sim.Options{})
		steps += r.Steps
	}
	el := time.Since(start).Seconds()
	b.ReportMetric(float64(steps)/el, "events/s")
	b.ReportMetric(float64(b.N)/el, "seeds/s")
}

// TestSweepCatchesRepeatedBytes is the negative control of the delivery
// invariants end to end: an adapter that sends DATA segments twice must be
// caught repeating a message.
func TestSweepCatchesRepeatedBytes(t *testing.T) {
	res := sim.Sweep(sim.SweepConfig{First: 1, Seeds: 500, StopAfter: 1, Options: sim.Options{AdapterBug: sim.RepeatSegments}})
	require.NotEmpty(t, res.Failures, "an adapter that repeats bytes went unnoticed")
	require.ErrorContains(t, res.Failures[0].Err, "delivered twice")
	// The broken adapter is an option, not a knob: the report must not
	// offer a replay of the knobs' own run, which passes.
	var b strings.Builder
	res.Failures[0].Report(&b)
	require.Contains(t, b.String(), "run the test that failed again")
	require.NotContains(t, b.String(), "TestSeed$")
	require.NoError(t, sim.RunSeed(res.Failures[0].Knobs, sim.Options{}).Err, "the knobs alone replay a run that passes")
}

// TestSweepAdversary sweeps worlds with authentication on and one or two
// adversary processes (sim/adversary.go) that forge honest ids with larger
// incarnations, replay frames recorded from honest connections, and may hold
// a trusted key of their own (insiders), beside the usual random faults and
// commands. Besides every usual invariant, the adversary must never hold a
// connection or session an honest node takes for an honest id's
// (spec.NoImpersonation) nor make an honest node close a session of an
// honest pair (spec.NoEviction); the honest nodes must still converge.
func TestSweepAdversary(t *testing.T) {
	n := sweepSeeds(t, 1000)
	res := sweepPasses(t, sim.SweepConfig{First: 900_000, Seeds: n, StopAfter: 5, Knobs: sim.DrawAdversaryKnobs})
	a := res.Stats.Adversary
	require.Positive(t, a.Conns, "no adversary connection was opened")
	// Every adversary connection that got as far as a HELLO is refused for
	// its authentication; the others were cut short by faults, by the
	// adversary closing first, or by a crash.
	require.Greater(t, a.Refused, a.Conns/2, "fewer than half the adversary's connections were refused for authentication")
}

// TestSweepCatchesUnauthenticatedAdversary is the negative control of
// TestSweepAdversary: the same adversaries against nodes without
// authentication (nothing reported authenticated, no RequireAuth) must be
// caught by the adversary invariants: forged HELLOs take honest ids and
// evict honest sessions.
func TestSweepCatchesUnauthenticatedAdversary(t *testing.T) {
	res := sim.Sweep(sim.SweepConfig{First: 900_000, Seeds: 200, StopAfter: 20, Options: sim.WithUnauthenticatedAdversary(sim.Options{}),
		Knobs: func(seed uint64) sim.Knobs {
			k := sim.DrawAdversaryKnobs(seed)
			k.Auth = false
			return k
		}})
	require.NotEmpty(t, res.Failures, "an adversary against nodes without authentication went unnoticed")
	var imp, evict bool
	for _, f := range res.Failures {
		imp = imp || strings.Contains(f.Err.Error(), "no-impersonation")
		evict = evict || strings.Contains(f.Err.Error(), "no-eviction")
	}
	var b strings.Builder
	res.Failures[0].Report(&b)
	t.Log("\n" + b.String())
	require.True(t, imp, "no seed broke no-impersonation; first failure: %v", res.Failures[0].Err)
	require.True(t, evict, "no seed broke no-eviction; first failure: %v", res.Failures[0].Err)
	// Adversaries without authentication are refused outside the tests.
	r := sim.RunSeed(res.Failures[0].Knobs, sim.Options{})
	require.ErrorContains(t, r.Err, "adversaries need -auth=true")
}

// lateReadsFirst is the first seed of TestSweepLateReads: seeds of their
// own, as lateTicksFirst.
const lateReadsFirst = 1_600_001

// lateReads is TestSweepLateReads' sweep: its nodes' readers stall for up
// to three heartbeats (Knobs.LateReads), with the fsm rule m.
func lateReads(n int, m sim.Mutation) sim.SweepConfig {
	return drawnSweep(lateReadsFirst, n, func(k *sim.Knobs) {
		k.LateReads = 3 * cmp.Or(k.Heartbeat, time.Second)
		k.Mutation = m
	})
}

// drawnSweep is a sweep of n seeds from first, each with the knobs
// DrawKnobs draws for it and then set, stopping after five failures.
func drawnSweep(first uint64, n int, set func(k *sim.Knobs)) sim.SweepConfig {
	return sim.SweepConfig{First: first, Seeds: n, StopAfter: 5, Knobs: func(seed uint64) sim.Knobs {
		k := sim.DrawKnobs(seed)
		set(&k)
		return k
	}}
}

// TestSweepLateReads runs seeds whose nodes' readers stall while their
// timers run on time, each Tick saying how long (Tick.Lag, as netio's lag
// probe does): every run must keep the safety invariants and reach
// quiescence once healed, and the Lag must have given some session a
// grace for its node's own pause (spec/PROTOCOL.md 4). Its negative
// control, TestSweepLateReadsCatchesIgnoredLag, ignores the Lag.
func TestSweepLateReads(t *testing.T) {
	res := sweepPasses(t, lateReads(sweepSeeds(t, 2000), 0))
	require.Positive(t, res.Stats.ReadStalls, "no reader stalled")
	require.Positive(t, res.Stats.PauseGraces, "no session had a grace for its node's stalled readers")
}

// sendManyFirst is the first seed of TestSweepSendMany: seeds of their own.
const sendManyFirst = 1_700_001

// sendManys is the sweep of TestSweepSendMany, n seeds with mutation m.
func sendManys(n int, m sim.Mutation) sim.SweepConfig {
	return drawnSweep(sendManyFirst, n, func(k *sim.Knobs) { k.SendMany, k.Mutation = true, m })
}

// TestSweepSendMany runs seeds whose users send half their bursts as one
// SendMany to several nodes (Knobs.SendMany), through the connection layer's
// encode-once path, half of them with payloads the streams share: every run
// must keep the safety invariants (each destination gets its own message
// once, in order with the pair's others, or back in a Lost) and reach
// quiescence once healed. Its negative control,
// TestSweepSendManyCatchesSharedNoCopy, keeps the caller's buffer.
func TestSweepSendMany(t *testing.T) {
	res := sweepPasses(t, sendManys(sweepSeeds(t, 5000), 0))
	require.Positive(t, res.Stats.SendManys, "no SendMany was stepped")
	require.Positive(t, res.Stats.SendManyShared, "no SendMany's payload was shared by several streams")
	require.Positive(t, res.Stats.SendManyStaged, "no producer's SendMany staged a message in a lane")
}

// lateTicksFirst is the first seed of TestSweepLateTicks: seeds of their
// own, so that its runs are not TestSweep's again with late ticks.
const lateTicksFirst = 1_500_001

// TestSweepLateTicks runs seeds whose nodes' timers starve (Knobs.LateTicks:
// half their Ticks come up to three heartbeats late while bytes arrive on
// time), which exercises fsm's rule for a node's own pause (a late Tick gives
// the sessions it would time out a grace, once per silence,
// spec/PROTOCOL.md 4): every run must keep the safety invariants and reach
// quiescence once healed, and some session must have had a grace.
func TestSweepLateTicks(t *testing.T) {
	n := sweepSeeds(t, 2000)
	res := sweepPasses(t, drawnSweep(lateTicksFirst, n, func(k *sim.Knobs) { k.LateTicks = 3 * cmp.Or(k.Heartbeat, time.Second) }))
	require.Positive(t, res.Stats.LateTicks, "no Tick came late")
	require.Positive(t, res.Stats.PauseGraces, "no session had a grace for its node's own pause")
}
