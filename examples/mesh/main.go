// Command mesh starts N servers in one process, has every one dial every
// other at the same moment, and waits until the mesh has exactly one
// connection per pair: N(N-1)/2 in all. It exits non-zero if that does not
// happen within the timeout.
//
//	go run ./examples/mesh -n 16
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
	flag.Parse()
	if *n < 2 {
		log.Fatal("-n must be at least 2")
	}
	level := slog.LevelWarn
	if *verbose {
		level = slog.LevelDebug
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))

	servers := make([]*masterless.Server, *n)
	for i := range servers {
		s, err := masterless.New(fmt.Sprintf("node-%03d", i), masterless.WithLogger(logger))
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
		for j, t := range servers {
			if i == j {
				continue
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-gate // everyone dials at the same moment
				if _, err := s.Connect(ctx, t.Info()); err != nil {
					errs <- fmt.Errorf("%s -> %s: %w", s.ID(), t.ID(), err)
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
	if failed {
		os.Exit(1)
	}
}
