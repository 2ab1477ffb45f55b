//go:build masterless_mutation

package fsm_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/masterless-go/masterless/fsm"
)

// TestRedialCatchesStrangerSession is the negative control of
// TestRedialReachingAnotherNodeIsClosedBeforeSession: when a redial that
// another node answers goes on to a session with it
// (fsm.MutationRedialStranger), the same check must report it, whichever
// end leads the pair; the real rule passes it.
func TestRedialCatchesStrangerSession(t *testing.T) {
	for _, other := range []string{"c", "0"} { // c leads the pair, 0 follows
		t.Run(other, func(t *testing.T) {
			correct := plainNode(t, "a")
			keepAt(t, correct, "b", "tcp://b", "tcp://b")
			require.NoError(t, redialReachesOther(t, correct, other, 10))

			d := newDiscNode(t, "a", func(c *fsm.Config) {
				*c = c.WithMutation(fsm.MutationRedialStranger)
				c.Discovery = false
			})
			keepAt(t, d, "b", "tcp://b", "tcp://b")
			err := redialReachesOther(t, d, other, 10)
			require.Error(t, err, "a redial reaching another node went on unnoticed")
			t.Log(err)
		})
	}
}

// TestRedialsCatchesOneLine is the negative control of
// TestRedialsOfTheUnansweredTakeHalf: with every automatic dial in one line
// (fsm.MutationOneRedialLine), the unanswered redials fill the slots and
// the peer that comes back waits behind them, which the same scenario must
// show.
func TestRedialsCatchesOneLine(t *testing.T) {
	_, _, after := unansweredThenBack(t, fsm.Config{}.WithMutation(fsm.MutationOneRedialLine))
	require.GreaterOrEqual(t, after, 300*time.Millisecond, "with one line, z's redial should have waited behind the unanswered ones")
	t.Logf("with one line, z's redial waited %v", after)
}
