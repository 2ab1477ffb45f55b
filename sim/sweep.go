package sim

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// SweepConfig describes a sweep over consecutive seeds.
type SweepConfig struct {
	First   uint64 // first seed
	Seeds   int    // how many
	Workers int    // goroutines (0: GOMAXPROCS); each World stays on one
	// Knobs turns a seed into knobs (nil: DrawKnobs).
	Knobs func(seed uint64) Knobs
	// Options for every world (its Chooser and Trace are set per seed).
	Options Options
	// TraceDir, if set, receives one NDJSON trace per seed, seed-N.ndjson
	// (spec/TRACE.md), except for seeds the model cannot replay (0.4.1
	// dialers, mutations).
	TraceDir string
	// StopAfter stops early after this many failures (0: never).
	StopAfter int
	// Keep keeps every seed's Result in SweepResult.All, not only the
	// failures.
	Keep bool
}

// SweepResult sums up a sweep.
type SweepResult struct {
	Seeds     int
	Failures  []Result // in seed order
	All       []Result // every seed's, in seed order, with SweepConfig.Keep
	Steps     int64
	Elapsed   time.Duration
	Stats     Stats // summed over all seeds
	Delivered int
}

// Summary is the sweep's closing line: "sim: N seeds, M failed".
func (s *SweepResult) Summary() string {
	return fmt.Sprintf("sim: %d seeds, %d failed", s.Seeds, len(s.Failures))
}

// Sweep runs many seeds on worker goroutines. The result does not depend on
// the number of workers: each seed is a world of its own.
func Sweep(cfg SweepConfig) SweepResult {
	if cfg.Workers <= 0 {
		cfg.Workers = runtime.GOMAXPROCS(0)
	}
	if cfg.Knobs == nil {
		cfg.Knobs = DrawKnobs
	}
	start := time.Now()
	results := make([]*Result, cfg.Seeds)
	var next, failed atomic.Int64
	var steps atomic.Int64
	var wg sync.WaitGroup
	for range cfg.Workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1) - 1
				if i >= int64(cfg.Seeds) || (cfg.StopAfter > 0 && failed.Load() >= int64(cfg.StopAfter)) {
					return
				}
				seed := cfg.First + uint64(i)
				opt := cfg.Options
				var f *os.File
				if cfg.TraceDir != "" && traceable(cfg.Knobs(seed)) {
					var err error
					f, err = os.Create(filepath.Join(cfg.TraceDir, fmt.Sprintf("seed-%d.ndjson", seed)))
					if err != nil {
						results[i] = &Result{Knobs: cfg.Knobs(seed), Err: err}
						failed.Add(1)
						continue
					}
					opt.Trace = f
				}
				r := RunSeed(cfg.Knobs(seed), opt)
				if f != nil {
					f.Close()
				}
				steps.Add(int64(r.Steps))
				if r.Err != nil {
					failed.Add(1)
				}
				results[i] = &r
			}
		}()
	}
	wg.Wait()
	out := SweepResult{Steps: steps.Load(), Elapsed: time.Since(start)}
	for _, r := range results {
		if r == nil {
			continue
		}
		out.Seeds++
		out.Stats.Add(&r.Stats)
		out.Delivered += r.Delivered
		if r.Err != nil {
			out.Failures = append(out.Failures, *r)
		}
		if cfg.Keep {
			out.All = append(out.All, *r)
		}
	}
	return out
}
