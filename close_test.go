package masterless

import (
	"bytes"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/masterless-go/masterless/wire"
)

// Close returns promptly even while a peer has stopped reading and a write
// to it is blocked: the goodbyes get a bounded grace, not the peer timeout
// (before: up to 28.5 s with a 30 s peer timeout). The peer is a raw TCP
// client that handshakes, grants a huge credit, and then reads nothing.
func TestCloseWithPeerNotReading(t *testing.T) {
	a, err := New("a", WithPeerTimeout(30*time.Second), WithHeartbeat(time.Second), WithSendQueue(4096, 64<<20), WithLogger(newLogger(&logSink{})))
	require.NoError(t, err)
	nc, err := net.Dial("tcp", strings.TrimPrefix(a.Info(), "tcp://"))
	require.NoError(t, err)
	defer nc.Close()
	closePromptWithPeerNotReading(t, a, nc)
}

// openRawSession writes on conn, a raw connection to server "a" (plain TCP,
// or TLS once its handshake is done), what a peer "0" sends to open a
// session: the v1 preamble, its HELLO ("0" < "a": a leads and grants at
// once), an ACK granting a huge credit, and its RESUME.
func openRawSession(t *testing.T, conn io.Writer) {
	t.Helper()
	var codec wire.Binary
	out := codec.AppendPreamble(nil)
	for _, f := range []wire.Frame{
		{Type: wire.Hello, ID: "0", Incarnation: 1},
		{Type: wire.Ack, Credit: 1 << 40},
		{Type: wire.Resume, Next: 1},
	} {
		var err error
		out, err = codec.AppendFrame(out, &f)
		require.NoError(t, err)
	}
	_, err := conn.Write(out)
	require.NoError(t, err)
}

// rawHeartbeat has the raw peer at the other end of conn send a PING every
// 100 ms, so that the node keeps hearing from it, until the returned stop
// is called.
func rawHeartbeat(t *testing.T, conn io.Writer) (stop func()) {
	t.Helper()
	ping, err := wire.Binary{}.AppendFrame(nil, &wire.Frame{Type: wire.Ping})
	require.NoError(t, err)
	done := make(chan struct{})
	go func() {
		for {
			select {
			case <-done:
				return
			case <-time.After(100 * time.Millisecond):
				if _, err := conn.Write(ping); err != nil {
					return
				}
			}
		}
	}()
	return func() { close(done) }
}

// closePromptWithPeerNotReading has the peer at the other end of conn (a
// raw v1 connection to a, after its preamble exchange or TLS handshake)
// open a session with a huge credit and then read nothing, fills a's socket
// with 16 MiB of messages, and checks that a.Close returns within a second.
func closePromptWithPeerNotReading(t *testing.T, a *Server, conn io.Writer) {
	t.Helper()
	openRawSession(t, conn)
	eventually(t, "the session", func() bool { return len(a.Connections()) == 1 })

	p := make([]byte, 256<<10)
	for range 64 { // 16 MiB: far more than the socket buffers hold
		require.True(t, a.Send("0", p))
	}
	time.Sleep(200 * time.Millisecond) // let the writer fill the socket and block
	start := time.Now()
	require.NoError(t, a.Close())
	took := time.Since(start)
	t.Logf("Close took %v", took)
	// The README promises 200 ms (the goodbyes get 120 ms, netio.closeGrace);
	// the bound here leaves room for a machine that starves the goroutines
	// of CPU, which the promise does not cover.
	require.Less(t, took, time.Second, "Close took %v", took)
}

// Close does not wait for connections with nothing of ours in flight: a
// dialer that never sent a byte (nothing was written to it) is closed at
// once. It used to hold Close for the whole grace (200 ms then): Close set
// the grace's deadline on every socket after the shutdown had set "now" on
// these, and so undid it.
func TestCloseDoesNotWaitForSilentDialers(t *testing.T) {
	a, err := New("a", WithLogger(newLogger(&logSink{})))
	require.NoError(t, err)
	var silent []net.Conn
	for range 4 {
		nc, err := net.Dial("tcp", strings.TrimPrefix(a.Info(), "tcp://"))
		require.NoError(t, err)
		defer nc.Close()
		silent = append(silent, nc)
	}
	eventually(t, "the dialers accepted", func() bool { return a.Stats().Handshaking == len(silent) })
	start := time.Now()
	require.NoError(t, a.Close())
	took := time.Since(start)
	t.Logf("Close took %v", took)
	require.Less(t, took, 100*time.Millisecond, "Close waited for dialers with nothing in flight")
}

// Messages of 64 KiB and around it cross both ways over real TCP: the
// regression for a reader that spun when its buffer held exactly 64 KiB of a
// larger frame (the frame is 65,541 bytes).
func TestLargeMessagesBothWays(t *testing.T) {
	a, ra := newServer(t, "a")
	b, rb := newServer(t, "b")
	_, err := a.Connect(ctxT(t), b.Info())
	require.NoError(t, err)
	var want [][]byte
	for _, n := range []int{64<<10 - 5, 64<<10 - 1, 64 << 10, 64<<10 + 1, 128 << 10, 1 << 20} {
		want = append(want, bytes.Repeat([]byte{byte(n)}, n))
	}
	for _, p := range want {
		require.True(t, a.Send("b", p))
		require.True(t, b.Send("a", p))
	}
	eventually(t, "every message arrives", func() bool {
		return len(rb.messages("a")) == len(want) && len(ra.messages("b")) == len(want)
	})
	for i := range want {
		require.Equal(t, want[i], rb.messages("a")[i])
		require.Equal(t, want[i], ra.messages("b")[i])
	}
}

// A peer that reads nothing is closed for it within the peer timeout and a
// slice of it (netio writeOut), not three peer timeouts: the bytes that
// filled its socket buffer at once counted as progress when the write's
// whole-timeout deadline passed, and the rest got a new deadline (a
// black-box audit: 9 s with a 3 s peer timeout). The peer is a raw client
// that opens a session with a huge credit, then keeps sending PINGs (so
// the node keeps hearing from it) and reads nothing.
func TestPeerNotReadingTimesOut(t *testing.T) {
	const timeout = time.Second
	a, _ := newServer(t, "a", WithPeerTimeout(timeout), WithHeartbeat(200*time.Millisecond), WithSendQueue(4096, 64<<20))
	nc, err := net.Dial("tcp", strings.TrimPrefix(a.Info(), "tcp://"))
	require.NoError(t, err)
	defer nc.Close()
	openRawSession(t, nc)
	eventually(t, "the session", func() bool { return len(a.Connections()) == 1 })
	defer rawHeartbeat(t, nc)() // the peer is alive
	p := make([]byte, 256<<10)
	// The process's own stalls are not the protocol's (pauseWatch): a
	// fresh-clone make test at load average 6 took 1.99 s, where the bound
	// was 1.9 s on the wall clock.
	var pause pauseWatch
	done := make(chan struct{})
	defer close(done)
	go pause.watch(done)
	start := time.Now()
	for range 64 { // 16 MiB: far more than the socket buffers hold
		require.True(t, a.Send("0", p))
	}
	eventuallyWithin(t, 10*timeout, "the session ends", func() bool { return len(a.Connections()) == 0 })
	took := pause.since(start)
	t.Logf("the session with a peer that reads nothing ended after %v (peer timeout %v); %v", took, timeout, &pause)
	// A timeout and a slice or two of it (1.25 s) is the promise; three
	// timeouts and more was the bug.
	require.Less(t, took, 2200*time.Millisecond, "the peer timeout is %v (before the fix: about three of them)", timeout)
	require.ErrorIs(t, peerStats(t, a, "0").LastEnd, ErrPeerTimeout)
}
