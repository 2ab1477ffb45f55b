//go:build masterless_mutation

package netio

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/masterless-go/masterless/fsm"
)

// TestIdleFloodCatchesRefuseWhenFull is the negative control of TestIdleFlood:
// with the rule it replaced (a node whose slots are full refuses the
// newcomer, fsm.MutationRefuseWhenFull) the same flood keeps the real node out
// for the whole second.
func TestIdleFloodCatchesRefuseWhenFull(t *testing.T) {
	cfg := fsm.Config{ID: "srv"}.WithMutation(fsm.MutationRefuseWhenFull)
	times, ok := idleFlood(t, cfg, 8, 1, time.Second)
	require.False(t, ok, "without eviction a real node still connected during the idle flood (%v): the test cannot fail", times)
}

// TestIdleFloodTLSCatchesRefuseWhenFull: the same control for the TLS
// flood: connections stalled in their TLS handshake keep a real node out
// when a full node refuses newcomers.
func TestIdleFloodTLSCatchesRefuseWhenFull(t *testing.T) {
	cfg := fsm.Config{ID: "srv", RequireAuth: true}.WithMutation(fsm.MutationRefuseWhenFull)
	times, ok := idleFloodOf(t, cfg, true, floodTLSStall, 8, 1, time.Second)
	require.False(t, ok, "without eviction a real node still connected during the TLS-stalling flood (%v): the test cannot fail", times)
}

// TestHelloFloodCatchesRefusal is the negative control of TestHelloFlood:
// with newcomers refused while the slots are full (fsm.MutationRefuseWhenFull,
// the rule before eviction), the flood's connections, held open, hold
// every slot for the handshake timeout and real nodes are kept out.
func TestHelloFloodCatchesRefusal(t *testing.T) {
	cfg := fsm.Config{ID: "mm-node"}.WithMutation(fsm.MutationRefuseWhenFull)
	r := helloFlood(t, cfg, 1, 1<<20) // all held: about 10,000 in the 1.3 s this takes
	require.Positive(t, r.keptOut, "with newcomers refused, the HELLO flood must keep real nodes out")
}
