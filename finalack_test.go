package masterless

import (
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestGoodbyeAcknowledgesWhatWasTaken: a node whose user received and
// answered every message of its peer, and then says goodbye (Close, or
// Disconnect of a peer that does not keep it), acknowledges them first, so
// the peer reports none of them lost. An ACK goes every 64 messages or with
// the heartbeat, so the peer reported count mod 64 lost (the counter
// example printed "messages lost" at the end of every run; a black-box
// audit). fsm/stream.go, finalAck.
func TestGoodbyeAcknowledgesWhatWasTaken(t *testing.T) {
	for _, bye := range []string{"close", "disconnect"} {
		for _, count := range []int{80, 200} {
			t.Run(fmt.Sprintf("%s/%d", bye, count), func(t *testing.T) {
				var lost, got atomic.Int64
				answered := make(chan struct{})
				left, _ := newServer(t, "left", WithEvents(Events{
					Lost:    func(_ *Server, _ string, p [][]byte, _ error) { lost.Add(int64(len(p))) },
					Message: func(*Server, string, []byte) { close(answered) },
				}))
				right, _ := newServer(t, "right", WithEvents(Events{
					Message: func(s *Server, from string, _ []byte) {
						if got.Add(1) == int64(count) {
							s.Send(from, []byte("got them all"))
						}
					},
				}))
				_, err := right.Connect(ctxT(t), left.Info()) // right keeps left; left does not keep right
				require.NoError(t, err)
				for i := range count {
					require.NoError(t, left.SendErr("right", []byte{byte(i)}))
				}
				select {
				case <-answered:
				case <-time.After(10 * time.Second):
					t.Fatal("no answer")
				}
				time.Sleep(50 * time.Millisecond) // the dispatcher reports what the callbacks took
				if bye == "close" {
					require.NoError(t, right.Close())
				} else {
					require.NoError(t, right.Disconnect("left"))
				}
				eventually(t, "left saw the goodbye", func() bool { return len(left.Connections()) == 0 })
				time.Sleep(200 * time.Millisecond)
				require.Zero(t, lost.Load(), "right took and answered all %d, then said goodbye; left reported some lost", count)
			})
		}
	}
}

// TestSenderGoodbyeLosesNothingHandled: the sender ends the pair a while
// after the peer's user handled its messages (its own Disconnect, or its
// Keep(false) that the leader closes as unwanted), and reports none of them
// lost. Acknowledgements went every 64 messages or with the heartbeat, so
// ten messages handled 300 ms before a Disconnect came back in Lost, and a
// user who resent them had them handled twice (a black-box audit): a
// delivery is now acknowledged within 20 ms (fsm/stream.go, ackDelay), and
// the leader that closes a session as unwanted first acknowledges what its
// user took (finalAck).
func TestSenderGoodbyeLosesNothingHandled(t *testing.T) {
	for _, bye := range []string{"disconnect", "keep-false"} {
		t.Run(bye, func(t *testing.T) {
			var lost, got atomic.Int64
			a, _ := newServer(t, "a", WithReconnectGrace(300*time.Millisecond), WithEvents(Events{
				Lost: func(_ *Server, _ string, p [][]byte, _ error) { lost.Add(int64(len(p))) },
			}))
			b, _ := newServer(t, "b", WithEvents(Events{
				Message: func(*Server, string, []byte) { got.Add(1) },
			}))
			_, err := a.Connect(ctxT(t), b.Info()) // a keeps b; b, the leader, does not keep a
			require.NoError(t, err)
			for i := range 10 {
				require.NoError(t, a.SendErr("b", []byte{byte(i)}))
			}
			eventually(t, "b handled all ten", func() bool { return got.Load() == 10 })
			time.Sleep(300 * time.Millisecond)
			if bye == "disconnect" {
				require.NoError(t, a.Disconnect("b"))
			} else {
				require.NoError(t, a.Keep("b", false))
			}
			eventually(t, "the session ended", func() bool { return len(a.Connections()) == 0 })
			time.Sleep(600 * time.Millisecond) // past the reconnect grace
			require.Zero(t, lost.Load(), "b handled all ten 300 ms before a's %s; a reported some lost", bye)
		})
	}
}
