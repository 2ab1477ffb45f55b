// Command mesh starts N servers in one process, has every one dial every
// other at the same moment, and waits until the mesh has exactly one
// connection per pair: N(N-1)/2 in all. It exits non-zero if that does not
// happen within the timeout.
//
//	go run ./examples/mesh -n 16
//
// Each server has at most -inflight Connect calls under way at once (all of
// them at once up to 33 nodes), so that a large mesh does not need every
// TCP connection of every pair open at the same moment (both directions of
// 128 nodes are 32,512 sockets; a process often may open 20,000), and a
// Connect that fails (out of descriptors, a handshake that timed out) is
// tried again after a pause until the timeout. (Without -join the example
// does this itself; WithConnectRetry would have the library do it.)
//
// With -join, every server runs discovery (masterless.WithDiscovery) and
// knows only node 0's address: servers 1..N-1 each Connect to node 0 once,
// and learn every other member from their peers. Of each new pair only the
// node with the smaller id dials, so the mesh opens one TCP connection per
// pair when nothing fails:
//
//	go run ./examples/mesh -n 64 -join
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/masterless-go/masterless"
)

func main() {
	n := flag.Int("n", 16, "number of nodes")
	timeout := flag.Duration("timeout", 30*time.Second, "give up after this long")
	verbose := flag.Bool("v", false, "log protocol events")
	inflight := flag.Int("inflight", 32, "Connect calls under way at once per server")
	join := flag.Bool("join", false, "discovery: every node knows only node 0's address")
	flag.Parse()
	if *n < 2 {
		log.Fatal("-n must be at least 2")
	}
	level := slog.LevelWarn
	if *verbose {
		level = slog.LevelDebug
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	if limit := raiseFileLimit(); limit != 0 && limit < uint64(*n)*uint64(*n-1)+64 {
		log.Printf("warning: %d open files allowed, a mesh of %d needs about %d: it may not converge", limit, *n, *n*(*n-1))
	}

	servers := make([]*masterless.Server, *n)
	for i := range servers {
		opts := []masterless.Option{masterless.WithLogger(logger)}
		if *join {
			opts = append(opts, masterless.WithDiscovery())
		}
		s, err := masterless.New(fmt.Sprintf("node-%03d", i), opts...)
		if err != nil {
			log.Fatal(err)
		}
		defer s.Close()
		servers[i] = s
	}

	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	start := time.Now()
	var wg sync.WaitGroup
	gate := make(chan struct{})
	errs := make(chan error, *n**n)
	for i, s := range servers {
		if *join {
			if i == 0 {
				continue
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-gate
				// One call: with discovery the library keeps node 0's
				// address until it answers, and finds every other member.
				if _, err := s.Connect(ctx, servers[0].Info()); err != nil {
					log.Printf("%s: first Connect to node 0 failed (retried by the library): %v", s.ID(), err)
				}
			}()
			continue
		}
		slots := make(chan struct{}, max(*inflight, 1))
		for j, t := range servers {
			if i == j {
				continue
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-gate // everyone dials at the same moment
				slots <- struct{}{}
				defer func() { <-slots }()
				pause := 50 * time.Millisecond
				for {
					_, err := s.Connect(ctx, t.Info())
					if err == nil {
						return
					}
					select {
					case <-ctx.Done():
						errs <- fmt.Errorf("%s -> %s: %w", s.ID(), t.ID(), err)
						return
					case <-time.After(pause):
						pause = min(2*pause, time.Second)
					}
				}
			}()
		}
	}
	close(gate)
	wg.Wait()
	close(errs)
	failed := false
	for err := range errs {
		log.Print(err)
		failed = true
	}

	want := *n * (*n - 1) / 2
	for {
		total, agreed := 0, true
		for _, s := range servers {
			c := len(s.Connections())
			total += c
			agreed = agreed && c == *n-1
		}
		if total%2 == 0 && total/2 == want && agreed {
			break
		}
		if ctx.Err() != nil {
			for _, s := range servers {
				fmt.Printf("%s: %d connections\n", s.ID(), len(s.Connections()))
			}
			fmt.Printf("did not converge within %v: %d connection ends, want %d\n", *timeout, total, 2*want)
			os.Exit(1)
		}
		time.Sleep(time.Millisecond)
	}
	converged := time.Since(start)
	total := 0
	for _, s := range servers {
		c := len(s.Connections())
		fmt.Printf("%s: %d connections\n", s.ID(), c)
		total += c
	}
	fmt.Printf("total: %d connections (N(N-1)/2 = %d), converged in %v\n", total/2, want, converged.Round(time.Microsecond))
	if *join {
		fmt.Printf("discovery: every node started knowing only %s\n", servers[0].Info())
	}
	if failed {
		os.Exit(1)
	}
}
