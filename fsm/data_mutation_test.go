//go:build masterless_mutation

package fsm_test

import (
	"math/rand/v2"
	"testing"

	"github.com/masterless-go/masterless/fsm"
)

// TestDataTwinsCatchesRunAcrossActions is the negative control of
// TestDataReceivedIsFramesInOrder: when a run's ActMessages takes in
// messages across an ACK written between them
// (fsm.MutationRunAcrossActions), the twin check must tell the twins apart
// in some of a hundred scripts; the real rule keeps them equal in all.
func TestDataTwinsCatchesRunAcrossActions(t *testing.T) {
	requireTwinsCatch(t, "messages gathered across an ACK", fsm.MutationRunAcrossActions)
}

// TestDataTwinsCatchesRunMiscount is the kept negative control of the
// twins' check of Action.Messages (render): with the count left at one
// (fsm.MutationRunMiscount), some of a hundred scripts must fail it.
func TestDataTwinsCatchesRunMiscount(t *testing.T) {
	requireTwinsCatch(t, "a run's count left at one", fsm.MutationRunMiscount)
}

// TestDataTwinsCatchesRunFrameSize is the kept negative control of the
// twins' check of Action.FrameSize (render): with every stretch given its
// first frame's length (fsm.MutationRunFrameSize), some of a hundred
// scripts must fail it.
func TestDataTwinsCatchesRunFrameSize(t *testing.T) {
	requireTwinsCatch(t, "a run given its first frame's length", fsm.MutationRunFrameSize)
}

// TestDataTwinsCatchesSizedPastCredit is the negative control of the
// twins' check of runs counted by arithmetic (DataReceived.FrameSize,
// steadySized): with such a run taking one frame past the credit
// (fsm.MutationSizedPastCredit), some of a hundred scripts must fail it.
func TestDataTwinsCatchesSizedPastCredit(t *testing.T) {
	requireTwinsCatch(t, "a run of one length taken a frame past the credit", fsm.MutationSizedPastCredit)
}

// requireTwinsCatch requires the run-versus-frames twins (runDataTwins) to
// tell apart, in some of a hundred scripts, a node with mutation m, and
// never one without.
func requireTwinsCatch(t *testing.T, what string, m fsm.Mutation) {
	requireCaught(t, what, func(seed uint64, mutated bool) error {
		cfg := fsm.Config{ID: "M", Incarnation: 1}
		if mutated {
			cfg = cfg.WithMutation(m)
		}
		return runDataTwins(cfg, rand.New(rand.NewPCG(seed, 2)).IntN)
	})
}
