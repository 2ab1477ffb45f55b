package netio

import "github.com/masterless-go/masterless/fsm"

// SetTracer makes the Runtime's state machine report every step to t (nil:
// stop), under the core lock, in the records of fsm.TraceRecord
// (spec/TRACE.md). It reports whether this build has the trace points (build
// tag masterless_trace); without them it does nothing and reports false.
// The records are the node's own: the caller writes them down, mapping
// connection ids and naming the nodes its dials reached. Set it before the
// Runtime meets its first peer, or the trace starts mid-way.
func (n *Runtime) SetTracer(t fsm.Tracer) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.fsm.SetTracer(t)
}
