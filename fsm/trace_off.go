//go:build !masterless_trace

package fsm

import "time"

// Without the build tag masterless_trace the trace points are empty methods
// that the compiler inlines away, and a Node carries no tracer state
// (trace.go).

const traceCompiled = false

type tracer struct{}

func (tracer) on() bool { return false }

// SetTracer would make the node report its steps to t; this build has no
// trace points (build tag masterless_trace), so it does nothing and reports
// false.
func (n *Node) SetTracer(Tracer) bool { return false }

func (n *Node) tracedStep(now time.Duration, ev Event) error { return n.step(now, ev) }

func (n *Node) traceKeepBound(*peer) {}

func (n *Node) traceKeepSet(*peer, bool) {}

func (n *Node) traceTimeout(*conn) {}
