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

// TestManyPeersDoNotHang: past the bound on remembered incoming streams,
// with every remembered stream belonging to a peer still known, a new peer
// is taken without forgetting any (the eviction loop once went round for
// ever: a flood of distinct ids could hang a node).
func TestManyPeersDoNotHang(t *testing.T) {
	n, err := fsm.New(fsm.Config{ID: "~", Incarnation: 1}) // "~" leads every pair below
	if err != nil {
		t.Fatal(err)
	}
	const peers = 1<<16 + 2
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range peers {
			c := fsm.ConnID(i + 1)
			_ = n.Step(0, fsm.Accepted{Conn: c})
			_ = n.Step(0, fsm.FrameReceived{Conn: c, Frame: wire.Frame{Type: wire.Hello, ID: fmt.Sprintf("p%06d", i), Incarnation: 1}})
			// The follower's ACK confirms the grant, which until then holds a handshake slot.
			_ = n.Step(0, fsm.FrameReceived{Conn: c, Frame: wire.Frame{Type: wire.Ack, Credit: 1 << 20}})
			n.Ready()
		}
	}()
	select {
	case <-done:
	case <-time.After(2 * time.Minute):
		t.Fatal("a node with 65,538 peers hangs taking one more")
	}
	if got := len(n.Sessions()); got != peers {
		t.Fatalf("%d sessions, want %d", got, peers)
	}
}

// A credit that would wrap the sender's limit is taken as no limit, not as
// a small one: a resuming ACK with the largest credit, after messages were
// acknowledged on an earlier session, still lets the queued message go.
func TestHugeCreditDoesNotWrap(t *testing.T) {
	n, err := fsm.New(fsm.Config{ID: "M", Incarnation: 1})
	if err != nil {
		t.Fatal(err)
	}
	hello := wire.Frame{Type: wire.Hello, ID: "A", Incarnation: 1}
	for _, ev := range []fsm.Event{
		fsm.SetKeep{Peer: "A", Keep: true},
		fsm.Accepted{Conn: 1},
		fsm.FrameReceived{Conn: 1, Frame: hello},
		fsm.FrameReceived{Conn: 1, Frame: wire.Frame{Type: wire.Ack, Credit: 1 << 20}},
		fsm.Send{Peer: "A", Payload: []byte("first")},
		fsm.FrameReceived{Conn: 1, Frame: wire.Frame{Type: wire.Ack, Delivered: 1, Credit: 1 << 20}},
		fsm.ConnClosed{Conn: 1},
		fsm.Send{Peer: "A", Payload: []byte("second")}, // queued: no session
		fsm.Accepted{Conn: 2},
		fsm.FrameReceived{Conn: 2, Frame: hello},
	} {
		if err := n.Step(0, ev); err != nil {
			t.Fatal(err)
		}
	}
	n.Ready()
	_ = n.Step(0, fsm.FrameReceived{Conn: 2, Frame: wire.Frame{Type: wire.Ack, Delivered: 1, Credit: ^uint64(0)}})
	var data []string
	for _, a := range splitAll(n.Ready()) {
		if a.Kind == fsm.ActWrite && a.Frame.Type == wire.Data {
			data = append(data, string(a.Frame.Payload))
		}
	}
	if len(data) != 1 || data[0] != "second" {
		t.Fatalf("DATA written after the resuming ACK: %q, want the queued message", data)
	}
}

// pacedSession returns node M (window 1 KiB) with a resumed session with A
// on connection 1, whose credit for M's stream is credit bytes.
func pacedSession(t *testing.T, credit uint64) *fsm.Node {
	t.Helper()
	return sessionWith(t, credit, fsm.Config{ID: "M", Incarnation: 1, Window: 1 << 10})
}

// sessionWith is pacedSession for a node of configuration cfg.
func sessionWith(t *testing.T, credit uint64, cfg fsm.Config) *fsm.Node {
	t.Helper()
	n, err := fsm.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, ev := range []fsm.Event{
		fsm.SetKeep{Peer: "A", Keep: true},
		fsm.Accepted{Conn: 1},
		fsm.FrameReceived{Conn: 1, Frame: wire.Frame{Type: wire.Hello, ID: "A", Incarnation: 1}},
		fsm.FrameReceived{Conn: 1, Frame: wire.Frame{Type: wire.Ack, Credit: credit}},
	} {
		if err := n.Step(0, ev); err != nil {
			t.Fatal(err)
		}
	}
	n.Ready()
	return n
}

// acks returns the ACKs among actions, as "backlog" or "clear".
func acks(actions []fsm.Action) []string {
	var out []string
	for _, a := range actions {
		if a.Kind == fsm.ActWrite && a.Frame.Type == wire.Ack {
			out = append(out, map[bool]string{true: "backlog", false: "clear"}[a.Frame.Backlog])
		}
	}
	return out
}

// The backlog flag (stream.go, "Room for answers"): a node whose answers
// toward a peer go past the peer's credit by more than a window sets it
// in an ACK sent at once, and clears it, again at once, when they are back
// within half a window; a producer's own messages never set it, and between
// the two thresholds nothing is sent.
func TestBacklogFlagFollowsAnswers(t *testing.T) {
	n := pacedSession(t, 0) // A's user is behind: no credit
	msg := make([]byte, 32) // cost 64: a window is 16 of them
	for i := range 16 {     // the producers' share: a window
		if err := n.Step(0, fsm.Send{Peer: "A", Payload: msg, Reserve: true}); err != nil {
			t.Fatalf("producer message %d: %v", i, err)
		}
	}
	if got := acks(n.Ready()); len(got) != 0 {
		t.Fatalf("a producer's own messages set the flag: %v", got)
	}
	for i := range 16 { // 16 answers: exactly a window past the credit
		if err := n.Step(0, fsm.Send{Peer: "A", Payload: msg}); err != nil {
			t.Fatalf("answer %d: %v", i, err)
		}
	}
	if got := acks(n.Ready()); len(got) != 0 {
		t.Fatalf("a window of answers past the credit flipped the flag: %v", got)
	}
	if err := n.Step(0, fsm.Send{Peer: "A", Payload: msg}); err != nil {
		t.Fatal(err)
	}
	if got := acks(n.Ready()); len(got) != 1 || got[0] != "backlog" {
		t.Fatalf("past a window of answers beyond the credit: ACKs %v, want one that sets the flag", got)
	}
	// The flag counts the answers' cost past the room the credit leaves,
	// however the queue is ordered (a producer's messages do not hide
	// answers): 17 answers, 1,088 bytes. Credit for 7 messages leaves 640
	// past it, for 8 576, both above half a window; for 9, 512: clear.
	for i, want := range [][]string{nil, nil, {"clear"}} {
		_ = n.Step(0, fsm.FrameReceived{Conn: 1, Frame: wire.Frame{Type: wire.Ack, Credit: uint64(7+i) * 64}})
		if got := acks(n.Ready()); len(got) != len(want) || (len(want) > 0 && got[0] != want[0]) {
			t.Fatalf("credit for %d messages: ACKs %v, want %v", 7+i, got, want)
		}
	}
	if ps := n.Peers(); ps[0].Backlog {
		t.Fatal("status still shows the flag set")
	}
}

// A peer's backlog flag holds this node's producers (Send.Reserve) and
// nothing else: answers from callbacks still go; when an ACK clears it the
// producers hear of it (ActRoom) and may send again.
func TestBacklogFlagHoldsProducers(t *testing.T) {
	n := pacedSession(t, 1<<20)
	_ = n.Step(0, fsm.FrameReceived{Conn: 1, Frame: wire.Frame{Type: wire.Ack, Credit: 1 << 20, Backlog: true}})
	n.Ready()
	if err := n.Step(0, fsm.Send{Peer: "A", Payload: []byte("request"), Reserve: true}); !errors.Is(err, fsm.ErrQueueFull) {
		t.Fatalf("a producer's Send while A's answers back up: %v, want ErrQueueFull", err)
	}
	if err := n.Step(0, fsm.Send{Peer: "A", Payload: []byte("answer")}); err != nil {
		t.Fatalf("an answer while A's answers back up: %v", err)
	}
	if ps := n.Peers(); !ps[0].Held {
		t.Fatal("status does not show the producers held")
	}
	n.Ready()
	_ = n.Step(0, fsm.FrameReceived{Conn: 1, Frame: wire.Frame{Type: wire.Ack, Credit: 1 << 20}})
	room := false
	for _, a := range n.Ready() {
		room = room || a.Kind == fsm.ActRoom
	}
	if !room {
		t.Fatal("the flag cleared without telling the waiting producers (ActRoom)")
	}
	if err := n.Step(0, fsm.Send{Peer: "A", Payload: []byte("request"), Reserve: true}); err != nil {
		t.Fatalf("a producer's Send after the flag cleared: %v", err)
	}
}

// The flag travels on a new session too: the first ACK carries it, and a
// session that starts while the answers back up sets it in that ACK.
func TestBacklogFlagOnNewSession(t *testing.T) {
	n := pacedSession(t, 0)
	for range 17 {
		if err := n.Step(0, fsm.Send{Peer: "A", Payload: make([]byte, 32)}); err != nil {
			t.Fatal(err)
		}
	}
	n.Ready()
	_ = n.Step(0, fsm.ConnClosed{Conn: 1})
	_ = n.Step(0, fsm.Accepted{Conn: 2})
	_ = n.Step(0, fsm.FrameReceived{Conn: 2, Frame: wire.Frame{Type: wire.Hello, ID: "A", Incarnation: 1}})
	if got := acks(n.Ready()); len(got) != 1 || got[0] != "backlog" {
		t.Fatalf("first ACK of the new session: %v, want the flag set", got)
	}
	// A's first ACK gives credit for everything: the flag clears.
	_ = n.Step(0, fsm.FrameReceived{Conn: 2, Frame: wire.Frame{Type: wire.Ack, Credit: 1 << 20}})
	if got := acks(n.Ready()); len(got) != 1 || got[0] != "clear" {
		t.Fatalf("after the resuming ACK: %v, want the flag cleared", got)
	}
}

// The defaults satisfy the condition under which answers from callbacks
// always have room (stream.go, "Room for answers"): QueueMessages >=
// (4 MaxWindow + 3 Window)/32 + 5, and QueueBytes >= 4 MaxWindow + 3 Window
// + twice the largest payload, for payloads up to a window, whatever the
// windows.
func TestDefaultsLeaveRoomForAnswers(t *testing.T) {
	cfgs := []fsm.Config{{}, {MaxWindow: 16 << 20}, {Window: 64 << 10, MaxWindow: 1 << 20}}
	for _, w := range []int{1 << 10, 16 << 10, 1 << 20, 4 << 20, 64 << 20} {
		cfgs = append(cfgs, fsm.Config{Window: w})
	}
	for _, cfg := range cfgs {
		cfg.ID, cfg.Incarnation = "M", 1
		c := mustConfig(t, cfg)
		w, m := c.Window, c.MaxWindow
		if need := (4*m+3*w)/32 + 5; c.QueueMessages < need {
			t.Errorf("window %d to %d: %d messages, want at least %d", w, m, c.QueueMessages, need)
		}
		if need := 4*m + 3*w + 2*w; c.QueueBytes < need {
			t.Errorf("window %d to %d: %d bytes, want at least %d", w, m, c.QueueBytes, need)
		}
	}
}

// A producer waits for the peer's backlog flag and for its share of the
// queue (one window), not for its own user: with more than half a window
// of A's messages not yet consumed here, a producer's message toward A
// still goes (an earlier rule held it there, issue 9), and the message
// past a window is refused.
func TestProducerNotHeldByItsOwnUser(t *testing.T) {
	n := pacedSession(t, 1<<20)
	_ = n.Step(0, fsm.FrameReceived{Conn: 1, Frame: wire.Frame{Type: wire.Resume, Next: 1}})
	msg := make([]byte, 32) // cost 64: a window is 16 of them
	for i := range 12 {     // 768 bytes unconsumed: past half the window
		if err := n.Step(0, fsm.FrameReceived{Conn: 1, Frame: wire.Frame{Type: wire.Data, Payload: msg}}); err != nil {
			t.Fatalf("A's message %d: %v", i, err)
		}
	}
	n.Ready()
	for i := range 16 {
		if err := n.Step(0, fsm.Send{Peer: "A", Payload: msg, Reserve: true}); err != nil {
			t.Fatalf("producer message %d, this node's user behind on A's: %v", i, err)
		}
	}
	if err := n.Step(0, fsm.Send{Peer: "A", Payload: msg, Reserve: true}); !errors.Is(err, fsm.ErrQueueFull) {
		t.Fatalf("a producer's message past its share of a window: %v, want ErrQueueFull", err)
	}
}

// A producer's message that costs more than its whole share (a window) goes
// into an empty queue, and is written as far as the credit lets it start:
// it used to be refused for ever, with nothing queued that could make room,
// so SendContext of a payload over a window minus msgCost waited until its
// context ended (a black-box audit). A second such message waits for the
// first to be acknowledged.
func TestProducerMessageOverItsShare(t *testing.T) {
	n := pacedSession(t, 1<<10) // window 1 KiB, credit for a window
	_ = n.Step(0, fsm.FrameReceived{Conn: 1, Frame: wire.Frame{Type: wire.Resume, Next: 1}})
	n.Ready()
	big := make([]byte, 4<<10) // four windows
	if err := n.Step(0, fsm.Send{Peer: "A", Payload: big, Reserve: true}); err != nil {
		t.Fatalf("a producer's message over its share into an empty queue: %v", err)
	}
	written := 0
	for _, a := range splitAll(n.Ready()) {
		if a.Kind == fsm.ActWrite && a.Frame.Type == wire.Data && len(a.Frame.Payload) == len(big) {
			written++
		}
	}
	if written != 1 {
		t.Fatalf("%d DATA of the big message written, want 1: it starts within the credit", written)
	}
	if err := n.Step(0, fsm.Send{Peer: "A", Payload: big, Reserve: true}); !errors.Is(err, fsm.ErrQueueFull) {
		t.Fatalf("a second message over the share while the first is queued: %v, want ErrQueueFull", err)
	}
	_ = n.Step(0, fsm.FrameReceived{Conn: 1, Frame: wire.Frame{Type: wire.Ack, Delivered: 1, Credit: 1 << 10}})
	n.Ready()
	if err := n.Step(0, fsm.Send{Peer: "A", Payload: big, Reserve: true}); err != nil {
		t.Fatalf("the next one once the first is acknowledged: %v", err)
	}
}

// A producer's message over the producers' share, refused because the
// queue is not empty, holds the other producers' messages until the queue
// empties and it goes: producers of smaller messages kept the queue from
// ever emptying, and a 2 MiB SendContext waited 4-10 s (a black-box audit).
// A big message whose producer stopped asking holds them for a heartbeat
// interval at most.
func TestBigProducerMessageIsNotStarved(t *testing.T) {
	small, big := make([]byte, 32), make([]byte, 4<<10) // a window is 1 KiB
	send := func(n *fsm.Node, now time.Duration, p []byte) error {
		err := n.Step(now, fsm.Send{Peer: "A", Payload: p, Reserve: true})
		n.Ready()
		return err
	}
	// bigRefused: a resumed session with a small producer message queued,
	// and a big one refused for want of an empty queue.
	bigRefused := func(t *testing.T) *fsm.Node {
		n := pacedSession(t, 1<<10)
		_ = n.Step(0, fsm.FrameReceived{Conn: 1, Frame: wire.Frame{Type: wire.Resume, Next: 1}})
		n.Ready()
		if err := send(n, 0, small); err != nil {
			t.Fatal(err)
		}
		if err := send(n, 0, big); !errors.Is(err, fsm.ErrQueueFull) {
			t.Fatalf("big message into a queue not empty: %v, want ErrQueueFull", err)
		}
		return n
	}
	t.Run("the queue empties for it", func(t *testing.T) {
		n := bigRefused(t)
		if err := send(n, 0, small); !errors.Is(err, fsm.ErrQueueFull) {
			t.Fatalf("a small producer message while the big one waits: %v, want ErrQueueFull", err)
		}
		_ = n.Step(time.Millisecond, fsm.FrameReceived{Conn: 1, Frame: wire.Frame{Type: wire.Ack, Delivered: 1, Credit: 1 << 10}})
		room := false
		for _, a := range n.Ready() {
			room = room || a.Kind == fsm.ActRoom
		}
		if !room {
			t.Fatal("the queue emptied without waking the producers (ActRoom)")
		}
		if err := send(n, time.Millisecond, small); !errors.Is(err, fsm.ErrQueueFull) {
			t.Fatalf("a small producer message first into the empty queue: %v, want ErrQueueFull (the big one's turn)", err)
		}
		if err := send(n, time.Millisecond, big); err != nil {
			t.Fatalf("the big message into the empty queue: %v", err)
		}
	})
	t.Run("a big message given up holds nobody for long", func(t *testing.T) {
		n := bigRefused(t)
		// A Send reads no clock (Node.Send): the node's time is that of its
		// latest other step, here a Tick.
		hb := n.Config().HeartbeatInterval
		_ = n.Step(hb-time.Millisecond, fsm.Tick{})
		n.Ready()
		if err := send(n, hb-time.Millisecond, small); !errors.Is(err, fsm.ErrQueueFull) {
			t.Fatalf("within a heartbeat of the big one's refusal: %v, want ErrQueueFull", err)
		}
		_ = n.Step(hb, fsm.Tick{})
		n.Ready()
		if err := send(n, hb, small); err != nil {
			t.Fatalf("a heartbeat after the big one last asked: %v, want it to go", err)
		}
	})
}

// While the adapter has paused reading a session for its user (ReadPaused:
// a 0.4.1 session's reader waits for room in the delivery queue), the
// session is not timed out, and no timer is due in the past meanwhile;
// once reading resumes, the peer gets a full peer timeout from then (a slow
// callback used to cost a 0.4.1 session while its peer kept sending).
func TestReadPausedHoldsThePeerTimeout(t *testing.T) {
	n := pacedSession(t, 1<<20)
	to := n.Config().PeerTimeout
	closed := func(acts []fsm.Action) bool {
		for _, a := range acts {
			if a.Kind == fsm.ActClose {
				return true
			}
		}
		return false
	}
	_ = n.Step(0, fsm.ReadPaused{Conn: 1, Paused: true})
	n.Ready()
	for now := time.Duration(0); now <= 3*to; now += to / 4 {
		_ = n.Step(now, fsm.Tick{})
		if closed(n.Ready()) {
			t.Fatalf("timed out at %v while its reading was paused", now)
		}
		if d, ok := n.NextDeadline(); !ok || d <= now {
			t.Fatalf("next deadline %v (ok %v) at %v: due in the past while paused", d, ok, now)
		}
	}
	_ = n.Step(3*to, fsm.ReadPaused{Conn: 1, Paused: false})
	n.Ready()
	_ = n.Step(4*to-time.Millisecond, fsm.Tick{})
	if closed(n.Ready()) {
		t.Fatal("timed out less than a peer timeout after reading resumed")
	}
	_ = n.Step(4*to+time.Millisecond, fsm.Tick{})
	if !closed(n.Ready()) {
		t.Fatal("not timed out a peer timeout after reading resumed")
	}
}

// A producer refused for want of room asks the peer for an ACK with one
// empty PING, while fewer than 64 messages are out (the peer's count rule
// would send none), and asks again only after an ACK; a node answers a PING
// with an ACK when one is due. Before, the ACK came with the peer's next
// heartbeat, so a small queue sent a queue's worth a second.
func TestRefusedProducerAsksForAnAck(t *testing.T) {
	n := pacedSession(t, 1<<20)
	_ = n.Step(0, fsm.FrameReceived{Conn: 1, Frame: wire.Frame{Type: wire.Resume, Next: 1}})
	n.Ready()
	pings := func(acts []fsm.Action) (k int) {
		for _, a := range acts {
			if a.Kind == fsm.ActWrite && a.Frame.Type == wire.Ping {
				if a.Frame.Stamp != 0 {
					t.Errorf("the request is an empty PING, got stamp %d", a.Frame.Stamp)
				}
				k++
			}
		}
		return k
	}
	p := make([]byte, 200) // the window is 1 KiB: a few fill the producers' share
	sent, asked := 0, 0
	for range 10 {
		if n.Step(0, fsm.Send{Peer: "A", Payload: p, Reserve: true}) == nil {
			sent++
		}
		asked += pings(n.Ready())
	}
	if sent == 0 || sent == 10 || asked != 1 {
		t.Fatalf("%d sent, %d PINGs asking: want some refused and one PING", sent, asked)
	}
	_ = n.Step(0, fsm.FrameReceived{Conn: 1, Frame: wire.Frame{Type: wire.Ack, Delivered: 1, Credit: 1 << 20}})
	n.Ready()
	asked = 0
	for range 10 {
		_ = n.Step(0, fsm.Send{Peer: "A", Payload: p, Reserve: true})
		asked += pings(n.Ready())
	}
	if asked != 1 {
		t.Fatalf("%d PINGs after an ACK, want one more", asked)
	}

	// The receiving side: an empty PING with nothing due gets no ACK; after
	// a DATA, it gets one.
	ackOf := func(acts []fsm.Action) int {
		k := 0
		for _, a := range acts {
			if a.Kind == fsm.ActWrite && a.Frame.Type == wire.Ack {
				k++
			}
		}
		return k
	}
	_ = n.Step(0, fsm.FrameReceived{Conn: 1, Frame: wire.Frame{Type: wire.Ping}})
	if k := ackOf(n.Ready()); k != 0 {
		t.Fatalf("%d ACKs for a PING with nothing due", k)
	}
	_ = n.Step(0, fsm.FrameReceived{Conn: 1, Frame: wire.Frame{Type: wire.Data, Payload: []byte("x")}})
	n.Ready()
	_ = n.Step(0, fsm.FrameReceived{Conn: 1, Frame: wire.Frame{Type: wire.Ping}})
	if k := ackOf(n.Ready()); k != 1 {
		t.Fatalf("%d ACKs for a PING with a message unacknowledged, want 1", k)
	}
}

// Messages handed back with Lost leave no buffer behind: a peer away has no
// heartbeat, at which an idle stream's buffers otherwise go back, and a
// 16 MiB queue handed back stayed allocated for good (a black-box audit).
func TestLostQueueGivesBuffersBack(t *testing.T) {
	n, err := fsm.New(fsm.Config{ID: "M", Incarnation: 1, ReconnectGrace: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Step(0, fsm.SetKeep{Peer: "A", Keep: true}); err != nil {
		t.Fatal(err)
	}
	for range 16 {
		if err := n.Step(0, fsm.Send{Peer: "A", Payload: make([]byte, 64<<10)}); err != nil {
			t.Fatal(err)
		}
	}
	n.Ready()
	if n.StreamBufCap("A") < 1<<20 {
		t.Fatalf("queue buffer of %d bytes for 1 MiB queued", n.StreamBufCap("A"))
	}
	if err := n.Step(2*time.Second, fsm.Tick{}); err != nil {
		t.Fatal(err)
	}
	lost := 0
	for _, a := range n.Ready() {
		if a.Kind == fsm.ActLost {
			lost += len(a.Lost)
		}
	}
	if lost != 16 {
		t.Fatalf("%d messages handed back after the grace, want 16", lost)
	}
	if c := n.StreamBufCap("A"); c != 0 {
		t.Fatalf("%d bytes of queue buffer left after everything was handed back", c)
	}
}

// TestRestartsShareOneWindow: the messages of a peer's earlier incarnation
// still in the user's queue count against the credit its next incarnation
// gets, so that a peer id restarting in a loop has at most one window
// waiting for the callbacks (a black-box audit: each restart got a window
// of its own, 20 MiB waiting after 20 restarts against a window of 1 MiB);
// as the user takes them, the credit comes back.
func TestRestartsShareOneWindow(t *testing.T) {
	const window = 64 << 10
	n := establishedWith(t, fsm.Config{ID: "M", Incarnation: 1, Window: window})
	credit := func(acts []fsm.Action, conn fsm.ConnID) []uint64 {
		var out []uint64
		for _, a := range acts {
			if a.Kind == fsm.ActWrite && a.Conn == conn && a.Frame.Type == wire.Ack {
				out = append(out, a.Frame.Credit)
			}
		}
		return out
	}
	// A's first process fills the window; the user takes nothing.
	payload := make([]byte, 1000)
	const cost = 1000 + 32
	sent := 0
	for ; (sent+1)*cost <= window; sent++ {
		require.NoError(t, n.Step(0, fsm.FrameReceived{Conn: 1, Frame: wire.Frame{Type: wire.Data, Payload: payload}}))
	}
	n.Ready()
	// A restarts: its new process's session starts with the room the old
	// one's messages leave, none past the window.
	_ = n.Step(0, fsm.Accepted{Conn: 2})
	_ = n.Step(0, fsm.FrameReceived{Conn: 2, Frame: wire.Frame{Type: wire.Hello, ID: "A", Incarnation: 2}})
	first := credit(n.Ready(), 2)
	require.Len(t, first, 1)
	require.Equal(t, uint64(window-sent*cost), first[0], "the first ACK's credit: the window less what waits from incarnation 1")
	peers := n.Peers()
	require.Len(t, peers, 1)
	require.Equal(t, uint64(sent*cost), peers[0].Unconsumed, "the old incarnation's messages are still waiting")
	// A 0.4.1 session's messages (incarnation 0) taken off the queue leave
	// no room in any stream: no credit.
	require.NoError(t, n.Step(0, fsm.Consumed{Peer: "A", Incarnation: 0, Messages: sent, Bytes: sent * 1000}))
	require.Empty(t, credit(n.Ready(), 2), "a 0.4.1 session's messages freed the stale room")
	// The user takes the old messages: credit for the new one follows.
	require.NoError(t, n.Step(0, fsm.Consumed{Peer: "A", Incarnation: 1, Messages: sent, Bytes: sent * 1000}))
	more := credit(n.Ready(), 2)
	require.Len(t, more, 1, "an ACK once the room is worth one")
	require.Equal(t, uint64(window), more[0])
}

// TestShutdownDropsTheLookups: Shutdown drops every peer record, and with
// them the records the latest Send and SendMany keep for the next one
// (sendPeer, manyPeer), which CheckStreams holds to the node's records.
// (Found by the simulator once it ran CheckStreams after every step.)
func TestShutdownDropsTheLookups(t *testing.T) {
	n := sessionWith(t, 1<<20, fsm.Config{ID: "M", Incarnation: 1})
	require.NoError(t, n.Step(0, fsm.Send{Peer: "A", Payload: []byte("a")}))
	require.NoError(t, n.Step(0, fsm.SendMany{Peers: []string{"A"}, Payload: []byte("b")}))
	n.Ready()
	require.NoError(t, n.CheckStreams())
	_ = n.Step(0, fsm.Shutdown{})
	n.Ready()
	require.NoError(t, n.CheckStreams())
}
