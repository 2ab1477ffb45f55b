package masterless

import (
	"context"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"

	"github.com/stretchr/testify/require"
)

// After SendManyContext returns, the server keeps nothing of the caller's
// ids: an id cut from a larger string (a configuration file, say) must not
// keep that string alive. A black-box audit found the lanes of the latest
// list of peers (netio's manyLanes) keeping the caller's strings, so 64 MiB
// here, for small payloads (the lanes' path); payloads of 512 bytes and
// more (the step's only) kept nothing.
func TestSendManyKeepsNoCallerMemory(t *testing.T) {
	for _, size := range []int{100, 600} {
		hub, _ := newServer(t, "hub")
		r, _ := newServer(t, "r0")
		_, err := hub.Connect(ctxT(t), r.Info())
		require.NoError(t, err)
		var freed atomic.Bool
		func() {
			big := "r0" + strings.Repeat("x", 64<<20)
			ids := []string{big[:2]}
			runtime.AddCleanup(unsafe.StringData(big), func(f *atomic.Bool) { f.Store(true) }, &freed)
			for range 3 { // the lease's grant, a stale lookup, the lanes kept
				n, err := hub.SendManyContext(context.Background(), ids, make([]byte, size))
				require.NoError(t, err)
				require.Equal(t, 1, n)
			}
		}()
		for i := 0; i < 100 && !freed.Load(); i++ {
			runtime.GC()
			time.Sleep(10 * time.Millisecond)
		}
		require.True(t, freed.Load(), "payloads of %d bytes: the server keeps the caller's id (64 MiB) after SendManyContext returned", size)
		hub.Close()
		r.Close()
	}
}

// SendManyContext to no peer sends nothing and says nothing went wrong,
// except on a closed server, whatever the payload's size (a small one
// takes the lanes' path, which needs no step: an audit saw it return nil
// there).
func TestSendManyToNoPeer(t *testing.T) {
	a, _ := newServer(t, "a")
	for _, size := range []int{10, 600} {
		n, err := a.SendManyContext(ctxT(t), nil, make([]byte, size))
		require.Zero(t, n)
		require.NoError(t, err, "%d bytes", size)
	}
	require.NoError(t, a.Close())
	for _, size := range []int{10, 600} {
		n, err := a.SendManyContext(ctxT(t), nil, make([]byte, size))
		require.Zero(t, n)
		require.ErrorIs(t, err, ErrClosed, "%d bytes", size)
	}
}
