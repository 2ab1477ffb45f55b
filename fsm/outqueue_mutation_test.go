//go:build masterless_mutation

package fsm_test

import (
	"math/rand/v2"
	"testing"

	"github.com/masterless-go/masterless/fsm"
)

// TestSendQueueModelCatchesRunPastCredit is the kept negative control of
// TestSendQueueModel: with a run's frames written whatever the credit
// (fsm.MutationRunPastCredit), the model must see messages past the limit
// in some of a hundred scripts; the real rule passes all of them.
func TestSendQueueModelCatchesRunPastCredit(t *testing.T) {
	requireCaught(t, "a run written past the credit", func(seed uint64, mutated bool) error {
		cfg := fsm.Config{ID: "M", Incarnation: 1}
		if mutated {
			cfg = cfg.WithMutation(fsm.MutationRunPastCredit)
		}
		return runSendQueueModel(cfg, rand.New(rand.NewPCG(seed, 3)).IntN)
	})
}
