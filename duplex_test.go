package masterless

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestDuplexData sends 1,000 messages each way at once over one session and
// checks what the transport promises: every message at most once and in
// order, and every message when the session never ended. b does not keep a,
// so b reports an end of the session at once (Disconnect, and a second
// Connect if a comes back); the long test peer timeout makes one unlikely
// even on a loaded machine, and a run where it happened checks order only.
func TestDuplexData(t *testing.T) {
	a, ra := newServer(t, "a")
	b, rb := newServer(t, "b")
	id, err := a.Connect(ctxT(t), b.Info())
	require.NoError(t, err)
	require.Equal(t, "b", id)
	require.True(t, a.IsKept("b"))
	require.False(t, b.IsKept("a"))
	eventually(t, "b sees a", func() bool { return sameSet(b.Connections(), "a") })
	require.Equal(t, []string{"b"}, a.Connections())
	ended := func() bool { return rb.sessionEnded("a") }

	const n = 1000
	for i := range n {
		// a keeps b: its sends queue while it reconnects. b's fail only
		// once the session is gone.
		require.True(t, a.Send("b", fmt.Appendf(nil, "a%d", i)), "a's send %d refused", i)
		if !b.Send("a", fmt.Appendf(nil, "b%d", i)) {
			eventually(t, fmt.Sprintf("b, which refused send %d, reports the end of the session", i), ended)
		}
	}
	eventually(t, "every message, or the end of the session", func() bool {
		return ended() || (len(rb.messages("a")) == n && len(ra.messages("b")) == n)
	})
	toB := checkInOrder(t, rb.messages("a"), "a") // at most once, in order
	toA := checkInOrder(t, ra.messages("b"), "b")
	if ended() {
		t.Logf("the session ended (%v): checked at most once and in order; %d and %d of %d delivered",
			rb.disconnects("a"), len(toB), len(toA), n)
	} else {
		require.Len(t, toB, n, "the session never ended, yet messages to b were lost")
		require.Len(t, toA, n, "the session never ended, yet messages to a were lost")
		require.Equal(t, 1, ra.connectCount("b"))
		require.Equal(t, 1, rb.connectCount("a"))
	}
	require.False(t, a.Send("nobody", []byte("x")))
}
