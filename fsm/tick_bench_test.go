package fsm_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/masterless-go/masterless/fsm"
	"github.com/masterless-go/masterless/wire"
)

// idleNode returns node M with the given number of established sessions,
// accepted on connections 1..sessions from peers P0000, P0001, ... (M
// leads every pair, so each HELLO is granted at once). The handshakes are
// spread evenly over one heartbeat interval, so the heartbeats are too: the
// worst case for timers, one Tick per session per interval. It returns the
// node and the time its setup ended.
func idleNode(tb testing.TB, sessions int) (*fsm.Node, time.Duration) {
	tb.Helper()
	n, err := fsm.New(fsm.Config{ID: "Z", Incarnation: 1})
	if err != nil {
		tb.Fatal(err)
	}
	gap := fsm.DefaultHeartbeatInterval / time.Duration(sessions)
	var now time.Duration
	for i := range sessions {
		id := fsm.ConnID(i + 1)
		_ = n.Step(now, fsm.Accepted{Conn: id})
		_ = n.Step(now, fsm.FrameReceived{Conn: id, Frame: wire.Frame{Type: wire.Hello, ID: fmt.Sprintf("P%04d", i), Incarnation: 1}})
		// The follower's first ACK confirms the grant: an unconfirmed one
		// holds a handshake slot, and there are fewer slots than sessions.
		_ = n.Step(now, fsm.FrameReceived{Conn: id, Frame: wire.Frame{Type: wire.Ack, Credit: 1 << 20}})
		n.Ready()
		now += gap
	}
	if got := len(n.Sessions()); got != sessions {
		tb.Fatalf("%d sessions, want %d", got, sessions)
	}
	return n, now
}

// idleRound runs the node's next Tick at its next deadline and answers
// every PING it writes with a PING from the peer, as a live idle peer does,
// so the sessions never time out. It returns the Tick's time and how many
// PINGs it wrote.
func idleRound(tb testing.TB, n *fsm.Node, pinged []fsm.ConnID) (time.Duration, []fsm.ConnID) {
	d, ok := n.NextDeadline()
	if !ok {
		tb.Fatal("no deadline with sessions up")
	}
	_ = n.Step(d, fsm.Tick{})
	pinged = pinged[:0]
	for _, a := range n.Ready() {
		switch {
		case a.Kind == fsm.ActWrite && a.Frame.Type == wire.Ping:
			pinged = append(pinged, a.Conn)
		default:
			tb.Fatalf("idle session: unexpected action %s", a.String())
		}
	}
	for _, c := range pinged {
		_ = n.Step(d, fsm.FrameReceived{Conn: c, Frame: wire.Frame{Type: wire.Ping}})
		n.Ready()
	}
	return d, pinged
}

// BenchmarkTickIdleSessions measures the timers of a node with idle
// sessions whose heartbeats are staggered: one op is one Tick at the node's
// next deadline, which sends the heartbeats due in its slot (pings/op; see
// heartbeatAt), plus the PINGs that answer them. ns/interval is the cost of one
// heartbeat interval of virtual time, the node's idle CPU per second.
func BenchmarkTickIdleSessions(b *testing.B) {
	for _, sessions := range []int{10, 100, 1000} {
		b.Run(fmt.Sprintf("sessions=%d", sessions), func(b *testing.B) {
			n, start := idleNode(b, sessions)
			pinged := make([]fsm.ConnID, 0, sessions)
			// Warm up one interval, so every session has pinged once.
			now := start
			for now < start+fsm.DefaultHeartbeatInterval {
				now, pinged = idleRound(b, n, pinged)
			}
			first := now
			pings := 0
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				now, pinged = idleRound(b, n, pinged)
				pings += len(pinged)
			}
			b.StopTimer()
			if virt := now - first; virt > 0 {
				perInterval := float64(b.Elapsed()) * float64(fsm.DefaultHeartbeatInterval) / float64(virt)
				b.ReportMetric(perInterval, "ns/interval")
			}
			b.ReportMetric(float64(pings)/float64(b.N), "pings/op")
		})
	}
}
