//go:build masterless_mutation

package fsm_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/masterless-go/masterless/fsm"
)

// TestCheckStreamsCatchesWindowPastMax is the negative control of
// CheckStreams' check of the credit against MaxWindow (check.go,
// checkWindow): with a window that grows eightfold past MaxWindow
// (fsm.MutationWindowPastMax), the stream of TestWindowGrowsForAUserThatKeepsUp
// must fail it.
func TestCheckStreamsCatchesWindowPastMax(t *testing.T) {
	const w, most = 64 << 10, 512 << 10
	r := newWindowRun(t, fsm.Config{ID: "M", Incarnation: 1, Window: w, MaxWindow: most}.WithMutation(fsm.MutationWindowPastMax))
	var caught error
	r.checked = func(err error) {
		if err != nil && caught == nil {
			caught, r.stopped = err, true
		}
	}
	r.stream(40, 100*time.Microsecond)
	require.Error(t, caught, "CheckStreams did not notice a window past MaxWindow")
	require.ErrorContains(t, caught, "past MaxWindow")
}
