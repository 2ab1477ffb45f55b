package fsm_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/masterless-go/masterless/fsm"
	"github.com/masterless-go/masterless/wire"
)

// plainNode is a node without discovery or kept addresses (the defaults).
func plainNode(t *testing.T, id string) *discNode {
	return newDiscNode(t, id, func(c *fsm.Config) { c.Discovery = false })
}

// keepAt makes d keep peer id, reached by a Connect to addr, whose HELLO
// advertises info; the session is then lost (the connection dropped).
func keepAt(t *testing.T, d *discNode, id, addr, info string) {
	t.Helper()
	d.step(fsm.Connect{Req: 1, Addr: addr})
	dial := kinds(d.acts, fsm.ActDial)[0].Dial
	d.step(fsm.Dialed{Dial: dial, Conn: 1})
	d.step(fsm.FrameReceived{Conn: 1, Frame: wire.Frame{Type: wire.Hello, ID: id, Incarnation: 1, Info: info}})
	if id > d.n.ID() {
		d.step(fsm.FrameReceived{Conn: 1, Frame: wire.Frame{Type: wire.Welcome, Sess: 1, Keep: true}})
	}
	_, ok := d.n.SessionConn(id)
	require.True(t, ok)
	require.True(t, d.n.IsKept(id))
	d.step(fsm.ConnClosed{Conn: 1, Err: errors.New("reset")})
}

// nextDial advances until the node dials, and returns the dial.
func nextDial(t *testing.T, d *discNode) fsm.Action {
	t.Helper()
	for range 100 {
		if ds := kinds(d.advance(100*time.Millisecond), fsm.ActDial); len(ds) > 0 {
			require.Len(t, ds, 1)
			return ds[0]
		}
	}
	t.Fatal("no redial")
	return fsm.Action{}
}

// A kept peer is redialed at the address the user dialed; when a redial
// there fails, the next goes to the address it advertised in its HELLO, and
// so on in turn.
func TestRedialAtDialedAddressThenAdvertised(t *testing.T) {
	d := plainNode(t, "a")
	keepAt(t, d, "b", "tcp://dialed", "tcp://advertised")
	var addrs []string
	for range 4 {
		dial := nextDial(t, d)
		addrs = append(addrs, dial.Addr)
		d.step(fsm.DialFailed{Dial: dial.Dial, Err: errors.New("refused")})
	}
	require.Equal(t, []string{"tcp://dialed", "tcp://advertised", "tcp://dialed", "tcp://advertised"}, addrs)

	// A HELLO advertising a new address (the peer restarted there and
	// dialed us): the dialed address first, then the new one.
	d.step(fsm.Accepted{Conn: 5})
	d.step(fsm.FrameReceived{Conn: 5, Frame: wire.Frame{Type: wire.Hello, ID: "b", Incarnation: 2, Info: "tcp://moved"}})
	d.step(fsm.FrameReceived{Conn: 5, Frame: wire.Frame{Type: wire.Welcome, Sess: 1, Keep: true}})
	_, ok := d.n.SessionConn("b")
	require.True(t, ok)
	d.step(fsm.ConnClosed{Conn: 5, Err: errors.New("reset")})
	dial := nextDial(t, d)
	require.Equal(t, "tcp://dialed", dial.Addr)
	d.step(fsm.DialFailed{Dial: dial.Dial, Err: errors.New("refused")})
	require.Equal(t, "tcp://moved", nextDial(t, d).Addr)
}

// A redial of kept peer b answered by another node c is closed at c's
// HELLO, before it becomes a session, with BYE unwanted; b's backoff is not
// reset, and the next redial of b goes on at the growing backoff. (Its
// negative control, TestRedialCatchesStrangerSession, needs the
// masterless_mutation tag.)
func TestRedialReachingAnotherNodeIsClosedBeforeSession(t *testing.T) {
	for _, other := range []string{"c", "0"} { // c leads the pair, 0 follows
		t.Run(other, func(t *testing.T) {
			d := plainNode(t, "a")
			keepAt(t, d, "b", "tcp://b", "tcp://b")
			var gaps []time.Duration
			last := time.Duration(0)
			for i := range 6 {
				require.NoError(t, redialReachesOther(t, d, other, fsm.ConnID(10+i)))
				if i > 0 {
					gaps = append(gaps, d.now-last)
				}
				last = d.now
			}
			require.False(t, d.n.IsKept(other))
			require.True(t, d.n.IsKept("b"))
			// The backoff grows: the gaps are not reset by reaching c.
			require.Greater(t, gaps[len(gaps)-1], gaps[0]*4, "gaps %v", gaps)
		})
	}
}

// redialReachesOther lets d's next redial of kept peer b (at tcp://b)
// connect as cid and be answered by the HELLO of node other, and says how d
// broke the rule of spec/PROTOCOL.md, section 5 (close it at that HELLO
// with BYE unwanted, before any session), or nil.
func redialReachesOther(t *testing.T, d *discNode, other string, cid fsm.ConnID) error {
	t.Helper()
	dial := nextDial(t, d)
	if dial.Addr != "tcp://b" {
		return fmt.Errorf("b redialed at %s, want tcp://b", dial.Addr)
	}
	d.step(fsm.Dialed{Dial: dial.Dial, Conn: cid})
	acts := d.step(fsm.FrameReceived{Conn: cid, Frame: wire.Frame{Type: wire.Hello, ID: other, Incarnation: 1, Info: "tcp://b"}})
	var bye *wire.Frame
	for _, a := range acts {
		if a.Kind == fsm.ActWrite && a.Conn == cid {
			if a.Frame.Type != wire.Bye {
				return fmt.Errorf("%v went to %s, the wrong node: nothing but BYE may", a.Frame.Type, other)
			}
			bye = &a.Frame
		}
	}
	closes := kinds(acts, fsm.ActClose)
	_, session := d.n.SessionConn(other)
	switch {
	case bye == nil:
		return fmt.Errorf("no BYE to %s, the wrong node", other)
	case bye.Code != wire.CodeUnwanted:
		return fmt.Errorf("BYE code %d to %s, want unwanted", bye.Code, other)
	case len(closes) != 1 || !errors.Is(closes[0].Err, fsm.ErrUnwanted):
		return fmt.Errorf("closes %v, want one with ErrUnwanted", closes)
	case len(kinds(acts, fsm.ActConnected)) > 0 || session:
		return fmt.Errorf("a session with %s, the wrong node", other)
	}
	return nil
}

// A redial answered by another node that this node keeps too, or that a
// Connect waits for, goes on to a session with it.
func TestRedialReachingAnotherKeptNodeGoesOn(t *testing.T) {
	d := plainNode(t, "a")
	keepAt(t, d, "b", "tcp://b", "tcp://b")
	require.NoError(t, d.n.Step(d.now, fsm.SetKeep{Peer: "c", Keep: true}))
	dial := nextDial(t, d)
	require.Equal(t, "tcp://b", dial.Addr)
	d.step(fsm.Dialed{Dial: dial.Dial, Conn: 20})
	d.step(fsm.FrameReceived{Conn: 20, Frame: wire.Frame{Type: wire.Hello, ID: "c", Incarnation: 1, Info: "tcp://b"}})
	d.step(fsm.FrameReceived{Conn: 20, Frame: wire.Frame{Type: wire.Welcome, Sess: 1, Keep: true}})
	_, ok := d.n.SessionConn("c")
	require.True(t, ok)
}
