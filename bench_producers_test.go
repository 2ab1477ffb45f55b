package masterless

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"
)

// Benchmarks of producers that stream otherwise than one goroutine to one
// peer, the cases a producer's yield to its writer (netio/lane.go,
// stageOrYield) is kept from, each beside its bare-TCP twin: four
// goroutines streaming to one peer, and one producer sending to 16 peers
// in turn. Their figures before and after the yield's limits are in
// PERFORMANCE.md ("A producer that yields to its writer").

// producers is the number of goroutines of BenchmarkProducers4.
const producers = 4

func BenchmarkProducers4(b *testing.B) {
	payload := make([]byte, benchPayload)
	b.Run("masterless", func(b *testing.B) {
		each := max(b.N/producers, 1) // every producer sends as many
		cnt := newCounter()
		a := benchServer(b, "a", nil)
		bb := benchServer(b, "b", func(*Server, string, []byte) { cnt.hit() })
		benchConnect(b, a, bb)
		cnt.want.Store(int64(each * producers))
		b.ResetTimer()
		start := time.Now()
		inParallel(producers, func() {
			for range each {
				if err := a.SendContext(context.Background(), "b", payload); err != nil {
					b.Error(err)
					return
				}
			}
		})
		<-cnt.done
		report(b, each*producers, time.Since(start))
	})
	b.Run("bare", func(b *testing.B) {
		each := max(b.N/producers, 1)
		cnt := newCounter()
		cnt.want.Store(int64(each * producers))
		x, _ := barePair(b, nil, func([]byte) { cnt.hit() })
		b.ResetTimer()
		start := time.Now()
		inParallel(producers, func() {
			for range each {
				x.send(payload)
			}
		})
		<-cnt.done
		report(b, each*producers, time.Since(start))
	})
}

// inParallel runs k goroutines of f and waits for them.
func inParallel(k int, f func()) {
	var wg sync.WaitGroup
	for range k {
		wg.Go(f)
	}
	wg.Wait()
}

func BenchmarkRoundRobin16(b *testing.B) {
	payload := make([]byte, benchPayload)
	b.Run("masterless", func(b *testing.B) {
		cnt := newCounter()
		hub := benchServer(b, "hub", nil)
		var ids []string
		for i := range fanout {
			leaf := benchServer(b, fmt.Sprintf("leaf%02d", i), func(*Server, string, []byte) { cnt.hit() })
			benchConnect(b, leaf, hub)
			ids = append(ids, leaf.ID())
		}
		cnt.want.Store(int64(b.N))
		b.ResetTimer()
		start := time.Now()
		for i := range b.N {
			if err := hub.SendContext(context.Background(), ids[i%fanout], payload); err != nil {
				b.Fatal(err)
			}
		}
		<-cnt.done
		report(b, b.N, time.Since(start))
	})
	b.Run("bare", func(b *testing.B) {
		cnt := newCounter()
		cnt.want.Store(int64(b.N))
		var hub []*bareConn
		for range fanout {
			x, _ := barePair(b, nil, func([]byte) { cnt.hit() })
			hub = append(hub, x)
		}
		b.ResetTimer()
		start := time.Now()
		for i := range b.N {
			hub[i%fanout].send(payload)
		}
		<-cnt.done
		report(b, b.N, time.Since(start))
	})
}
