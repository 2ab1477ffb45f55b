package netio

import (
	"time"

	"github.com/masterless-go/masterless/fsm"
)

// timerLoop keeps one timer armed to the fsm's next deadline and feeds it
// Tick when it fires. The fsm may report a deadline earlier than needed; the
// Tick then finds nothing due and the next deadline is recomputed.
func (n *Runtime) timerLoop() {
	defer n.wg.Done()
	t := time.NewTimer(time.Hour)
	defer t.Stop()
	var inline []*conn // the heartbeats written inline (inline.go)
	for {
		n.mu.Lock()
		d, ok := n.fsm.NextDeadline()
		if !ok {
			d = never
		}
		n.armed = d
		wait := time.Hour
		if ok {
			wait = max(d-n.now(), 0)
		}
		n.mu.Unlock()
		t.Reset(wait)
		select {
		case <-t.C:
			lag := n.probe.lag() // before the lock: waiting for it is not the network's lag
			n.mu.Lock()
			if !n.closed {
				n.allowInline(inlineAll, inlinePaced) // heartbeats, acknowledgements (inline.go)
				_ = n.link.Step(n.now(), fsm.Tick{Lag: lag})
				n.noInline()
				n.settle()
				n.trimEvents()
			}
			inline = n.takeInline(inline[:0])
			n.mu.Unlock()
			flushInline(inline)
			clear(inline)
			n.disp.trimIdle()
		case <-n.kick:
		case <-n.done:
			return
		}
	}
}
