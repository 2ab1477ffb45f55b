package fsm_test

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/masterless-go/masterless/fsm"
	"github.com/masterless-go/masterless/wire"
)

// datas returns the payloads of the DATA frames written on cid.
func datas(acts []fsm.Action, cid fsm.ConnID) []string {
	var out []string
	for _, a := range splitAll(acts) {
		if a.Kind == fsm.ActWrite && a.Conn == cid && a.Frame.Type == wire.Data {
			out = append(out, string(a.Frame.Payload))
		}
	}
	return out
}

// A Disconnect hands back as lost messages the peer never received (past
// its credit), and the stream's count goes on past them; on the next
// session the peer's first ACK says less than this node has had
// acknowledged, and so does every ACK the peer sends before this node's
// RESUME reaches it (its user's consumption sends credit meanwhile). Such
// an ACK closed the new session as a protocol error between two honest
// nodes (a black-box audit: Disconnect and Connect at once while data
// flowed, 1-4 Connects in 30 failed with ErrProtocol). Once the peer's
// count reaches the RESUME's, a lower one is a violation again.
func TestStaleAckBeforeResumeAfterLoss(t *testing.T) {
	d := newDiscNode(t, "m", func(c *fsm.Config) { c.Discovery = false })
	open := func(cid fsm.ConnID, sess uint64, delivered, credit uint64) []fsm.Action {
		d.step(fsm.Accepted{Conn: cid})
		d.step(fsm.FrameReceived{Conn: cid, Frame: wire.Frame{Type: wire.Hello, ID: "x", Incarnation: 7, Info: "tcp://x"}})
		d.step(fsm.FrameReceived{Conn: cid, Frame: wire.Frame{Type: wire.Welcome, Sess: sess, Keep: true}})
		acts := d.step(fsm.FrameReceived{Conn: cid, Frame: wire.Frame{Type: wire.Ack, Delivered: delivered, Credit: credit}})
		acts = append(acts, d.step(fsm.FrameReceived{Conn: cid, Frame: wire.Frame{Type: wire.Resume, Next: 1}})...)
		return acts
	}
	open(1, 1, 0, 100) // x grants 100 bytes: three messages of 2 bytes (34 each with their overhead)
	var sent []string
	for i := range 5 {
		sent = append(sent, datas(d.step(fsm.Send{Peer: "x", Payload: fmt.Appendf(nil, "m%d", i)}), 1)...)
	}
	require.Equal(t, []string{"m0", "m1", "m2"}, sent, "the credit lets three out")
	acts := d.step(fsm.Disconnect{Peer: "x"})
	lost := kinds(acts, fsm.ActLost)
	require.Len(t, lost, 1)
	require.Len(t, lost[0].Lost, 5, "all five are handed back: none was acknowledged")

	// x, which keeps m, is back: it delivered the three it received.
	acts = open(2, 2, 3, 100)
	var resume []wire.Frame
	for _, a := range acts {
		if a.Kind == fsm.ActWrite && a.Conn == 2 && a.Frame.Type == wire.Resume {
			resume = append(resume, a.Frame)
		}
	}
	require.Len(t, resume, 1)
	require.Equal(t, uint64(6), resume[0].Next, "the stream goes on past the five reported lost")
	// An ACK x sent before the RESUME reached it: the same count, more credit.
	acts = d.step(fsm.FrameReceived{Conn: 2, Frame: wire.Frame{Type: wire.Ack, Delivered: 3, Credit: 200}})
	require.Empty(t, kinds(acts, fsm.ActClose), "an ACK sent before our RESUME arrived is no violation")
	c, ok := d.n.SessionConn("x")
	require.True(t, ok)
	require.Equal(t, fsm.ConnID(2), c)
	// Its credit counts: a new message goes out.
	require.Equal(t, []string{"m5"}, datas(d.step(fsm.Send{Peer: "x", Payload: []byte("m5")}), 2))
	// x applied the RESUME (its count is 5) and acknowledges m5.
	acts = d.step(fsm.FrameReceived{Conn: 2, Frame: wire.Frame{Type: wire.Ack, Delivered: 6, Credit: 200}})
	require.Empty(t, kinds(acts, fsm.ActClose))
	// From now on an ACK that goes back is a violation again.
	acts = d.step(fsm.FrameReceived{Conn: 2, Frame: wire.Frame{Type: wire.Ack, Delivered: 3, Credit: 200}})
	closes := kinds(acts, fsm.ActClose)
	require.Len(t, closes, 1)
	require.ErrorIs(t, closes[0].Err, fsm.ErrProtocol)
}
