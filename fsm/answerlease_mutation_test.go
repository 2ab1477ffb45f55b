//go:build masterless_mutation

package fsm_test

import (
	"fmt"
	"testing"

	"github.com/masterless-go/masterless/fsm"
)

// TestAnswerRoomCatchesPastBounds is the negative control of
// CheckStreams's lease check: with MutationAnswerRoomPastBounds the answer
// room granted near a full queue takes it past QueueMessages, which the
// check must see; the real rule passes the same script.
func TestAnswerRoomCatchesPastBounds(t *testing.T) {
	run := func(m fsm.Mutation) error {
		cfg := fsm.Config{ID: "M", Incarnation: 1, Window: 1 << 10, QueueMessages: 232, Leases: true}.WithMutation(m)
		n := sessionWith(t, 0, cfg) // no credit: the answers stay queued
		for i := range 300 {
			_ = n.Step(0, fsm.Send{Peer: "A", Payload: []byte("a")})
			n.Ready()
			if err := n.CheckStreams(); err != nil {
				return fmt.Errorf("after answer %d: %w", i, err)
			}
		}
		return nil
	}
	if err := run(fsm.MutationNone); err != nil {
		t.Fatalf("the real rule: %v", err)
	}
	err := run(fsm.MutationAnswerRoomPastBounds)
	if err == nil {
		t.Fatal("answer room granted past the queue's bounds went unnoticed")
	}
	t.Log(err)
}
