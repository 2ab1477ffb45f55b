package masterless

import (
	"errors"
	"net"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/masterless-go/masterless/fsm"
	"github.com/masterless-go/masterless/wire"
)

// rawPeer is a hand-driven v2 peer on a raw connection: it writes frames
// and reads the node's until the type it waits for.
type rawPeer struct {
	t   *testing.T
	c   net.Conn
	buf []byte
}

func (p *rawPeer) write(f wire.Frame) error {
	b, err := wire.Binary{}.AppendFrame(nil, &f)
	require.NoError(p.t, err)
	_, err = p.c.Write(b)
	return err
}

// until reads the node's frames until one of type ty.
func (p *rawPeer) until(ty wire.Type) {
	p.t.Helper()
	require.NoError(p.t, p.c.SetReadDeadline(time.Now().Add(waitFor)))
	tmp := make([]byte, 4096)
	for {
		for {
			f, k, err := wire.Binary{}.ParseFrame(p.buf)
			require.NoError(p.t, err)
			if k == 0 {
				break
			}
			p.buf = p.buf[k:]
			if f.Type == ty {
				return
			}
		}
		k, err := p.c.Read(tmp)
		require.NoError(p.t, err, "waiting for %s", ty)
		p.buf = append(p.buf, tmp[:k]...)
	}
}

// followerSession opens a session with s as peer id, which must follow s
// (a smaller id), granting credit.
func followerSession(t *testing.T, s *Server, id string, credit uint64) *rawPeer {
	t.Helper()
	p := &rawPeer{t: t, c: rawDial(t, s)}
	_, err := p.c.Write(cat(preamble(), hello(id, 1)))
	require.NoError(t, err)
	require.NoError(t, p.c.SetReadDeadline(time.Now().Add(waitFor)))
	pre := make([]byte, wire.PreambleSize)
	_, err = net.Conn.Read(p.c, pre)
	require.NoError(t, err)
	p.until(wire.Hello)
	require.NoError(t, p.write(wire.Frame{Type: wire.Join, Keep: true}))
	p.until(wire.Welcome)
	require.NoError(t, p.write(wire.Frame{Type: wire.Ack, Credit: credit}))
	p.until(wire.Ack)
	require.NoError(t, p.write(wire.Frame{Type: wire.Resume, Next: 1}))
	p.until(wire.Resume)
	return p
}

// TestLyingAckerIsClosed: a peer that grants a huge credit and acknowledges
// every message the node accepted, while it reads nothing, is closed as a
// protocol violation once the output buffer passes its bound (what the
// send queue and the send buffer can hold): the
// acknowledgements emptied the queue, credit never ran out, and the
// buffer grew without bound before (a black-box audit: 312-486 MiB in 4 s,
// the session still up).
func TestLyingAckerIsClosed(t *testing.T) {
	srv, rec := newServer(t, "zz-node", WithSendQueue(1024, 1<<20), WithSendBuffer(256<<10), WithWindow(256<<10), WithMaxFrameSize(256<<10), WithReconnectGrace(100*time.Millisecond))
	p := followerSession(t, srv, "a-liar", 1<<50)
	eventually(t, "a session with the liar", func() bool { return slices.Contains(srv.Connections(), "a-liar") })

	var accepted atomic.Uint64
	// The liar: every 10 ms, an ACK of everything accepted.
	stop := every(10*time.Millisecond, func() error {
		return p.write(wire.Frame{Type: wire.Ack, Delivered: accepted.Load(), Credit: 1 << 50})
	})
	defer stop()
	payload := make([]byte, 16<<10)
	bound := uint64(1<<20 + 1024*wire.HeaderSize + 256<<10)
	deadline := time.Now().Add(waitFor)
	for slices.Contains(srv.Connections(), "a-liar") && time.Now().Before(deadline) {
		if srv.Send("a-liar", payload) {
			accepted.Add(1)
		} else {
			time.Sleep(time.Millisecond)
		}
	}
	require.False(t, slices.Contains(srv.Connections(), "a-liar"), "still connected after %d MiB accepted (the bound is %d KiB)", accepted.Load()*uint64(len(payload))>>20, bound>>10)
	t.Logf("closed after %d KiB accepted (the bound is %d KiB)", accepted.Load()*uint64(len(payload))>>10, bound>>10)
	eventually(t, "its Disconnected event", func() bool { return len(rec.disconnects("a-liar")) > 0 })
	ends := rec.disconnects("a-liar")
	require.ErrorIs(t, ends[0], fsm.ErrProtocol)
	require.ErrorContains(t, ends[0], "acknowledged messages it never read")
	var ne net.Error
	require.False(t, errors.As(ends[0], &ne), "the reason is the overflow, not the deadline that stopped the goroutines")
}
