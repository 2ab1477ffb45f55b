//go:build !masterless_trace

package fsm_test

import (
	"testing"

	"github.com/masterless-go/masterless/fsm"
	"github.com/masterless-go/masterless/wire"
)

// Without the build tag the trace points are gone: SetTracer says so, the
// callback never runs, and a step allocates nothing (see also
// BenchmarkStepReceiveData).
func TestTraceOffByDefault(t *testing.T) {
	if fsm.TraceCompiled {
		t.Fatal("TraceCompiled in a build without the masterless_trace tag")
	}
	n, err := fsm.New(fsm.Config{ID: "M", Incarnation: 1})
	if err != nil {
		t.Fatal(err)
	}
	called := false
	if n.SetTracer(func(*fsm.TraceRecord) { called = true }) {
		t.Fatal("SetTracer reports trace points in a build without them")
	}
	_ = n.Step(0, fsm.Accepted{Conn: 1})
	_ = n.Step(0, fsm.FrameReceived{Conn: 1, Frame: wire.Frame{Type: wire.Hello, ID: "A", Incarnation: 1}})
	n.Ready()
	ev := fsm.FrameReceived{Conn: 1, Frame: wire.Frame{Type: wire.Data, Payload: []byte("x")}}
	if a := testing.AllocsPerRun(100, func() { _ = n.Step(0, ev); n.Ready() }); a != 0 {
		t.Fatalf("a DATA step allocates %v times", a)
	}
	if called {
		t.Fatal("the tracer was called")
	}
}
