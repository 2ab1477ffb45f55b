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
	caught := 0
	for seed := range uint64(100) {
		cfg := fsm.Config{ID: "M", Incarnation: 1}
		if err := runDataTwins(cfg, rand.New(rand.NewPCG(seed, 2)).IntN); err != nil {
			t.Fatalf("seed %d, the real rule: %v", seed, err)
		}
		if err := runDataTwins(cfg.WithMutation(fsm.MutationRunAcrossActions), rand.New(rand.NewPCG(seed, 2)).IntN); err != nil {
			if caught == 0 {
				t.Log(err)
			}
			caught++
		}
	}
	if caught == 0 {
		t.Fatal("messages gathered across an ACK went unnoticed in 100 scripts")
	}
	t.Logf("caught in %d of 100 scripts", caught)
}
