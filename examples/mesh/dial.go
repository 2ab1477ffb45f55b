package main

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"time"

	"github.com/masterless-go/masterless"
)

// dialAll has every server (node first+k for servers[k]) Connect to every
// address of addrs but its own, all at the same moment, at most inflight at
// once per server (inflight goroutines per server take the addresses in
// turn), each retried after a growing pause until ctx ends. The
// channel it returns gets the Connects that never succeeded, and is closed
// when every one has ended.
func dialAll(ctx context.Context, servers []*masterless.Server, first int, addrs []string, inflight int) <-chan error {
	var wg sync.WaitGroup
	gate := make(chan struct{})
	errs := make(chan error, len(servers)*len(addrs))
	for k, s := range servers {
		targets := make(chan int, len(addrs))
		for j := range addrs {
			if j != first+k {
				targets <- j
			}
		}
		close(targets)
		for range max(inflight, 1) {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-gate // everyone dials at the same moment
				for j := range targets {
					if err := connect(ctx, s, addrs[j]); err != nil {
						errs <- fmt.Errorf("%s -> %s: %w", s.ID(), nodeID(j), err)
					}
				}
			}()
		}
	}
	close(gate)
	go func() {
		wg.Wait()
		close(errs)
	}()
	return errs
}

// connect calls Connect until it succeeds, with a growing pause between
// attempts, or until ctx ends.
func connect(ctx context.Context, s *masterless.Server, addr string) error {
	pause := 50 * time.Millisecond
	for {
		_, err := s.Connect(ctx, addr)
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(pause):
			pause = min(2*pause, time.Second)
		}
	}
}

// usage is the most heap in use and goroutines seen by sampleUsage.
type usage struct {
	heap       uint64
	goroutines int
}

// sampleUsage samples the heap in use and the goroutines every 50 ms until
// ctx ends; the function it returns stops sampling and gives the peaks.
func sampleUsage(ctx context.Context) func() usage {
	ctx, cancel := context.WithCancel(ctx)
	var mu sync.Mutex
	var peak usage
	sample := func() {
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		g := runtime.NumGoroutine()
		mu.Lock()
		peak.heap, peak.goroutines = max(peak.heap, m.HeapInuse), max(peak.goroutines, g)
		mu.Unlock()
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(50 * time.Millisecond)
		defer t.Stop()
		for {
			sample()
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	return func() usage {
		cancel()
		<-done
		sample()
		mu.Lock()
		defer mu.Unlock()
		return peak
	}
}
