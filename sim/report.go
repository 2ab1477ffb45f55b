package sim

import (
	"fmt"
	"io"
	"strings"
	"time"
)

// Result is the outcome of one run.
type Result struct {
	Knobs     Knobs
	Err       error         // nil when the run passed
	Where     string        // step, time and phase of the failure
	Steps     int           // events fed to fsm nodes
	Virtual   time.Duration // virtual time at the end
	Recent    []string      // the last steps before the end, oldest first
	Delivered int           // messages delivered
	Stats     Stats         // what the run exercised
	// A load run's longest stall (spec.LoadChecker), where, and its bound.
	MaxStall   time.Duration
	StallWhere string
	StallBound time.Duration
	// A load run's longest wait of a producer for room (SendContext's), and
	// where: flow control, reported, not bounded.
	MaxProducerWait time.Duration
	ProducerWhere   string
	// Scripted: options (discovery, a chooser, ...) or a test's scheduled
	// commands (World.At), which the knobs do not carry, shaped the run, so
	// the knobs alone replay another run: the test that ran it replays it.
	Scripted bool
}

// RunSeed plays the random run of k (usually DrawKnobs(seed)) to the end.
func RunSeed(k Knobs, opt Options) Result {
	w, err := NewWorld(k, opt)
	if err != nil {
		return Result{Knobs: k, Err: err}
	}
	if k.Workload != WorkloadNone {
		w.RunLoad()
	} else {
		w.Run()
	}
	return w.Result()
}

// Result summarizes the world's run so far.
func (w *World) Result() Result {
	r := Result{Knobs: w.k, Err: w.err, Where: w.errAt, Steps: w.steps, Virtual: w.now, Delivered: w.deliveries.Count(), Stats: w.stats, Scripted: w.scripted}
	r.Stats.LostExercised, r.Stats.LostJudged = w.lost.Exercised(), w.lost.Judged()
	for _, n := range w.nodes {
		if n.fsm != nil {
			k := n.fsm.Counters()
			r.Stats.PauseGraces += int(k.PauseGraces)
			r.Stats.WindowsGrown += int(k.WindowsGrown)
		}
	}
	if w.err != nil {
		r.Recent = w.Recent()
	}
	if w.load != nil {
		r.MaxStall, r.StallWhere = w.load.chk.MaxStall()
		r.StallBound = w.load.chk.Bound
		r.MaxProducerWait, r.ProducerWhere = w.load.maxProducerWait, w.load.producerWhere
	}
	return r
}

// ReplayTest is the command that replays the run with go test.
func (r *Result) ReplayTest() string {
	return "go test" + mutationTags(r.Knobs.Mutation) + " ./sim -run 'TestSeed$' -v " + r.Knobs.String()
}

// ReplaySweep is the command that replays the run with simsweep.
func (r *Result) ReplaySweep() string {
	return "go run" + mutationTags(r.Knobs.Mutation) + " ./sim/cmd/simsweep -v " + r.Knobs.String()
}

// Report writes a failure report: seed, knobs, the violated invariant, the
// last steps and the replay commands.
func (r *Result) Report(out io.Writer) {
	if r.Err == nil {
		fmt.Fprintf(out, "sim: seed %d passed: %d steps, %v virtual, %d messages delivered\n", r.Knobs.Seed, r.Steps, r.Virtual, r.Delivered)
		return
	}
	var b strings.Builder
	fmt.Fprintf(&b, "sim: seed %d FAILED at %s\n", r.Knobs.Seed, r.Where)
	fmt.Fprintf(&b, "knobs: %s\n", r.Knobs)
	fmt.Fprintf(&b, "violation:\n  %s\n", strings.ReplaceAll(r.Err.Error(), "\n", "\n  "))
	fmt.Fprintf(&b, "last %d steps (g = global connection id, node/incarnation):\n", len(r.Recent))
	for _, s := range r.Recent {
		fmt.Fprintf(&b, "  %s\n", s)
	}
	if r.Scripted {
		// The replay commands would run the knobs' random run, not this one
		// (a black-box look at a discovery join's failure ran 34 steps and
		// passed).
		fmt.Fprintf(&b, "replay: run the test that failed again: its options or scheduled commands shaped this run, and the knobs above do not carry them\n")
	} else {
		fmt.Fprintf(&b, "replay: %s\n", r.ReplayTest())
		fmt.Fprintf(&b, "    or: %s\n", r.ReplaySweep())
	}
	io.WriteString(out, b.String())
}
