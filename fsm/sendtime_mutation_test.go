//go:build masterless_mutation

package fsm_test

import (
	"math/rand/v2"
	"testing"

	"github.com/masterless-go/masterless/fsm"
)

// TestSendTimeFreeCatchesKeptTime is the negative control of
// TestSendIsTimeFree: when Step keeps a send's now as the node's clock
// (fsm.MutationSendKeepsTime), the twin check must tell the twins apart in
// some of a hundred scripts; the real rule keeps them equal in all of them.
func TestSendTimeFreeCatchesKeptTime(t *testing.T) {
	caught := 0
	for seed := range uint64(100) {
		r := rand.New(rand.NewPCG(seed, 1))
		script := twinScript(func(k int) int { return r.IntN(k) }, 40)
		if err := runTwins(fsm.Config{ID: "M", Incarnation: 1, Seed: 1}, script); err != nil {
			t.Fatalf("seed %d, the real rule: %v", seed, err)
		}
		if err := runTwins(fsm.Config{ID: "M", Incarnation: 1, Seed: 1}.WithMutation(fsm.MutationSendKeepsTime), script); err != nil {
			if caught == 0 {
				t.Log(err)
			}
			caught++
		}
	}
	if caught == 0 {
		t.Fatal("a send that moves the node's clock went unnoticed in 100 scripts")
	}
	t.Logf("caught in %d of 100 scripts", caught)
}
