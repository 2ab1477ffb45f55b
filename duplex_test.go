package masterless

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestDuplexData(t *testing.T) {
	a, ra := newServer(t, "a")
	b, rb := newServer(t, "b")
	id, err := a.Connect(ctxT(t), b.Info())
	require.NoError(t, err)
	require.Equal(t, "b", id)
	require.True(t, a.IsKept("b"))
	eventually(t, "b sees a", func() bool { return sameSet(b.Connections(), "a") })
	require.Equal(t, []string{"b"}, a.Connections())

	const n = 1000
	for i := range n {
		require.True(t, a.Send("b", fmt.Appendf(nil, "a%d", i)))
		require.True(t, b.Send("a", fmt.Appendf(nil, "b%d", i)))
	}
	eventually(t, "all messages", func() bool {
		return len(rb.messages("a")) == n && len(ra.messages("b")) == n
	})
	for i, m := range rb.messages("a") {
		require.Equal(t, fmt.Sprintf("a%d", i), string(m))
	}
	for i, m := range ra.messages("b") {
		require.Equal(t, fmt.Sprintf("b%d", i), string(m))
	}
	require.Equal(t, 1, ra.connectCount("b"))
	require.Equal(t, 1, rb.connectCount("a"))
	require.False(t, a.Send("nobody", []byte("x")))
}
