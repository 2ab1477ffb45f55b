package masterless

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestDuplexData sends 1,000 messages each way at once over one session and
// checks what the transport promises: a keeps b, so every message to b
// arrives exactly once and in order, even if the session ends and a
// reconnects (its messages are resent). b does not keep a, so an end of the
// session is reported at once on b's side (Disconnect, and b hands its
// unacknowledged messages back as lost): its messages to a are checked for
// order and repetition, and for completeness only when the session never
// ended (the long test peer timeout makes an end unlikely even on a loaded
// machine).
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
	eventually(t, "every message to b, and to a unless the session ended", func() bool {
		return len(rb.messages("a")) == n && (ended() || len(ra.messages("b")) == n)
	})
	toB := checkInOrder(t, rb.messages("a"), "a") // never twice, in order
	require.Len(t, toB, n, "a keeps b: every message to b arrives, whatever happened to the session")
	toA := checkInOrder(t, ra.messages("b"), "b")
	if ended() {
		t.Logf("the session ended (%v): %d of %d messages to a delivered, in order", rb.disconnects("a"), len(toA), n)
	} else {
		require.Len(t, toA, n, "the session never ended, yet messages to a were lost")
		require.Equal(t, 1, ra.connectCount("b"))
		require.Equal(t, 1, rb.connectCount("a"))
	}
	require.False(t, a.Send("nobody", []byte("x")))
}
