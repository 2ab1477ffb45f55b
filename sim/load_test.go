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
// sent from callbacks always have room in the queue ("Room for replies"):
// toward a peer p, answers wait only for p's credit, and p withholds it
// only while its user is behind, "and then p's producer has stopped". This
// run finds the answers toward a slow user piling up past that bound: p's
// producer stops only while its user is more than half a window behind,
// and its two windows of requests are acknowledged as soon as the fast peer
// delivers them, so each time p's user catches up a little the producer
// sends requests at full speed for a round trip, faster than p's user takes
// in their answers. The queue's message bound is reached first with small
// messages: here the defaults' proportions scaled down (a 16 KiB window,
// 1,024 messages; 4,096 fail too), 32-byte messages, one user four times
// slower. The echo storms over TCP see it at default options with 32-byte
// messages (the 8-node mesh in some runs, both when run in parallel):
// "has 65536 messages, 2097152 bytes not yet acknowledged". Known failure,
// for fsm: SIM_KNOWN=1 runs it.
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
