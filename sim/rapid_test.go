package sim_test

import (
	"strings"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/masterless-go/masterless/sim"
)

// rapidChooser lets rapid drive every random decision of a run (knobs,
// latencies, commands, faults), so that a failure shrinks to a short run
// with few nodes, few commands and few faults. Past a budget of draws it
// continues from a PRNG seeded by rapid, to keep long runs cheap.
type rapidChooser struct {
	t     *rapid.T
	left  int
	after sim.Chooser
}

func (c *rapidChooser) Intn(n int) int {
	if c.left > 0 {
		c.left--
		return rapid.IntRange(0, n-1).Draw(c.t, "c")
	}
	return c.after.Intn(n)
}

// TestSimRapid: random topologies, user commands and fault schedules, all
// chosen by rapid; every run must keep the safety invariants and heal.
func TestSimRapid(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		k := sim.Knobs{
			Seed:         rapid.Uint64Range(1, 1<<40).Draw(t, "seed"),
			Nodes:        rapid.IntRange(2, 4).Draw(t, "nodes"),
			Latency:      time.Duration(rapid.Int64Range(int64(100*time.Microsecond), int64(20*time.Millisecond)).Draw(t, "latency")),
			Safety:       time.Duration(rapid.Int64Range(int64(time.Second), int64(10*time.Second)).Draw(t, "safety")),
			HealWithin:   2 * time.Minute,
			CommandEvery: time.Duration(rapid.Int64Range(int64(20*time.Millisecond), int64(time.Second)).Draw(t, "cmds")),
			FaultEvery:   time.Duration(rapid.Int64Range(int64(100*time.Millisecond), int64(3*time.Second)).Draw(t, "faultevery")),
			Faults:       sim.Fault(rapid.IntRange(0, 127).Draw(t, "faults")),
		}
		k.Jitter = time.Duration(rapid.Int64Range(0, int64(3*k.Latency)).Draw(t, "jitter"))
		if k.Faults&sim.FaultDialFail != 0 {
			k.DialFailPM = rapid.IntRange(1, 500).Draw(t, "dialfail")
		}
		if k.Faults&sim.FaultDialTimeout != 0 {
			k.DialTimeoutPM = rapid.IntRange(1, 300).Draw(t, "dialtimeout")
		}
		c := &rapidChooser{t: t, left: 400, after: sim.NewPRNG(k.Seed)}
		w, err := sim.NewWorld(k, sim.Options{Chooser: c})
		if err != nil {
			t.Fatal(err)
		}
		if err := w.Run(); err != nil {
			r := w.Result()
			var b strings.Builder
			r.Report(&b)
			t.Fatalf("%s\n(the replay command above uses the seeded PRNG; replay this exact run with the -rapid.failfile rapid prints)", b.String())
		}
	})
}
