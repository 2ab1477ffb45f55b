package masterless

import (
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/masterless-go/masterless/wire"
)

func preamble() []byte { return wire.Binary{}.AppendPreamble(nil) }

func frame(t wire.Type, body ...byte) []byte {
	b := binary.BigEndian.AppendUint32(nil, uint32(1+len(body)))
	return append(append(b, byte(t)), body...)
}

func hello(id string, inc uint64) []byte {
	b, err := wire.Binary{}.AppendFrame(nil, &wire.Frame{Type: wire.Hello, ID: id, Incarnation: inc})
	if err != nil {
		panic(err)
	}
	return b
}

func cat(parts ...[]byte) []byte {
	var out []byte
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

// rawDial opens a plain TCP connection to s.
func rawDial(t *testing.T, s *Server) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", strings.TrimPrefix(s.Info(), "tcp://"))
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	return c
}

// expectClosed reads until the server closes c, and returns what it sent.
func expectClosed(t *testing.T, c net.Conn) []byte {
	t.Helper()
	require.NoError(t, c.SetReadDeadline(time.Now().Add(waitFor)))
	b, err := io.ReadAll(c)
	if err != nil && !isReset(err) {
		t.Fatalf("server did not close the connection: %v", err)
	}
	return b
}

func isReset(err error) bool { return strings.Contains(err.Error(), "connection reset") }

// roundTrip checks that the server still serves its peer.
func roundTrip(t *testing.T, srv, peer *Server, rec *recorder, tag string) {
	t.Helper()
	require.True(t, srv.Send(peer.ID(), []byte(tag)))
	eventually(t, "round trip "+tag, func() bool {
		for _, m := range rec.messages(srv.ID()) {
			if string(m) == tag {
				return true
			}
		}
		return false
	})
}

func TestBadInputClosesOnlyThatConnection(t *testing.T) {
	logs := &logSink{}
	srv, _ := newServer(t, "srv", WithLogger(newLogger(logs)), WithMaxFrameSize(1<<20))
	peer, rp := newServer(t, "peer")
	_, err := peer.Connect(ctxT(t), srv.Info())
	require.NoError(t, err)

	long := make([]byte, 0, 300)
	long = append(long, 255) // claims a 255-byte id
	long = append(long, []byte(strings.Repeat("x", 20))...)

	cases := []struct {
		name string
		send []byte
		log  string
		half bool // half-close after sending
		// reply: the server must answer with its preamble and HELLO before it
		// closes. Not after a half-close: the server takes the EOF for a lost
		// connection and may close it before its greeting is written.
		reply bool
	}{
		{"garbage", []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"), "did not send the masterless preamble", false, true},
		{"wrong magic", []byte("MLSX\x00\x01\x00\x00"), "did not send the masterless preamble", false, true},
		{"wrong version", []byte("MLSS\x00\x03\x00\x00"), "another protocol version", false, true},
		{"oversized length", cat(preamble(), []byte{0xff, 0xff, 0xff, 0xff, 0x06}), "larger than the max frame size", false, true},
		{"zero length", cat(preamble(), []byte{0, 0, 0, 0}), "zero length", false, true},
		{"unknown type", cat(preamble(), frame(0x42, 1, 2, 3)), "unknown frame type 0x42", false, true},
		{"empty id", cat(preamble(), frame(wire.Hello, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)), "empty id", false, true},
		{"overlong id", cat(preamble(), frame(wire.Hello, long...)), "truncated", false, true},
		{"data before hello", cat(preamble(), frame(wire.Data, 'x')), "DATA not allowed in state hello", false, true},
		// srv leads mallory and grants on its HELLO; a DATA header of almost
		// the max frame size before mallory's RESUME is refused at once, not
		// buffered until the handshake timeout (a black-box audit).
		{"large data header after hello", cat(preamble(), hello("mallory", 1), []byte{0x00, 0x0f, 0xff, 0xff, byte(wire.Data)}), "DATA before RESUME", false, true},
		{"truncated frame", cat(preamble(), hello("mallory", 1)[:9]), "connection lost", true, false},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := strings.Count(logs.String(), tc.log)
			c := rawDial(t, srv)
			_, err := c.Write(tc.send)
			require.NoError(t, err)
			if tc.half {
				require.NoError(t, c.(*net.TCPConn).CloseWrite())
			}
			got := expectClosed(t, c)
			if tc.reply {
				require.GreaterOrEqual(t, len(got), wire.PreambleSize, "the server greets before it closes")
				require.Equal(t, preamble(), got[:wire.PreambleSize], "the server speaks first")
				f, _, err := wire.Binary{}.ParseFrame(got[wire.PreambleSize:])
				require.NoError(t, err)
				require.Equal(t, wire.Hello, f.Type)
				require.Equal(t, "srv", f.ID)
			}
			eventually(t, "the reason is logged", func() bool { return strings.Count(logs.String(), tc.log) > before })
			roundTrip(t, srv, peer, rp, fmt.Sprint("still here ", i))
			require.Equal(t, []string{"peer"}, srv.Connections())
		})
	}
	require.NotContains(t, logs.String(), "panic")
}

func TestHandshakeNeverFinished(t *testing.T) {
	t.Parallel() // it mostly waits out timeouts: beside the others that do (make test's time)
	logs := &logSink{}
	srv, _ := newServer(t, "srv", WithLogger(newLogger(logs)), WithHandshakeTimeout(shortHandshake))
	c := rawDial(t, srv)
	_, err := c.Write(preamble()) // and then nothing
	require.NoError(t, err)
	start := time.Now()
	expectClosed(t, c)
	require.GreaterOrEqual(t, time.Since(start), shortHandshake/2, "closed by the handshake deadline, not earlier")
	require.Contains(t, logs.String(), "handshake timed out")
	require.Zero(t, srv.Stats().Handshaking)
}

func TestHalfOpenFlood(t *testing.T) {
	t.Parallel() // it mostly waits out timeouts: beside the others that do (make test's time)
	logs := &logSink{}
	srv, _ := newServer(t, "srv", WithLogger(newLogger(logs)), WithMaxHandshakes(8), WithHandshakeTimeout(shortHandshake))
	peer, rp := newServer(t, "peer")
	_, err := peer.Connect(ctxT(t), srv.Info())
	require.NoError(t, err)

	const flood = 40
	var wg sync.WaitGroup
	for range flood {
		c := rawDial(t, srv)
		wg.Add(1)
		go func() { // half-open: the preamble and then silence
			defer wg.Done()
			c.Write(preamble())
			expectClosed(t, c)
		}()
	}
	// The session is served during the flood.
	for i := range 5 {
		roundTrip(t, srv, peer, rp, fmt.Sprint("during flood ", i))
	}
	wg.Wait() // every flood connection was closed: evicted by a newer one, or timed out
	require.Contains(t, logs.String(), "handshake slot given to a newer connection")
	require.Contains(t, logs.String(), "handshake timed out")
	eventually(t, "no handshake left", func() bool { return srv.Stats().Handshaking == 0 })

	// And new peers are welcome again.
	late, _ := newServer(t, "late")
	_, err = late.Connect(ctxT(t), srv.Info())
	require.NoError(t, err)
	require.True(t, sameSet(srv.Connections(), "peer", "late"))
}

// fakeListener accepts connections and answers each with reply, then waits.
func fakeListener(t *testing.T, reply []byte) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		var conns []net.Conn
		defer func() {
			for _, c := range conns {
				c.Close()
			}
		}()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns = append(conns, c)
			c.Write(reply)
		}
	}()
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	return "tcp://" + ln.Addr().String()
}

func TestConnectFailures(t *testing.T) {
	t.Parallel() // it mostly waits out timeouts: beside the others that do (make test's time)
	a, _ := newServer(t, "a")
	_, err := a.Connect(ctxT(t), fakeListener(t, []byte("MLSS\x00\x03\x00\x00")))
	require.ErrorIs(t, err, ErrVersionMismatch)
	impatient, _ := newServer(t, "impatient", WithHandshakeTimeout(shortHandshake))
	_, err = impatient.Connect(ctxT(t), fakeListener(t, nil))
	require.ErrorIs(t, err, ErrHandshakeTimeout)

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	dead := "tcp://" + ln.Addr().String()
	ln.Close()
	_, err = a.Connect(ctxT(t), dead)
	require.ErrorIs(t, err, ErrDialFailed)
	require.Empty(t, a.Connections())
}

// TestPayloadOverPeerMaxFrameSize: each node has its own max frame size and
// says it in its HELLO (spec/PROTOCOL.md, 2.2). Send refuses a payload over
// the sender's limit or over the peer's, with ErrPayloadTooLarge, and the
// session carries on.
func TestPayloadOverPeerMaxFrameSize(t *testing.T) {
	a, _ := newServer(t, "a", WithMaxFrameSize(1<<20))
	b, rb := newServer(t, "b", WithMaxFrameSize(1024))
	_, err := a.Connect(ctxT(t), b.Info())
	require.NoError(t, err)
	eventually(t, "b connected", func() bool { return rb.connectCount("a") == 1 })

	require.True(t, b.Send("a", make([]byte, 1023)), "1,023 bytes and the type byte fit b's own limit")
	require.ErrorIs(t, b.SendErr("a", make([]byte, 1024)), ErrPayloadTooLarge, "1,024 bytes and the type byte exceed b's own limit")
	require.ErrorIs(t, a.SendErr("b", make([]byte, 2000)), ErrPayloadTooLarge, "2,000 bytes fit a's limit, not b's")
	require.True(t, a.Send("b", []byte("small")))
	eventually(t, "the small message arrives", func() bool { return len(rb.messages("a")) == 1 })
	require.Equal(t, "small", string(rb.messages("a")[0]))
	require.Empty(t, rb.disconnects("a"), "the session carries on")
}

// A node whose id is not UTF-8 (allowed unless it dials in 0.4.1) closes a
// 0.4.1 dialer's connection, which it cannot tell its id, and serves on. It
// used to write its HELLO anyway, and the connection layer's encoder
// panicked: one line from any 0.4.1 dialer took the process down (a
// black-box audit).
func TestNonUTF8NodeRefuses041Dialer(t *testing.T) {
	a, _ := newServer(t, "\xffnode")
	nc, err := net.Dial("tcp", strings.TrimPrefix(a.Info(), "tcp://"))
	require.NoError(t, err)
	defer nc.Close()
	_, err = nc.Write([]byte(`{"id":"peer","info":"tcp://127.0.0.1:1"}` + "\r\n"))
	require.NoError(t, err)
	require.NoError(t, nc.SetReadDeadline(time.Now().Add(waitFor)))
	_, err = io.ReadAll(nc)
	require.NoError(t, err, "the 0.4.1 connection was not closed")
	b, _ := newServer(t, "b")
	_, err = b.Connect(ctxT(t), a.Info())
	require.NoError(t, err, "the node no longer serves v1 peers")
}

// TestLingerReadsABoundedAmount: a connection this node closed lingers,
// reading and dropping what still arrives so that the BYE is not destroyed
// by a reset, but only as much as a peer that follows the protocol can have
// in flight (a window, a message, a MiB; netio's discardBound), not for
// the whole linger from a peer that keeps sending. A black-box audit saw a
// refused peer's bytes read for 434 MiB in the 2 s of the linger.
func TestLingerReadsABoundedAmount(t *testing.T) {
	srv, _ := newServer(t, "srv", WithWindow(64<<10), WithMaxFrameSize(64<<10), WithHandshakeTimeout(2*time.Second))
	c := rawDial(t, srv)
	// srv leads mallory and grants on its HELLO; DATA before mallory's
	// RESUME is a protocol error: srv writes its BYE and closes.
	_, err := c.Write(cat(preamble(), hello("mallory", 1), frame(wire.Data, 'x')))
	require.NoError(t, err)
	junk := make([]byte, 64<<10)
	const limit = 64 << 20 // the bound is 1.1 MiB, the socket buffers a few more
	sent, start := 0, time.Now()
	for sent < limit && time.Since(start) < 10*time.Second {
		require.NoError(t, c.SetWriteDeadline(time.Now().Add(time.Second)))
		k, err := c.Write(junk)
		sent += k
		if err != nil {
			break
		}
	}
	t.Logf("wrote %d bytes in %v", sent, time.Since(start))
	require.Less(t, sent, limit, "srv read and dropped everything the peer sent while it lingered")
}
