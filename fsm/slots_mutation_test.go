//go:build masterless_mutation

package fsm_test

import (
	"errors"
	"testing"
	"time"

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

// TestEvictionSparesNewcomersCatchesSilentFirst is the negative control of
// TestEvictionSparesNewcomersInAHelloFlood: with the silent tier always
// evicted first (fsm.MutationSilentFirst), the real connection is evicted
// before its HELLO is read, from many addresses and from one.
func TestEvictionSparesNewcomersCatchesSilentFirst(t *testing.T) {
	for _, sources := range []int{20, 1} {
		ok, err := helloFloodThenHello(t, slotConfig().WithMutation(fsm.MutationSilentFirst), sources, 2*time.Millisecond)
		if ok || !errors.Is(err, fsm.ErrEvicted) {
			t.Fatalf("%d sources, silent first: the real connection got in (%v, closed with %v): the test cannot fail", sources, ok, err)
		}
	}
}
