package fsm_test

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/masterless-go/masterless/fsm"
	"github.com/masterless-go/masterless/wire"
)

// TestTooLargeLostFollowsTheNewProcessConnect: a node queues messages for
// a kept peer while it is away. The peer comes back as a new process that
// accepts smaller frames (its HELLO's MaxFrame), so some queued messages
// are now too large for it. Their Lost comes after the new process's
// Connected, and after the old process's Disconnected (replaced), never
// before: the limit is the new process's, and a user that counts events
// between Connected and Disconnected as one process's would blame the old
// one. The small messages still go out on the new session.
//
// The follower's stream resumes on the leader's first ACK, before the
// leader's RESUME confirms the session: there pump must stop before the
// first message that is too large (waitsForConfirm) and go on once the
// RESUME arrives (confirm). The leader's session is confirmed by the
// follower's ACK before that same ACK resumes the stream (frameOn runs
// confirm first), so the leader case holds without waitsForConfirm; it is
// here so that the rule holds in both roles.
//
// TestTooLargeForTheNewProcessComesAfterItsConnect (reconnect_test.go)
// shows the same over TCP, at the follower.
func TestTooLargeLostFollowsTheNewProcessConnect(t *testing.T) {
	const credit = 1 << 40
	oldHello := wire.Frame{Type: wire.Hello, ID: "bb", Incarnation: 1, MaxFrame: wire.DefaultMaxFrameSize}
	newHello := wire.Frame{Type: wire.Hello, ID: "bb", Incarnation: 2, MaxFrame: 64<<10 + 1}
	for _, tc := range []struct {
		role string
		id   string // this node's id: "bb" leads "aa", "cc" leads "bb"
		// handshake is what bb sends on a session after its HELLO;
		// handshake[confirm] confirms the session here.
		handshake []wire.Frame
		confirm   int
	}{
		{"follower", "aa", []wire.Frame{
			{Type: wire.Welcome, Sess: 1, Keep: true},
			{Type: wire.Ack, Credit: credit}, // resumes this node's stream
			{Type: wire.Resume, Next: 1},     // confirms the session
		}, 2},
		{"leader", "cc", []wire.Frame{
			{Type: wire.Join, Keep: true},
			{Type: wire.Ack, Credit: credit}, // confirms the session, then resumes the stream
			{Type: wire.Resume, Next: 1},
		}, 1},
	} {
		t.Run(tc.role, func(t *testing.T) {
			n, err := fsm.New(fsm.Config{ID: tc.id, Incarnation: 1})
			if err != nil {
				t.Fatal(err)
			}
			now := time.Duration(0)
			var log []fsm.Action // every action, split, its payloads copied
			step := func(ev fsm.Event) {
				t.Helper()
				if err := n.Step(now, ev); err != nil {
					t.Fatal(err)
				}
				for _, a := range splitAll(n.Ready()) {
					a.Frame.Payload = bytes.Clone(a.Frame.Payload)
					log = append(log, a)
				}
			}
			// session opens connection cid from bb, whose HELLO is hello,
			// and returns where in log the confirming frame's actions begin.
			session := func(cid fsm.ConnID, hello wire.Frame) (confirmedAt int) {
				t.Helper()
				step(fsm.Accepted{Conn: cid})
				step(fsm.FrameReceived{Conn: cid, Frame: hello})
				for i, f := range tc.handshake {
					if i == tc.confirm {
						confirmedAt = len(log)
					}
					step(fsm.FrameReceived{Conn: cid, Frame: f})
				}
				return confirmedAt
			}

			step(fsm.SetKeep{Peer: "bb", Keep: true})
			session(1, oldHello)
			if c, ok := n.SessionConn("bb"); !ok || c != 1 {
				t.Fatalf("no session with bb's first process on c1: %v", render(log))
			}
			now = time.Second
			step(fsm.ConnClosed{Conn: 1, Err: errors.New("reset")}) // bb's process is gone
			var small []string
			for i := range 20 {
				m := fmt.Appendf(nil, "small %02d", i)
				if i%4 == 1 {
					m = make([]byte, 100<<10) // over the new process's limit
				} else {
					small = append(small, string(m))
				}
				step(fsm.Send{Peer: "bb", Payload: m})
			}

			now = 2 * time.Second // within the reconnect grace: bb is still shown connected
			from := len(log)
			confirmedAt := session(2, newHello)
			if c, ok := n.SessionConn("bb"); !ok || c != 2 {
				t.Fatalf("no session with bb's new process on c2: %v", render(log[from:]))
			}
			after := log[from:]
			confirmedAt -= from

			connected, disconnected := -1, -1
			var data []string
			var lostAt, lostLen []int
			for i, a := range after {
				switch a.Kind {
				case fsm.ActConnected:
					if a.Incarnation == 2 && connected < 0 {
						connected = i
					}
				case fsm.ActDisconnected:
					if disconnected < 0 {
						disconnected = i
					}
				case fsm.ActLost:
					if !errors.Is(a.Err, fsm.ErrPayloadTooLarge) {
						t.Fatalf("a Lost for another reason: %v\n%s", a.Err, strings.Join(render(after), "\n"))
					}
					for _, m := range a.Lost {
						lostAt, lostLen = append(lostAt, i), append(lostLen, len(m))
					}
				case fsm.ActWrite:
					if a.Conn == 2 && a.Frame.Type == wire.Data {
						data = append(data, string(a.Frame.Payload))
					}
				}
			}
			show := strings.Join(render(after), "\n")
			if connected < confirmedAt {
				t.Fatalf("the new process's Connected at %d, want one at the confirmation (%d) or after:\n%s", connected, confirmedAt, show)
			}
			if disconnected < 0 || !errors.Is(after[disconnected].Err, fsm.ErrReplaced) || disconnected > connected {
				t.Fatalf("want the old process's Disconnected (replaced) before the new one's Connected (at %d), got it at %d:\n%s", connected, disconnected, show)
			}
			for _, i := range lostAt {
				if i < connected {
					t.Fatalf("a Lost of the new process's limit at %d, before its Connected (at %d, the confirmation at %d):\n%s", i, connected, confirmedAt, show)
				}
			}
			if want := []int{100 << 10, 100 << 10, 100 << 10, 100 << 10, 100 << 10}; !slices.Equal(lostLen, want) {
				t.Fatalf("lost messages of lengths %v, want the five of 100 KiB:\n%s", lostLen, show)
			}
			if got, want := strings.Join(data, ","), strings.Join(small, ","); got != want {
				t.Fatalf("DATA on the new session: %q, want the 15 small messages in order %q", data, small)
			}
		})
	}
}
