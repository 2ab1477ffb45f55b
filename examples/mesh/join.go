package main

import (
	"context"
	"log"
	"sync"

	"github.com/masterless-go/masterless"
)

// joinAll has servers 1..N-1 Connect to server 0 once, all at the same
// moment. With discovery the library keeps node 0's address until it
// answers, and finds every other member by itself, so a failed first
// Connect is only logged. The channel never carries an error.
func joinAll(ctx context.Context, servers []*masterless.Server) <-chan error {
	var wg sync.WaitGroup
	gate := make(chan struct{})
	for _, s := range servers[1:] {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-gate
			if _, err := s.Connect(ctx, servers[0].Info()); err != nil {
				log.Printf("%s: first Connect to node 0 failed (the library tries again): %v", s.ID(), err)
			}
		}()
	}
	close(gate)
	errs := make(chan error)
	go func() {
		wg.Wait()
		close(errs)
	}()
	return errs
}
