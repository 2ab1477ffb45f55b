package fsm_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/masterless-go/masterless/fsm"
	"github.com/masterless-go/masterless/wire"
)

// failDials answers every dial among acts with DialFailed(err) and returns
// how many there were.
func failDials(d *discNode, acts []fsm.Action, err error) int {
	dials := kinds(acts, fsm.ActDial)
	for _, a := range dials {
		d.step(fsm.DialFailed{Dial: a.Dial, Err: err})
	}
	return len(dials)
}

// By default (and with Discovery), a Connect whose dial fails is tried again
// with backoff until a node answers; the node is then kept. StopConnecting
// ends it.
func TestKeepAddressRetriesUntilReached(t *testing.T) {
	for _, discovery := range []bool{false, true} {
		t.Run(fmt.Sprint("discovery=", discovery), func(t *testing.T) {
			d := newDiscNode(t, "m", func(c *fsm.Config) { c.Discovery = discovery })
			acts := d.step(fsm.Connect{Req: 1, Addr: "tcp://s"})
			dials := failDials(d, acts, fsm.ErrDialFailed)
			require.Equal(t, 1, dials)
			require.Len(t, kinds(d.acts, fsm.ActConnectDone), 1, "Connect returns its first attempt's error")
			for range 3 {
				dials += failDials(d, d.advance(15*time.Second), fsm.ErrDialFailed)
			}
			require.GreaterOrEqual(t, dials, 3, "a failed address is dialed again")
			require.Equal(t, []string{"tcp://s"}, d.n.KeptAddresses())
			// The next attempt reaches node s: it is kept, and the address is done.
			var dial fsm.DialID
			for dial == 0 {
				for _, a := range kinds(d.advance(time.Second), fsm.ActDial) {
					dial = a.Dial
				}
			}
			d.step(fsm.Dialed{Dial: dial, Conn: 7})
			d.step(fsm.FrameReceived{Conn: 7, Frame: wire.Frame{Type: wire.Hello, ID: "s", Incarnation: 1, Info: "tcp://s"}})
			require.True(t, d.n.IsKept("s"))
			require.Empty(t, d.n.KeptAddresses())

			// StopConnecting drops an address, and no dial follows.
			failDials(d, d.step(fsm.Connect{Req: 2, Addr: "tcp://t"}), fsm.ErrDialFailed)
			require.Equal(t, []string{"tcp://t"}, d.n.KeptAddresses())
			d.step(fsm.StopConnecting{Addr: "tcp://t"})
			require.Empty(t, d.n.KeptAddresses())
			for _, a := range kinds(d.advance(30*time.Second), fsm.ActDial) {
				require.NotEqual(t, "tcp://t", a.Addr, "a stopped address is not dialed")
			}
		})
	}
}

// A cancelled Connect (its caller's context ended) only stops waiting: the
// address stays kept.
func TestKeepAddressSurvivesCancel(t *testing.T) {
	d := newDiscNode(t, "m", func(c *fsm.Config) { c.Discovery = false })
	acts := d.step(fsm.Connect{Req: 1, Addr: "tcp://s"})
	d.step(fsm.CancelConnect{Req: 1})
	failDials(d, acts, fsm.ErrDialFailed)
	require.Equal(t, []string{"tcp://s"}, d.n.KeptAddresses())
	require.NotZero(t, failDials(d, d.advance(time.Second), fsm.ErrDialFailed), "dialed again")
}

// With ConnectOnce, Connect keeps nothing (0.4.1), unless Discovery.
func TestConnectOnceKeepsNothing(t *testing.T) {
	plain := newDiscNode(t, "m", func(c *fsm.Config) { c.Discovery, c.ConnectOnce = false, true })
	failDials(plain, plain.step(fsm.Connect{Req: 1, Addr: "tcp://s"}), fsm.ErrDialFailed)
	require.Empty(t, plain.n.KeptAddresses())
	require.Empty(t, kinds(plain.advance(30*time.Second), fsm.ActDial))

	disc := newDiscNode(t, "m", func(c *fsm.Config) { c.ConnectOnce = true })
	disc.step(fsm.Connect{Req: 1, Addr: "tcp://s"})
	require.Equal(t, []string{"tcp://s"}, disc.n.KeptAddresses(), "discovery keeps addresses regardless")
}

// A failure that says retrying cannot help ends the retries at once: the
// dial failed for an authentication reason, the node there speaks another
// version, or its HELLO names this node's own id.
func TestKeepAddressGivesUpOnPermanentRefusal(t *testing.T) {
	for _, err := range []error{fsm.ErrUntrusted, fsm.ErrCertificateExpired, fsm.ErrIDMismatch, fsm.ErrUnauthenticated} {
		t.Run(err.Error(), func(t *testing.T) {
			d := newDiscNode(t, "m", func(c *fsm.Config) { c.Discovery = false })
			failDials(d, d.step(fsm.Connect{Req: 1, Addr: "tcp://s"}), fmt.Errorf("TLS handshake: %w", err))
			require.Empty(t, d.n.KeptAddresses())
			require.Empty(t, kinds(d.advance(30*time.Second), fsm.ActDial))
		})
	}
	t.Run("version mismatch", func(t *testing.T) {
		d := newDiscNode(t, "m", func(c *fsm.Config) { c.Discovery = false })
		acts := d.step(fsm.Connect{Req: 1, Addr: "tcp://s"})
		d.step(fsm.Dialed{Dial: kinds(acts, fsm.ActDial)[0].Dial, Conn: 7})
		d.step(fsm.Malformed{Conn: 7, Err: fmt.Errorf("preamble: %w", wire.ErrVersionMismatch)})
		require.Empty(t, d.n.KeptAddresses())
		require.Empty(t, kinds(d.advance(30*time.Second), fsm.ActDial))
	})
	for _, inc := range []uint64{10, 11} { // this node's incarnation (self) and another (duplicate id)
		t.Run(fmt.Sprint("own id, incarnation ", inc), func(t *testing.T) {
			d := newDiscNode(t, "m", func(c *fsm.Config) { c.Discovery = false })
			acts := d.step(fsm.Connect{Req: 1, Addr: "tcp://alias-of-m"})
			d.step(fsm.Dialed{Dial: kinds(acts, fsm.ActDial)[0].Dial, Conn: 7})
			d.step(fsm.FrameReceived{Conn: 7, Frame: wire.Frame{Type: wire.Hello, ID: "m", Incarnation: inc, Info: "tcp://m"}})
			require.Empty(t, d.n.KeptAddresses())
			require.Empty(t, kinds(d.advance(30*time.Second), fsm.ActDial))
		})
	}
	// The control: a refused dial or a timeout is retried.
	for _, err := range []error{fsm.ErrDialFailed, fsm.ErrHandshakeTimeout} {
		d := newDiscNode(t, "m", func(c *fsm.Config) { c.Discovery = false })
		failDials(d, d.step(fsm.Connect{Req: 1, Addr: "tcp://s"}), err)
		require.Equal(t, []string{"tcp://s"}, d.n.KeptAddresses())
	}
}

// A Connect to an address whose node is already handshaking with this one
// (its HELLO, on a connection it dialed, advertised that address) opens no
// second connection: the request waits for that handshake's session
// (spec/PROTOCOL.md 5.1). Here m follows z: it answered z's HELLO with JOIN
// and waits for WELCOME when its user Connects to z's address.
func TestConnectJoinsHandshakeInProgress(t *testing.T) {
	d := newDiscNode(t, "m", func(c *fsm.Config) { c.Discovery = false })
	d.step(fsm.Incoming{Conn: 5, Source: "10.0.0.9"})
	d.step(fsm.Accepted{Conn: 5})
	d.step(fsm.FrameReceived{Conn: 5, Frame: wire.Frame{Type: wire.Hello, ID: "z", Incarnation: 1, Info: "tcp://z"}})
	acts := d.step(fsm.Connect{Req: 1, Addr: "tcp://z"})
	require.Empty(t, kinds(acts, fsm.ActDial), "no second connection while one is handshaking")
	require.Empty(t, kinds(acts, fsm.ActConnectDone))
	require.True(t, d.n.IsKept("z"), "Connect keeps the node it reaches")
	acts = d.step(fsm.FrameReceived{Conn: 5, Frame: wire.Frame{Type: wire.Welcome, Sess: 1, Keep: true}})
	require.Empty(t, kinds(acts, fsm.ActConnectDone), "before the leader confirmed the session (its RESUME)")
	d.step(fsm.FrameReceived{Conn: 5, Frame: wire.Frame{Type: wire.Ack, Credit: 1 << 20}})
	acts = d.step(fsm.FrameReceived{Conn: 5, Frame: wire.Frame{Type: wire.Resume, Next: 1}})
	done := kinds(acts, fsm.ActConnectDone)
	require.Len(t, done, 1)
	require.Equal(t, "z", done[0].Peer)
	require.NoError(t, done[0].Err)

	// If that handshake fails instead, the kept peer is redialed at the
	// address it advertised.
	d2 := newDiscNode(t, "m", func(c *fsm.Config) { c.Discovery = false })
	d2.step(fsm.Accepted{Conn: 5})
	d2.step(fsm.FrameReceived{Conn: 5, Frame: wire.Frame{Type: wire.Hello, ID: "z", Incarnation: 1, Info: "tcp://z"}})
	require.Empty(t, kinds(d2.step(fsm.Connect{Req: 1, Addr: "tcp://z"}), fsm.ActDial))
	d2.step(fsm.ConnClosed{Conn: 5, Err: fsm.ErrPeerClosed})
	dials := kinds(d2.advance(time.Second), fsm.ActDial)
	require.NotEmpty(t, dials)
	require.Equal(t, "tcp://z", dials[0].Addr)
}
