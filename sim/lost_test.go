package sim_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/masterless-go/masterless/fsm"
	"github.com/masterless-go/masterless/sim"
)

// resetWhileNonKeeperSends scripts the case no-lost-while-kept is about
// (spec.LostLedger): n2 keeps the pair, n1 does not, and n1 has messages in
// flight when the session is reset (rounds times, each followed by an
// exchange on the next session). It returns the world's first violation
// and the messages n1 sent.
func resetWhileNonKeeperSends(t *testing.T, k sim.Knobs, rounds int) (*sim.World, int, error) {
	t.Helper()
	w, err := sim.NewWorld(k, sim.Options{})
	require.NoError(t, err)
	w.Connect(1, w.Addr(0)) // n2 keeps n1; n1 does not keep n2
	if err := w.RunFor(time.Second); err != nil {
		return w, 0, err
	}
	sent := 0
	for range rounds {
		for range 10 {
			if _, err := w.Send(0, "n2"); err == nil {
				sent++
			}
		}
		if !w.ResetSession(0, "n2") {
			return w, sent, nil // not back yet: the caller's checks say so
		}
		if err := w.RunFor(time.Second); err != nil {
			return w, sent, err
		}
	}
	return w, sent, w.RunFor(time.Second)
}

// A session reset while the end that does not keep the pair has messages in
// flight: that end waits for the keeper to come back (within the reconnect
// grace) and resends them, so every message arrives once, in order, and
// none is reported lost. TestScenarioNonKeeperResetCatchesLostAtOnce
// (mutation tag) runs the same script against an fsm that reports them lost
// at once.
func TestScenarioNonKeeperResetResends(t *testing.T) {
	k := sim.Knobs{Seed: 7, Nodes: 2, Latency: 2 * time.Millisecond, Jitter: 3 * time.Millisecond, HealWithin: 2 * time.Minute}
	w, sent, err := resetWhileNonKeeperSends(t, k, 5)
	if err != nil {
		r := w.Result()
		r.Report(testWriter{t})
	}
	require.NoError(t, err)
	require.Equal(t, 50, sent)
	require.Empty(t, events(w, 0, fsm.ActLost, "n2"))
	require.Equal(t, seqs("n1", "n2", 1, sent), received(w, 1, "n1"))
	requireQuiet(t, w)
}
