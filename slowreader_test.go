package masterless

import (
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/masterless-go/masterless/wire"
)

// A peer that reads slowly but steadily keeps its session however much is
// queued for it: the writer hands the socket at most a chunk at a time, and
// each chunk, not the whole output buffer, must go out within the peer
// timeout (README: a slow consumer never makes a healthy peer look dead).
// Before, one write of a 16 MiB buffer toward a peer reading 1.6 MiB/s
// failed the connection after one peer timeout, and Stats' WireOut counted
// none of it until then. The peer is a raw TCP client with a small receive
// buffer that grants a huge credit, pings, and reads 16 KiB every 10 ms.
func TestSlowSteadyReaderKeepsSession(t *testing.T) {
	a, err := New("a", WithPeerTimeout(time.Second), WithHeartbeat(200*time.Millisecond), WithSendQueue(4096, 64<<20), WithLogger(newLogger(&logSink{})))
	require.NoError(t, err)
	defer a.Close()
	nc, err := net.Dial("tcp", strings.TrimPrefix(a.Info(), "tcp://"))
	require.NoError(t, err)
	defer nc.Close()
	require.NoError(t, nc.(*net.TCPConn).SetReadBuffer(32<<10))
	openRawSession(t, nc)
	eventually(t, "the session", func() bool { return len(a.Connections()) == 1 })

	defer rawHeartbeat(t, nc)() // the peer's heartbeat, so that a hears from it
	stop := make(chan struct{})
	defer close(stop)
	var read atomic.Int64
	go func() { // 16 KiB every 10 ms: at most 1.6 MiB/s
		buf := make([]byte, 16<<10)
		for {
			select {
			case <-stop:
				return
			case <-time.After(10 * time.Millisecond):
				k, err := nc.Read(buf)
				read.Add(int64(k))
				if err != nil {
					return
				}
			}
		}
	}()

	p := make([]byte, 256<<10)
	for range 64 { // 16 MiB, far more than the socket buffers and one peer timeout's reading
		require.True(t, a.Send("0", p))
	}
	time.Sleep(3 * time.Second) // three peer timeouts
	st := peerStats(t, a, "0")
	t.Logf("after 3 s: the peer read %d bytes, WireOut %d, last end %v", read.Load(), st.WireOut, st.LastEnd)
	require.Equal(t, "connected", st.State, "the slow reader's session ended: %v", st.LastEnd)
	require.Nil(t, st.LastEnd)
	require.Greater(t, read.Load(), int64(1<<20), "the peer read too little to tell")
	require.GreaterOrEqual(t, st.WireOut, uint64(read.Load()), "WireOut counts what went out")
}

// A message that takes longer than the peer timeout to arrive is delivered:
// the bytes of a frame in progress count as hearing from the peer
// (fsm.FrameInProgress), whose heartbeats wait behind the frame. Before, a
// 2 MiB message arriving at about 1 MiB/s over a 1 s peer timeout ended
// the session, and so would every resend of it. The peer is a raw TCP
// client that trickles one DATA frame.
func TestSlowLargeMessageKeepsSession(t *testing.T) {
	got := make(chan int, 1)
	a, err := New("a", WithPeerTimeout(time.Second), WithHeartbeat(200*time.Millisecond), WithLogger(newLogger(&logSink{})),
		WithEvents(Events{Message: func(s *Server, from string, p []byte) { got <- len(p) }}))
	require.NoError(t, err)
	defer a.Close()
	nc, err := net.Dial("tcp", strings.TrimPrefix(a.Info(), "tcp://"))
	require.NoError(t, err)
	defer nc.Close()
	openRawSession(t, nc)
	go func() { // drain what a sends
		buf := make([]byte, 64<<10)
		for {
			if _, err := nc.Read(buf); err != nil {
				return
			}
		}
	}()
	eventually(t, "the session", func() bool { return len(a.Connections()) == 1 })
	frame, err := wire.Binary{}.AppendFrame(nil, &wire.Frame{Type: wire.Data, Payload: make([]byte, 2<<20)})
	require.NoError(t, err)
	start := time.Now()
	for len(frame) > 0 { // 32 KiB every 30 ms: about 1 MiB/s
		k := min(len(frame), 32<<10)
		_, err := nc.Write(frame[:k])
		require.NoError(t, err)
		frame = frame[k:]
		time.Sleep(30 * time.Millisecond)
	}
	select {
	case n := <-got:
		t.Logf("delivered %d bytes after %v", n, time.Since(start))
		require.Equal(t, 2<<20, n)
		require.Nil(t, peerStats(t, a, "0").LastEnd, "the session ended meanwhile")
	case <-time.After(2 * time.Second):
		t.Fatalf("not delivered; last end %v", peerStats(t, a, "0").LastEnd)
	}
}
