//go:build masterless_mutation

package sim

import (
	"fmt"

	"github.com/masterless-go/masterless/fsm"
)

// Mutation is a deliberately wrong fsm rule (fsm.Mutation), for the
// checkers' negative controls. It exists only in builds with the
// masterless_mutation tag; see mutation_off.go for the others.
type Mutation = fsm.Mutation

// withMutation returns c with the deliberately wrong rule m.
func withMutation(c fsm.Config, m Mutation) fsm.Config { return c.WithMutation(m) }

// checkMutation refuses a mutation fsm does not define.
func checkMutation(m Mutation) error {
	if m > fsm.MutationWindowPastMax {
		return fmt.Errorf("sim: unknown mutation %d (1: dialer leads, 2: no 0.4.1-to-v1 upgrade, 3: no resend, 4: refuse when the handshake slots are full, 5: no HELLO id check, 6: no credit, 7: no pacing by the peer's backlog, 8: discovery dials from both ends, 9: a redial another node answers becomes a session, 10: a kept peer is redialed although it has a session, 11: a Connect dials while its node is handshaking, 12: a send moves the node's clock, 13: an end that does not keep the pair reports its messages lost when a session ends, 14: the peer's BYE unwanted ends the wait for it, 15: the reconnect grace ends while the peer is back on an unconfirmed session, 16: a session's end ignores a lease outstanding, 17: a run of messages gathered across another action, 18: a run's count left at one, 19: one line for every automatic dial, 20: a Tick's Lag ignored, 21: a SendMany keeps the caller's payload, 22: silent handshakes evicted first, 23: a run written past the credit, 24: answer room past the queue's bounds, 25: a discovery redial dropped from its queue with no timer, 26: a run of received frames given its first frame's length, 27: a window grown past MaxWindow)", m)
	}
	return nil
}

// mutationTags is what a go command needs to rebuild a run with mutation m.
func mutationTags(m Mutation) string {
	if m == 0 {
		return ""
	}
	return " -tags masterless_mutation"
}
