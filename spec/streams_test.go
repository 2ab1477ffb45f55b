package spec_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/masterless-go/masterless/spec"
)

// The ledger catches a message that vanished, and only one whose sender is
// still alive.
func TestStreamLedger(t *testing.T) {
	var l spec.StreamLedger
	alive := func(src string, inc uint64) bool { return src == "a" && inc == 2 }
	l.Accepted("a", 2, "b", 1)
	l.Accepted("a", 2, "b", 2)
	l.Accepted("a", 2, "b", 3)
	l.Accepted("a", 1, "b", 9) // from a process that ended
	l.Done("a", "b", 1)        // delivered
	l.Done("a", "b", 3)        // reported lost
	err := l.CheckNoneVanished(alive)
	require.ErrorContains(t, err, "a>b#2")
	require.NotContains(t, err.Error(), "#9")
	l.Done("a", "b", 2)
	require.NoError(t, l.CheckNoneVanished(alive))
}
