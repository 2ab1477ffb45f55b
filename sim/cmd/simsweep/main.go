// Command simsweep runs the masterless simulator over many seeds, or replays
// one.
//
//	go run ./sim/cmd/simsweep -seeds 10000          # seeds 1..10000
//	go run ./sim/cmd/simsweep -seed 123 -v           # replay one seed, print its report
//	go run -tags masterless_trace ./sim/cmd/simsweep -seeds 100 -trace DIR  # also write seed-N.ndjson traces
//	go run ./sim/cmd/simsweep -load -seeds 100      # load runs (TestSweepLoad's knobs)
//
// It ends with the line "sim: N seeds, M failed", after the report and the
// replay command of every failure, and exits 1 if any failed. Knob flags
// (-nodes, -faults, -mutation, ...) override what each seed draws.
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/masterless-go/masterless/fsm"
	"github.com/masterless-go/masterless/sim"
)

func main() {
	kf := sim.RegisterKnobs(flag.CommandLine)
	seeds := flag.Int("seeds", 1000, "number of seeds to run, starting at -first")
	first := flag.Uint64("first", 1, "first seed of the sweep")
	workers := flag.Int("workers", 0, "worker goroutines (0: GOMAXPROCS)")
	traceDir := flag.String("trace", os.Getenv("SIM_TRACE_DIR"), "directory for one NDJSON trace per seed (default $SIM_TRACE_DIR)")
	verbose := flag.Bool("v", false, "print a report for every seed, not only failures")
	maxFail := flag.Int("maxfail", 20, "stop after this many failures (0: never)")
	load := flag.Bool("load", false, "load runs: each seed's knobs from sim.DrawLoadKnobs (TestSweepLoad's)")
	flag.Parse()

	cfg := sim.SweepConfig{First: *first, Seeds: *seeds, Workers: *workers, TraceDir: *traceDir, StopAfter: *maxFail}
	if s := kf.Seed(); s != 0 {
		cfg.First, cfg.Seeds = s, 1
	}
	if *traceDir != "" {
		if !fsm.TraceCompiled {
			// Refused here, once: each seed would otherwise fail alone,
			// with a replay command that passes.
			fmt.Fprintln(os.Stderr, "simsweep: -trace (or $SIM_TRACE_DIR) needs the fsm's trace points: go run -tags masterless_trace ./sim/cmd/simsweep ...")
			os.Exit(2)
		}
		if err := os.MkdirAll(*traceDir, 0o755); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
	}
	var knobErr error
	cfg.Knobs = func(seed uint64) sim.Knobs {
		base := sim.DrawKnobs(seed)
		if *load {
			base = sim.DrawLoadKnobs(seed)
		}
		k, err := kf.ResolveOn(base)
		if err != nil {
			knobErr = err
		}
		return k
	}
	if _, err := kf.Resolve(cfg.First); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	res := sim.Sweep(cfg)
	_ = knobErr
	for i := range res.Failures {
		res.Failures[i].Report(os.Stdout)
		fmt.Println()
	}
	if *verbose && len(res.Failures) == 0 && cfg.Seeds == 1 {
		r := sim.RunSeed(cfg.Knobs(cfg.First), sim.Options{})
		r.Report(os.Stdout)
	}
	fmt.Printf("%d steps in %v: %.0f steps/s, %.0f seeds/s\n", res.Steps, res.Elapsed.Round(1e6), float64(res.Steps)/res.Elapsed.Seconds(), float64(res.Seeds)/res.Elapsed.Seconds())
	fmt.Printf("exercised: %s, delivered=%d\n", &res.Stats, res.Delivered)
	fmt.Println(res.Summary())
	if len(res.Failures) > 0 {
		os.Exit(1)
	}
}
