package netio

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/masterless-go/masterless/fsm"
)

// TestSetTracer: with the trace points compiled in (build tag
// masterless_trace) the Runtime passes its fsm's records on, among them the
// accept of a peer's dial; without them SetTracer reports false and nothing
// arrives.
func TestSetTracer(t *testing.T) {
	a := startNode(t, fsm.Config{ID: "a"}, quiet(), Events{})
	var mu sync.Mutex
	var kinds []string
	on := a.SetTracer(func(r *fsm.TraceRecord) {
		mu.Lock()
		kinds = append(kinds, r.Kind)
		mu.Unlock()
	})
	if on != fsm.TraceCompiled {
		t.Fatalf("SetTracer reported %v in a build with TraceCompiled %v", on, fsm.TraceCompiled)
	}
	b := startNode(t, fsm.Config{ID: "b"}, quiet(), Events{})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := b.Connect(ctx, a.Info()); err != nil {
		t.Fatal(err)
	}
	a.SetTracer(nil)
	mu.Lock()
	defer mu.Unlock()
	accepted := false
	for _, k := range kinds {
		accepted = accepted || k == "accept"
	}
	if accepted != on {
		t.Fatalf("trace points compiled in: %v; records %v", on, kinds)
	}
}
