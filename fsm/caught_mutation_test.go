//go:build masterless_mutation

package fsm_test

import "testing"

// requireCaught is the body of a negative control driven by a hundred
// fixed seeds: run(seed, false) runs a script with the real rule and must
// pass every one; run(seed, true) runs the same script with the mutation
// and must fail at least one. what says what went unnoticed if none did.
func requireCaught(t *testing.T, what string, run func(seed uint64, mutated bool) error) {
	t.Helper()
	caught := 0
	for seed := range uint64(100) {
		if err := run(seed, false); err != nil {
			t.Fatalf("seed %d, the real rule: %v", seed, err)
		}
		if err := run(seed, true); err != nil {
			if caught == 0 {
				t.Log(err)
			}
			caught++
		}
	}
	if caught == 0 {
		t.Fatalf("%s went unnoticed in 100 scripts", what)
	}
	t.Logf("caught in %d of 100 scripts", caught)
}
