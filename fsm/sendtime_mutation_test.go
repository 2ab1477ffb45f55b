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
	requireCaught(t, "a send that moves the node's clock", func(seed uint64, mutated bool) error {
		r := rand.New(rand.NewPCG(seed, 1))
		script := twinScript(func(k int) int { return r.IntN(k) }, 40)
		cfg := fsm.Config{ID: "M", Incarnation: 1, Seed: 1}
		if mutated {
			cfg = cfg.WithMutation(fsm.MutationSendKeepsTime)
		}
		return runTwins(cfg, script)
	})
}
