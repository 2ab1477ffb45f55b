package netio

import (
	"net"
	"runtime"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/masterless-go/masterless/fsm"
)

// silentConnCost is the most an accepted connection may cost the node
// before its dialer's preamble checks out: the structs of fsm, link and
// netio, the 128-byte read buffer, and its two goroutines' stacks; no
// output or 4 KiB+ read buffer (issue 11 measured 64 KiB + 4 KiB each).
const silentConnCost = 16 << 10

// TestSilentConnectionsCostLittle: memory per accepted connection that sent
// nothing, or only a preamble, measured over 200 of them.
func TestSilentConnectionsCostLittle(t *testing.T) {
	for _, tc := range []struct {
		name  string
		first []byte
	}{
		{"nothing", nil},
		{"the first byte of a preamble (the node answers with its own)", []byte("M")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			const conns = 200
			srv := startNode(t, fsm.Config{ID: "srv", MaxHandshakes: 2 * conns, MaxHandshakesPerSource: 2 * conns}, nil, Events{})
			runtime.GC()
			before := memUse()
			var cs []net.Conn
			defer func() {
				for _, c := range cs {
					c.Close()
				}
			}()
			for range conns {
				c, err := net.Dial("tcp", srv.Addr().String())
				require.NoError(t, err)
				if tc.first != nil {
					_, err = c.Write(tc.first)
					require.NoError(t, err)
				}
				cs = append(cs, c)
			}
			deadline := time.Now().Add(30 * time.Second)
			for srv.Stats().Handshaking < conns && time.Now().Before(deadline) {
				time.Sleep(5 * time.Millisecond)
			}
			require.Equal(t, conns, srv.Stats().Handshaking)
			time.Sleep(50 * time.Millisecond) // every reader waits in Read
			runtime.GC()
			per := (int64(memUse()) - int64(before)) / conns
			t.Logf("%d bytes per silent connection (heap and stacks, this process's client sockets included)", per)
			require.Less(t, per, int64(silentConnCost))
		})
	}
}
