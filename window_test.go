package masterless

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"
)

// A peer's window (Stats, PeerStats.Window) starts at WithWindow's and
// grows, up to WithMaxWindow's and no further, while the callbacks take
// the peer's stream fast; a window set with WithWindow alone stays.
func TestWindowGrowsForAFastStream(t *testing.T) {
	const w, most = 256 << 10, 1 << 20
	for _, c := range []struct {
		name string
		opts []Option
		want int
	}{
		{"grows", []Option{WithWindow(w), WithMaxWindow(most)}, most},
		{"set alone", []Option{WithWindow(w)}, w},
	} {
		t.Run(c.name, func(t *testing.T) {
			a, _ := newServer(t, "a")
			b, _ := newServer(t, "b", c.opts...)
			_, err := a.Connect(ctxT(t), b.Info())
			require.NoError(t, err)
			window := func() int {
				for _, p := range b.Stats().Peers {
					if p.ID == "a" {
						return p.Window
					}
				}
				return 0
			}
			require.Equal(t, w, window(), "the window before any message")
			// 64 KiB messages: a window is four to sixteen of them, which
			// the callbacks take within 2 ms even under the race detector.
			payload := make([]byte, 64<<10)
			ctx, cancel := context.WithTimeout(context.Background(), waitFor)
			defer cancel()
			seen := 0
			for sent := 0; ctx.Err() == nil; sent++ {
				require.NoError(t, a.SendContext(ctx, "b", payload))
				seen = max(seen, window())
				require.LessOrEqual(t, seen, c.want, "a window past its bound")
				if seen == c.want && sent >= 2000 {
					break
				}
			}
			require.Equal(t, c.want, seen, "the window of a fast stream")
		})
	}
}
