package fsm_test

import (
	"bytes"
	"errors"
	"runtime"
	"testing"
	"time"
	"weak"

	"github.com/stretchr/testify/require"

	"github.com/masterless-go/masterless/fsm"
	"github.com/masterless-go/masterless/wire"
)

// hub returns a node "M" with a resumed v2 session with each of peers, on
// connections 1, 2, ... in order (every peer id must sort before "M", which
// then leads each pair), each peer granting credit.
func hub(t *testing.T, cfg fsm.Config, credit uint64, peers ...string) *fsm.Node {
	t.Helper()
	cfg.ID, cfg.Incarnation = "M", 1
	n, err := fsm.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for i, id := range peers {
		c := fsm.ConnID(i + 1)
		for _, ev := range []fsm.Event{
			fsm.Accepted{Conn: c},
			fsm.FrameReceived{Conn: c, Frame: wire.Frame{Type: wire.Hello, ID: id, Incarnation: 1}},
			fsm.FrameReceived{Conn: c, Frame: wire.Frame{Type: wire.Ack, Credit: credit}},
			fsm.FrameReceived{Conn: c, Frame: wire.Frame{Type: wire.Resume, Next: 1}},
		} {
			if err := n.Step(0, ev); err != nil {
				t.Fatal(err)
			}
		}
		if _, ok := n.SessionConn(id); !ok {
			t.Fatalf("no session with %s", id)
		}
	}
	n.Ready()
	return n
}

// TestSendManyIsSendToEach: one SendMany step does what a Send to each peer
// in turn does (the same actions, the same refusals, the same streams),
// reports each peer's result, and writes the caller's payload itself in
// every DATA of the new message, so that the connection layer can encode
// it once.
func TestSendManyIsSendToEach(t *testing.T) {
	// A small window: a producer may queue only a few messages per peer.
	cfg := fsm.Config{Window: 1 << 10}
	peers := []string{"A", "B", "C"}
	many, each := hub(t, cfg, 1<<20, peers...), hub(t, cfg, 1<<20, peers...)
	payload := make([]byte, 100)
	// Fill B's producer share so that it refuses, with A and C still open.
	for {
		err := many.Step(0, fsm.Send{Peer: "B", Payload: payload, Reserve: true})
		// each is refused too, and asks B for an ACK as many did (askForAck).
		_ = each.Step(0, fsm.Send{Peer: "B", Payload: payload, Reserve: true})
		if err != nil {
			break
		}
	}
	many.Ready()
	each.Ready()
	to := []string{"A", "B", "ghost", "C", "M"}
	errs := make([]error, len(to))
	first := many.Step(0, fsm.SendMany{Peers: to, Payload: payload, Reserve: true, Errs: errs})
	got := many.Ready()
	var want []string
	for i, id := range to {
		err := each.Step(0, fsm.Send{Peer: id, Payload: payload, Reserve: true})
		if (err == nil) != (errs[i] == nil) || err != nil && err.Error() != errs[i].Error() {
			t.Errorf("to %s: SendMany said %v, Send says %v", id, errs[i], err)
		}
		for _, a := range each.Ready() {
			want = append(want, a.String())
		}
	}
	if !errors.Is(errs[1], fsm.ErrQueueFull) || !errors.Is(errs[2], fsm.ErrUnknownPeer) || !errors.Is(errs[4], fsm.ErrSelfConnect) || errs[0] != nil || errs[3] != nil {
		t.Fatalf("results %v", errs)
	}
	if first != errs[1] {
		t.Errorf("Step returned %v, want the first refusal %v", first, errs[1])
	}
	if len(got) != len(want) {
		t.Fatalf("SendMany made %d actions, the Sends %d", len(got), len(want))
	}
	data := 0
	for i := range got {
		if s := got[i].String(); s != want[i] {
			t.Errorf("action %d: SendMany %s, Send %s", i, s, want[i])
		}
		if a := &got[i]; a.Kind == fsm.ActWrite && a.Frame.Type == wire.Data {
			data++
			if &a.Frame.Payload[0] != &payload[0] {
				t.Errorf("action %d: the DATA carries a copy, not the caller's payload", i)
			}
		}
	}
	if data != 2 {
		t.Errorf("%d DATA written, want 2 (A and C)", data)
	}
	for _, n := range []*fsm.Node{many, each} {
		if err := n.CheckStreams(); err != nil {
			t.Fatal(err)
		}
	}
	// Negative control: the check sees a stream whose tail is off.
	many.BreakStreamTail("A")
	if many.CheckStreams() == nil {
		t.Fatal("CheckStreams missed a broken tail")
	}
	// And one that a Send would reach through a forgotten record.
	each.ForgetSendPeer("C")
	if each.CheckStreams() == nil {
		t.Fatal("CheckStreams missed a forgotten peer remembered as the latest Send's")
	}
	// And one that a SendMany would reach through a record dropped
	// without being marked forgotten.
	again := hub(t, cfg, 1<<20, peers...)
	require.NoError(t, again.Step(0, fsm.SendMany{Peers: peers, Payload: payload}))
	again.Ready()
	require.NoError(t, again.CheckStreams())
	again.DropManyPeer("C")
	require.ErrorContains(t, again.CheckStreams(), "peer 2 of the latest SendMany, C,")
}

// TestSendManyErrsLength: a results slice of the wrong length is a bug of
// the caller's, refused loudly.
func TestSendManyErrsLength(t *testing.T) {
	n := hub(t, fsm.Config{}, 1<<20, "A")
	defer func() {
		if recover() == nil {
			t.Fatal("no panic")
		}
	}()
	_ = n.Step(0, fsm.SendMany{Peers: []string{"A"}, Payload: []byte("x"), Errs: make([]error, 2)})
}

// TestSendManySharesOneCopy: a SendMany of sharedMin bytes or more keeps one
// copy of its payload for all its peers' streams (a small one, a copy in
// each); the copy is the node's own (the caller may reuse its buffer), a
// resend after a reconnect writes the original bytes, and a stream lets go
// of the copy once its peer acknowledges.
func TestSendManySharesOneCopy(t *testing.T) {
	peers := []string{"A", "B", "C"}
	n := hub(t, fsm.Config{}, 1<<20, peers...)
	require.NoError(t, n.Step(0, fsm.SetKeep{Peer: "B", Keep: true})) // B's messages wait for its next session
	small := bytes.Repeat([]byte("s"), fsm.SharedMin-1)
	big := bytes.Repeat([]byte("b"), fsm.SharedMin)
	for _, p := range [][]byte{small, big} {
		require.NoError(t, n.Step(0, fsm.SendMany{Peers: peers, Payload: p}))
		n.Ready()
	}
	shared := n.SharedCopies("A")
	require.Len(t, shared, 2)
	require.Nil(t, shared[0], "a payload below sharedMin is copied into each stream")
	require.NotNil(t, shared[1], "a payload of sharedMin bytes is shared")
	for _, id := range peers[1:] {
		require.Same(t, shared[1], n.SharedCopies(id)[1], "%s keeps its own copy of the shared payload", id)
	}
	want := bytes.Clone(big)
	clear(big) // the caller reuses its buffer
	// B's connection drops; its new session resends both messages.
	require.NoError(t, n.Step(0, fsm.ConnClosed{Conn: 2}))
	var resent [][]byte
	for _, ev := range []fsm.Event{
		fsm.Accepted{Conn: 9},
		fsm.FrameReceived{Conn: 9, Frame: wire.Frame{Type: wire.Hello, ID: "B", Incarnation: 1}},
		fsm.FrameReceived{Conn: 9, Frame: wire.Frame{Type: wire.Ack, Credit: 1 << 20}},
		fsm.FrameReceived{Conn: 9, Frame: wire.Frame{Type: wire.Resume, Next: 1}},
	} {
		require.NoError(t, n.Step(0, ev))
		for _, a := range splitAll(n.Ready()) {
			if a.Kind == fsm.ActWrite && a.Conn == 9 && a.Frame.Type == wire.Data {
				resent = append(resent, bytes.Clone(a.Frame.Payload))
			}
		}
	}
	require.Equal(t, [][]byte{bytes.Repeat([]byte("s"), fsm.SharedMin-1), want}, resent, "what B's new session resends")
	// A acknowledges both: its stream keeps neither copy; B and C still share theirs.
	require.NoError(t, n.Step(0, fsm.FrameReceived{Conn: 1, Frame: wire.Frame{Type: wire.Ack, Delivered: 2, Credit: 1 << 20}}))
	n.Ready()
	require.Empty(t, n.SharedCopies("A"))
	require.Same(t, n.SharedCopies("B")[1], n.SharedCopies("C")[1])
	require.NoError(t, n.CheckStreams())
	// A Send of a big payload (not a SendMany) keeps a copy of its own.
	require.NoError(t, n.Step(0, fsm.Send{Peer: "A", Payload: want}))
	n.Ready()
	require.Equal(t, []*[]byte{nil}, n.SharedCopies("A"))
	// C, not kept, drops; it may keep the pair and come back, so its
	// messages not yet acknowledged wait for it for the reconnect grace, then
	// go back to the user as lost, in copies of their own.
	require.NoError(t, n.Step(0, fsm.ConnClosed{Conn: 3}))
	var lost [][]byte
	collect := func() {
		for _, a := range n.Ready() {
			if a.Kind == fsm.ActLost {
				lost = a.Lost
			}
		}
	}
	collect()
	require.Nil(t, lost, "lost before the reconnect grace, although C keeps the pair")
	require.NoError(t, n.Step(n.Config().ReconnectGrace, fsm.Tick{}))
	collect()
	require.Equal(t, [][]byte{bytes.Repeat([]byte("s"), fsm.SharedMin-1), want}, lost, "C's messages reported lost")
	require.NotSame(t, &lost[1][0], &(*n.SharedCopies("B")[1])[0], "a lost payload is the user's own copy")
}

// TestSharedCopyIsReleased: once every peer acknowledged a shared payload,
// nothing in the node holds it (the collector frees it), although the
// streams' arrays keep their entries until they are written over.
func TestSharedCopyIsReleased(t *testing.T) {
	peers := []string{"A", "B"}
	n := hub(t, fsm.Config{}, 1<<20, peers...)
	require.NoError(t, n.Step(0, fsm.SendMany{Peers: peers, Payload: make([]byte, fsm.SharedMin)}))
	n.Ready()
	w := weak.Make(n.SharedCopies("A")[0])
	require.NotNil(t, w.Value())
	for i := range peers {
		require.NoError(t, n.Step(0, fsm.FrameReceived{Conn: fsm.ConnID(i + 1), Frame: wire.Frame{Type: wire.Ack, Delivered: 1, Credit: 1 << 20}}))
		n.Ready()
	}
	runtime.GC()
	require.Nil(t, w.Value(), "the shared copy outlived the last acknowledgement")
	runtime.KeepAlive(n)
}

// TestSendManyFindsANewRecord: a SendMany that names a peer whose record
// was forgotten since the previous SendMany (its session ended, it was not
// kept, its linger passed) and which came back with a new session sends on
// that session, as a Send would: the record the previous SendMany found is
// not used once forgotten.
func TestSendManyFindsANewRecord(t *testing.T) {
	cfg := fsm.Config{PeerTimeout: time.Second, HeartbeatInterval: 250 * time.Millisecond}
	n := hub(t, cfg, 1<<20, "A", "B")
	peers := []string{"A", "B"}
	errs := make([]error, 2)
	// Too large for any peer: refused, but the records are found.
	huge := make([]byte, wire.DefaultMaxFrameSize)
	_ = n.Step(0, fsm.SendMany{Peers: peers, Payload: huge, Errs: errs})
	require.ErrorIs(t, errs[1], fsm.ErrPayloadTooLarge)
	n.Ready()
	require.NoError(t, n.Step(0, fsm.ConnClosed{Conn: 2, Err: errors.New("cut")}))
	now := 3 * time.Second // past B's linger of two peer timeouts
	require.NoError(t, n.Step(now, fsm.Tick{}))
	require.NoError(t, n.CheckStreams())
	for _, ev := range []fsm.Event{
		fsm.Accepted{Conn: 3},
		fsm.FrameReceived{Conn: 3, Frame: wire.Frame{Type: wire.Hello, ID: "B", Incarnation: 2}},
		fsm.FrameReceived{Conn: 3, Frame: wire.Frame{Type: wire.Ack, Credit: 1 << 20}},
		fsm.FrameReceived{Conn: 3, Frame: wire.Frame{Type: wire.Resume, Next: 1}},
	} {
		require.NoError(t, n.Step(now, ev))
	}
	n.Ready()
	require.NoError(t, n.Step(now, fsm.SendMany{Peers: peers, Payload: []byte("hi"), Errs: errs}), "B on its new session")
	var on []fsm.ConnID
	for _, a := range n.Ready() {
		if a.Kind == fsm.ActWrite && a.Frame.Type == wire.Data {
			on = append(on, a.Conn)
		}
	}
	require.Equal(t, []fsm.ConnID{1, 3}, on)
	require.NoError(t, n.CheckStreams())
}
