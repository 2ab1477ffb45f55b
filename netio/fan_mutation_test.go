//go:build masterless_mutation

package netio

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestFanCatchesBusyLaneJoining is the negative control of
// TestFanKeepsEachProducersOrder: with a lane joining a fan while messages
// of its own wait in it (mutationFanJoinsBusyLane), the fan's frames are
// admitted before them, and some receiver gets a producer's messages out
// of order (or never).
func TestFanCatchesBusyLaneJoining(t *testing.T) {
	caught := false
	for range 3 {
		if fanOrder(t, 30000, 5*time.Second) != nil {
			caught = true
			break
		}
	}
	require.True(t, caught, "with busy lanes joining fans every message still arrived in order: the test cannot fail")
}
