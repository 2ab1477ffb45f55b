//go:build masterless_mutation

package fsm_test

import (
	"errors"
	"testing"

	"github.com/masterless-go/masterless/fsm"
)

// TestEvictionCatchesRefuseWhenFull is the negative control of
// TestEvictionLetsARealNodeIn: with the old rule (a full node refuses the
// newcomer) the same flood keeps the real node out.
func TestEvictionCatchesRefuseWhenFull(t *testing.T) {
	ok, err := floodThenHello(t, slotConfig().WithMutation(fsm.MutationRefuseWhenFull))
	if ok || !errors.Is(err, fsm.ErrTooManyHandshakes) {
		t.Fatalf("without eviction the real node got in (%v, closed with %v): the test cannot fail", ok, err)
	}
}
