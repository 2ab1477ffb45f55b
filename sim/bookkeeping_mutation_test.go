//go:build masterless_mutation

package sim_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/masterless-go/masterless/fsm"
	"github.com/masterless-go/masterless/sim"
)

// TestSweepBookkeepingCatchesAnswerRoomPastBounds is the negative control
// of the simulator's periodic check of the send queues (process.go,
// checkBookkeeping, fsm.CheckStreams): with a lease's answer room granted
// past the queue's bounds (fsm.MutationAnswerRoomPastBounds), n1 sending
// bursts toward n2 faster than n2 acknowledges them, under leases and a
// queue of 232 messages (which leaves 3 messages of answer room beside a
// window of 1 KiB), fills its queue past QueueMessages, and the run must
// fail on the send queues' check. The real rule passes the same script.
func TestSweepBookkeepingCatchesAnswerRoomPastBounds(t *testing.T) {
	run := func(m fsm.Mutation) error {
		k := sim.Knobs{Seed: 1, Nodes: 2, Latency: 2 * time.Millisecond, HealWithin: 2 * time.Minute,
			Leases: true, Window: 1 << 10, QueueMessages: 232, Mutation: m}
		w, err := sim.NewWorld(k, sim.Options{MaxSteps: 100_000})
		require.NoError(t, err)
		w.Connect(1, w.Addr(0))
		if err := w.RunFor(time.Second); err != nil {
			return err
		}
		for range 50 { // bursts of 100 Sends, 1 ms apart: less than a round trip
			for range 100 {
				_, _ = w.Send(0, "n2") // refused once the queue is full
				if err := w.Err(); err != nil {
					return err
				}
			}
			if err := w.RunFor(time.Millisecond); err != nil {
				return err
			}
		}
		return w.RunFor(time.Second)
	}
	require.NoError(t, run(fsm.MutationNone), "the real rule")
	err := run(fsm.MutationAnswerRoomPastBounds)
	require.Error(t, err, "answer room granted past the queue's bounds went unnoticed")
	require.ErrorContains(t, err, "bookkeeping: n1's send queues after its step") // checkBookkeeping's CheckStreams
	require.ErrorContains(t, err, "lease toward n2")                              // CheckStreams's lease check
	require.ErrorContains(t, err, "past the bound of 232")
	t.Log(err)
}
