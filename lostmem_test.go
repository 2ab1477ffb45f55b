package masterless

import (
	"net"
	"runtime"
	"strings"
	"testing"
	"time"
	"weak"

	"github.com/stretchr/testify/require"
)

// TestLostPayloadsNotHeldWhileIdle: once the Lost event's callback has
// dropped the payloads it was handed, the node holds none of them, though
// nothing steps it again. The state machine's action slot of the Lost kept
// the whole queue (16 MiB here) until the node's next step, for ever on a
// node with nothing else to do (a black-box audit); fsm.Node.Release.
func TestLostPayloadsNotHeldWhileIdle(t *testing.T) {
	got := make(chan weak.Pointer[byte], 1)
	s, err := New("a", WithReconnectGrace(200*time.Millisecond), WithSendQueue(4096, 64<<20),
		WithLogger(newLogger(&logSink{})),
		WithEvents(Events{Lost: func(_ *Server, _ string, ps [][]byte, _ error) {
			got <- weak.Make(&ps[len(ps)-1][0]) // the last payload, then dropped
		}}))
	require.NoError(t, err)
	defer s.Close()
	nc, err := net.Dial("tcp", strings.TrimPrefix(s.Info(), "tcp://"))
	require.NoError(t, err)
	openRawSession(t, nc) // peer "0", which never reads
	eventually(t, "the session", func() bool { return len(s.Connections()) == 1 })
	p := make([]byte, 256<<10)
	for range 64 {
		require.True(t, s.Send("0", p))
	}
	time.Sleep(100 * time.Millisecond)
	_ = nc.(*net.TCPConn).SetLinger(0)
	nc.Close() // gone without a word; nobody keeps the pair: its queue comes back with Lost

	var w weak.Pointer[byte]
	select {
	case w = <-got:
	case <-time.After(10 * time.Second):
		t.Fatal("no Lost event")
	}
	deadline := time.Now().Add(5 * time.Second)
	for w.Value() != nil && time.Now().Before(deadline) {
		runtime.GC()
		time.Sleep(20 * time.Millisecond)
	}
	require.Nil(t, w.Value(), "a payload handed back with Lost is still referenced after the callback dropped it")
}
