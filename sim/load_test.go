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
		t.Logf("seed %d: %s; %d delivered in %v virtual, longest stall %v (%.1f%% of the bound %v)\n  knobs: %s",
			r.Knobs.Seed, outcome(r.Err), r.Delivered, r.Virtual.Round(time.Millisecond), r.MaxStall.Round(time.Microsecond),
			100*ratio, r.StallBound.Round(time.Millisecond), r.Knobs)
	}
	for i := range res.Failures {
		var b strings.Builder
		res.Failures[i].Report(&b)
		t.Log("\n" + b.String())
	}
	t.Logf("%d steps in %v; the longest stall was %.1f%% of its bound", res.Steps, res.Elapsed.Round(time.Millisecond), 100*worst)
	t.Log(res.Summary())
	require.Equal(t, n, res.Seeds, "every seed ran")
	require.Empty(t, res.Failures, "see the reports above")
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
// sent from callbacks always have room in the queue ("Room for replies"),
// in bytes: QueueBytes >= 5 W + the largest message. The queue is also
// bounded in messages, and the argument does not cover that bound: toward a
// peer whose user is slow, a producer may hold QueueMessages/2 messages and
// the answers up to 3 W of credit, which with messages under 64 bytes is
// more than the other half (each costs payload + 32 bytes of credit; 3 MiB
// of 32-byte messages is 49,152 of them, against 32,768). This load run has
// the defaults' proportions scaled down (a 16 KiB window, 1,024 messages)
// and one user four times slower: answers are refused. The echo storm over
// TCP with 8 nodes and 32-byte messages sees the same at default options
// (some runs). Known failure: set SIM_KNOWN=1 to run it.
func TestLoadAnswersHaveRoomSmallMessages(t *testing.T) {
	if os.Getenv("SIM_KNOWN") == "" {
		t.Skip("known failure (fsm: no room in messages for answers to small messages); SIM_KNOWN=1 runs it")
	}
	k := sim.DrawLoadKnobs(1)
	k.Nodes, k.Workload, k.Payload, k.Window, k.QueueMessages = 4, sim.WorkloadEcho, 32, 16<<10, 1024
	k.ProduceGap, k.AppDelay, k.SlowApp = time.Microsecond, 50*time.Microsecond, 4
	r := sim.RunSeed(k, sim.Options{})
	var b strings.Builder
	r.Report(&b)
	t.Log("\n" + b.String())
	require.NoError(t, r.Err)
}
