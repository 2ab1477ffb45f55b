//go:build masterless_mutation

package fsm_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/masterless-go/masterless/fsm"
	"github.com/masterless-go/masterless/wire"
)

// TestCheckStreamsCatchesWindowPastMax is the negative control of
// CheckStreams' check of the credit against MaxWindow (check.go,
// checkWindow): with a window that doubles past MaxWindow
// (fsm.MutationWindowPastMax), the stream of TestWindowGrowsForAUserThatKeepsUp
// must fail it.
func TestCheckStreamsCatchesWindowPastMax(t *testing.T) {
	const w, most = 64 << 10, 512 << 10
	n := establishedWith(t, fsm.Config{ID: "M", Incarnation: 1, Window: w, MaxWindow: most}.WithMutation(fsm.MutationWindowPastMax))
	payload := make([]byte, 1000)
	var now time.Duration
	received, limit := uint64(0), uint64(w)
	for range 40 {
		k := 0
		for ; received+1032 <= limit; k++ {
			require.NoError(t, n.Step(now, fsm.FrameReceived{Conn: 1, Frame: wire.Frame{Type: wire.Data, Payload: payload}}))
			received += 1032
		}
		now += 100 * time.Microsecond
		require.NoError(t, n.Step(now, fsm.Consumed{Peer: "A", Incarnation: 1, Messages: k, Bytes: k * 1000}))
		for _, a := range n.Ready() {
			if a.Kind == fsm.ActWrite && a.Frame.Type == wire.Ack {
				limit = max(limit, received+a.Frame.Credit)
			}
		}
		if err := n.CheckStreams(); err != nil {
			require.ErrorContains(t, err, "past MaxWindow")
			return
		}
	}
	t.Fatal("CheckStreams did not notice a window past MaxWindow")
}
