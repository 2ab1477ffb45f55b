package sim_test

import (
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/masterless-go/masterless/netio"
	"github.com/masterless-go/masterless/sim"
)

// The simulator's adapter bounds are netio's.
func TestAdapterBoundsAreNetio(t *testing.T) {
	require.Equal(t, netio.DefaultSendBuffer, sim.DefaultSendBuffer)
	require.Equal(t, netio.DefaultDispatchQueue, sim.DefaultDispatchQueue)
	require.Equal(t, netio.DefaultDispatchBytes, sim.DefaultDispatchBytes)
}

// loadSeeds is how many seeds TestSweepLoad runs: $SIM_LOAD_SEEDS if set,
// else 40 (4 with -short, 3 under the race detector, which makes a load
// run ten times slower and finds nothing more: each seed runs on one
// goroutine). The 40 take about 15 s of CPU.
func loadSeeds(t *testing.T) int {
	if s := os.Getenv("SIM_LOAD_SEEDS"); s != "" {
		n, err := strconv.Atoi(s)
		require.NoError(t, err, "SIM_LOAD_SEEDS")
		return n
	}
	switch {
	case raceEnabled:
		return 3
	case testing.Short():
		return 4
	}
	return 40
}

// TestSweepLoad runs load runs (sim.DrawLoadKnobs: 2 to 6 nodes in a full
// mesh, every node sending to every other while its callbacks answer each
// message to its sender or to every node, over bounded socket buffers and
// delivery queues, without faults): each must keep steady-under-load (no
// session ends, no pair stalls past Knobs.StallBound), deliver everything
// exactly once and in order, and, echoing, never have an answer refused.
// Every seed's knobs are logged with its outcome; a failure prints its
// replay command. TestSweepLoadCatchesNoCredit is its negative control.
func TestSweepLoad(t *testing.T) {
	n := loadSeeds(t)
	res := sim.Sweep(sim.SweepConfig{First: 1, Seeds: n, StopAfter: 5, Knobs: sim.DrawLoadKnobs, Keep: true})
	var worst float64
	for _, r := range res.All {
		ratio := float64(r.MaxStall) / float64(r.StallBound)
		worst = max(worst, ratio)
		t.Logf("seed %d: %s; %d delivered in %v virtual, longest stall %v (%.1f%% of the bound %v), longest wait of a producer for room %v\n  knobs: %s",
			r.Knobs.Seed, outcome(r.Err), r.Delivered, r.Virtual.Round(time.Millisecond), r.MaxStall.Round(time.Microsecond),
			100*ratio, r.StallBound.Round(time.Millisecond), r.MaxProducerWait.Round(time.Microsecond), r.Knobs)
	}
	logFailures(t, &res)
	t.Logf("%d steps in %v; the longest stall was %.1f%% of its bound", res.Steps, res.Elapsed.Round(time.Millisecond), 100*worst)
	t.Log(res.Summary())
	require.Equal(t, n, res.Seeds, "every seed ran")
	require.Empty(t, res.Failures, "see the reports above")
	if n >= 20 { // half the seeds have leases; a few might stage no answer
		require.Positive(t, res.Stats.AnswersStaged, "no answer was staged in a lease's room for answers")
		// and half have windows that may grow (fsm/window.go)
		require.Positive(t, res.Stats.WindowsGrown, "no window grew")
	}
}

func outcome(err error) string {
	if err != nil {
		return "FAILED"
	}
	return "ok"
}

// A load run replays step for step.
func TestLoadDeterministic(t *testing.T) {
	k := sim.DrawLoadKnobs(2)
	a, b := sim.RunSeed(k, sim.Options{}), sim.RunSeed(k, sim.Options{})
	require.NoError(t, a.Err)
	require.Positive(t, a.Delivered)
	require.Equal(t, []any{a.Steps, a.Virtual, a.Delivered, a.MaxStall}, []any{b.Steps, b.Virtual, b.Delivered, b.MaxStall})
}

// TestLoadAnswersHaveRoomSmallMessages: fsm/stream.go argues that answers
// sent from callbacks always have room in the queue ("Room for answers").
// This run once found answers toward a slow user piling up past the room
// kept for them: a producer then stopped only while its own user was more
// than half a window behind, and its requests were acknowledged as soon as
// the fast peer delivered them, so each time its user caught up a little it
// sent at full speed for a round trip, faster than its user took in the
// answers. Now the fast peer's ACK says when its answers back up (the
// backlog flag) and the producer waits for them to drain. The run: the
// defaults' proportions scaled down (a 16 KiB window, a queue of Window/4 =
// 4,096 messages), 32-byte messages, whose count bound is reached first,
// and one user four times slower than the others. Its negative control,
// with the producers ignoring the flag (MutationNoPacing), is
// TestLoadAnswersCatchesNoPacing in mutation_test.go.
func TestLoadAnswersHaveRoomSmallMessages(t *testing.T) {
	runLoadLogged(t, answersHaveRoomKnobs())
}

// runLoadLogged plays the load run of k, logs its report and requires it to
// pass. Not under the race detector: one world on the test's goroutine
// gives it nothing to find, and took 8 s of a core for it.
func runLoadLogged(t *testing.T, k sim.Knobs) sim.Result {
	t.Helper()
	if raceEnabled {
		t.Skip("make sweep runs it, without the race detector")
	}
	r := sim.RunSeed(k, sim.Options{})
	var b strings.Builder
	r.Report(&b)
	t.Log("\n" + b.String())
	require.NoError(t, r.Err)
	return r
}

// TestLoadAnswersHaveRoomWithLeases is TestLoadAnswersHaveRoomSmallMessages
// with producers and answers staged under leases (Knobs.Leases), the
// answers in the room a lease holds for them (fsm/lease.go, "Room for
// answers"): the queue's 4,096 messages leave 507 past what the proof
// needs, which the answer room takes from, and still no answer is refused.
func TestLoadAnswersHaveRoomWithLeases(t *testing.T) {
	k := answersHaveRoomKnobs()
	k.Leases = true
	r := runLoadLogged(t, k)
	require.Positive(t, r.Stats.AnswersStaged, "no answer was staged in a lease's room")
}

// TestLoadAnswersHaveRoomGrowingWindow is TestLoadAnswersHaveRoomSmallMessages
// with windows that grow to four times their start (fsm/window.go) and the
// queue bound the defaults derive from both, (MaxWindow + Window)/8
// messages: the windows grow, and still no answer is refused. (The same run
// with the queue of a window that stays, or half that, refused none either:
// the bound is not tight for this run; the pacing's negative control is
// TestLoadAnswersCatchesNoPacing.)
func TestLoadAnswersHaveRoomGrowingWindow(t *testing.T) {
	r := runLoadLogged(t, growingWindowKnobs())
	require.Positive(t, r.Stats.WindowsGrown, "no window grew")
}

// growingWindowKnobs are TestLoadAnswersHaveRoomGrowingWindow's knobs.
func growingWindowKnobs() sim.Knobs {
	k := answersHaveRoomKnobs()
	k.MaxWindow = 4 * k.Window
	k.QueueMessages = (k.MaxWindow + k.Window) / 8
	// Users fast enough, and a network near enough (the credit loop's
	// round trip), that a window (16 KiB: 256 messages of 32 bytes) takes
	// them less than 2 ms (fsm/window.go).
	k.AppDelay, k.LoadFor, k.Latency, k.Jitter = 2*time.Microsecond, 300*time.Millisecond, 50*time.Microsecond, 0
	return k
}

// answersHaveRoomKnobs are TestLoadAnswersHaveRoomSmallMessages's knobs.
func answersHaveRoomKnobs() sim.Knobs {
	k := sim.DrawLoadKnobs(1)
	k.Nodes, k.Workload, k.Payload, k.Window, k.MaxWindow = 4, sim.WorkloadEcho, 32, 16<<10, 0
	k.QueueMessages = k.Window / 4 // fsm.Config's default proportion for a window that stays
	k.ProduceGap, k.AppDelay, k.SlowApp, k.LoadFor = time.Microsecond, 50*time.Microsecond, 4, 5*time.Second
	return k
}
