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
	requireCaught(t, "messages gathered across an ACK", func(seed uint64, mutated bool) error {
		cfg := fsm.Config{ID: "M", Incarnation: 1}
		if mutated {
			cfg = cfg.WithMutation(fsm.MutationRunAcrossActions)
		}
		return runDataTwins(cfg, rand.New(rand.NewPCG(seed, 2)).IntN)
	})
}

// TestDataTwinsCatchesRunMiscount is the kept negative control of the
// twins' check of Action.Messages (render): with the count left at one
// (fsm.MutationRunMiscount), some of a hundred scripts must fail it.
func TestDataTwinsCatchesRunMiscount(t *testing.T) {
	requireCaught(t, "a run's count left at one", func(seed uint64, mutated bool) error {
		cfg := fsm.Config{ID: "M", Incarnation: 1}
		if mutated {
			cfg = cfg.WithMutation(fsm.MutationRunMiscount)
		}
		return runDataTwins(cfg, rand.New(rand.NewPCG(seed, 2)).IntN)
	})
}
