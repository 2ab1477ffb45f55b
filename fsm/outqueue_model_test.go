package fsm_test

import (
	"encoding/binary"
	"errors"
	"testing"

	"pgregory.net/rapid"

	"github.com/masterless-go/masterless/fsm"
	"github.com/masterless-go/masterless/wire"
)

// TestSendQueueModel drives a node's stream toward one peer with random
// Sends (producers' and answers), SendManys of shared copies, lease
// batches (Admit), acknowledgements with credit, and sessions that break
// and resume, and holds what the node writes to a model of the stream (a
// list of numbered messages with their costs), not to the queue's runs
// (outqueue.go):
//   - each session writes the messages from the one after what the peer
//     said it delivered, in order, none twice, none skipped;
//   - a message is written only while the stream offset at its start is
//     below the credit limit, and whatever the credit allows is written
//     by the end of each step;
//   - a message the peer acknowledged is never written again;
//   - the queue's bookkeeping holds after every step (CheckStreams) and its
//     count is the model's.
func TestSendQueueModel(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		const window = 8192
		n, err := fsm.New(fsm.Config{ID: "M", Incarnation: 1, Window: window, Leases: true})
		if err != nil {
			rt.Fatal(err)
		}
		var (
			conn     fsm.ConnID
			msgs     []uint64 // the cost (payload + 32) of every message queued, by number-1
			acked    uint64   // the peer delivered up to this number
			ackedEnd uint64   // the stream offset at its end
			limit    uint64   // the credit limit, a stream offset
			next     uint64   // the number the session writes next
			nextEnd  uint64   // the stream offset at the start of message next
			lease    fsm.Lease
		)
		// check checks the actions of a step against the model.
		var check func(rt *rapid.T, n *fsm.Node)
		check = func(rt *rapid.T, n *fsm.Node) {
			var revoked uint64
			for _, a := range splitAll(n.Ready()) {
				switch {
				case a.Kind == fsm.ActLease && a.Lease.Messages == 0:
					revoked, lease = a.Lease.Gen, fsm.Lease{}
				case a.Kind == fsm.ActLease:
					if a.Lease.Gen == lease.Gen {
						lease.Messages += a.Lease.Messages
						lease.Cost += a.Lease.Cost
					} else {
						lease = a.Lease
					}
				case a.Kind == fsm.ActWrite && a.Frame.Type == wire.Data:
					if a.Conn != conn {
						rt.Fatalf("DATA written on connection %d, the session is on %d", a.Conn, conn)
					}
					num := binary.BigEndian.Uint64(a.Frame.Payload)
					if num != next+1 {
						rt.Fatalf("wrote message %d, the next is %d (acknowledged up to %d)", num, next+1, acked)
					}
					if nextEnd >= limit {
						rt.Fatalf("wrote message %d starting at offset %d, the credit limit is %d", num, nextEnd, limit)
					}
					next++
					nextEnd += msgs[num-1]
				case a.Kind == fsm.ActLost:
					rt.Fatalf("lost: %v", a.Err)
				}
			}
			if err := n.CheckStreams(); err != nil {
				rt.Fatal(err)
			}
			if revoked != 0 { // the adapter admits what the lane held (nothing: it admits at once)
				_ = n.Step(0, fsm.Admit{Peer: "A", Gen: revoked})
				check(rt, n)
				return
			}
			// Whatever credit allows went out.
			if uint64(len(msgs)) > next && nextEnd < limit {
				if _, ok := n.SessionConn("A"); ok {
					rt.Fatalf("message %d waits at offset %d with the credit limit at %d", next+1, nextEnd, limit)
				}
			}
			if q := queued(n); q != len(msgs)-int(acked) {
				rt.Fatalf("the node holds %d messages, the model %d", q, len(msgs)-int(acked))
			}
		}
		payload := func(rt *rapid.T, min int) []byte {
			size := rapid.IntRange(min, min+100).Draw(rt, "size")
			if rapid.IntRange(0, 3).Draw(rt, "large") == 0 {
				size = rapid.IntRange(min, 1500).Draw(rt, "size") // a few large ones fill the buffer sooner: compaction
			}
			p := make([]byte, size)
			binary.BigEndian.PutUint64(p, uint64(len(msgs)+1))
			msgs = append(msgs, uint64(size)+fsm.MessageCost)
			return p
		}
		resume := func(rt *rapid.T, delivered uint64) {
			for acked < delivered {
				ackedEnd += msgs[acked]
				acked++
			}
			credit := uint64(rapid.IntRange(0, 3*window).Draw(rt, "credit"))
			limit, next, nextEnd = ackedEnd+credit, acked, ackedEnd
			_ = n.Step(0, fsm.FrameReceived{Conn: conn, Frame: wire.Frame{Type: wire.Ack, Delivered: delivered, Credit: credit}})
			_ = n.Step(0, fsm.FrameReceived{Conn: conn, Frame: wire.Frame{Type: wire.Resume, Next: 1}})
			check(rt, n)
		}
		conn = 1
		for _, ev := range []fsm.Event{
			fsm.Accepted{Conn: conn},
			fsm.FrameReceived{Conn: conn, Frame: wire.Frame{Type: wire.Hello, ID: "A", Incarnation: 1}},
		} {
			_ = n.Step(0, ev)
		}
		check(rt, n)
		resume(rt, 0)
		rt.Repeat(map[string]func(*rapid.T){
			"send": func(rt *rapid.T) {
				reserve := rapid.Bool().Draw(rt, "reserve")
				p := payload(rt, 8)
				if err := n.Step(0, fsm.Send{Peer: "A", Payload: p, Reserve: reserve}); err != nil {
					msgs = msgs[:len(msgs)-1] // refused: not queued
					if !errors.Is(err, fsm.ErrQueueFull) {
						rt.Fatalf("Send refused: %v", err)
					}
				}
				check(rt, n)
			},
			"sendmany-shared": func(rt *rapid.T) {
				p := payload(rt, fsm.SharedMin)
				errs := make([]error, 1)
				_ = n.Step(0, fsm.SendMany{Peers: []string{"A"}, Payload: p, Errs: errs})
				if errs[0] != nil {
					msgs = msgs[:len(msgs)-1]
				}
				check(rt, n)
			},
			"admit": func(rt *rapid.T) {
				if lease.Gen == 0 || lease.Messages == 0 {
					_ = n.Step(0, fsm.Admit{Peer: "A", Renew: true})
					check(rt, n)
					return
				}
				k := rapid.IntRange(1, min(lease.Messages, 20)).Draw(rt, "batch")
				var frames []byte
				for range k {
					p := payload(rt, 8)
					cost := uint64(len(p)) + fsm.MessageCost
					if cost > lease.Cost || len(p) > lease.MaxPayload {
						msgs = msgs[:len(msgs)-1]
						break
					}
					lease.Cost -= cost
					lease.Messages--
					frames = wire.AppendData(frames, p)
				}
				count := 0
				for rest := frames; len(rest) > 0; count++ {
					_, rest, _ = wire.NextData(rest)
				}
				_ = n.Step(0, fsm.Admit{Peer: "A", Gen: lease.Gen, Frames: frames, Messages: count, Renew: rapid.Bool().Draw(rt, "renew")})
				check(rt, n)
			},
			"ack": func(rt *rapid.T) {
				if _, ok := n.SessionConn("A"); !ok {
					return
				}
				delivered := acked + uint64(rapid.IntRange(0, int(next-acked)).Draw(rt, "delivered"))
				for acked < delivered {
					ackedEnd += msgs[acked]
					acked++
				}
				credit := uint64(rapid.IntRange(0, 2*window).Draw(rt, "credit"))
				limit = max(limit, ackedEnd+credit)
				_ = n.Step(0, fsm.FrameReceived{Conn: conn, Frame: wire.Frame{Type: wire.Ack, Delivered: delivered, Credit: credit}})
				check(rt, n)
			},
			"reconnect": func(rt *rapid.T) {
				_ = n.Step(0, fsm.ConnClosed{Conn: conn, Err: errors.New("connection reset")})
				check(rt, n)
				conn++
				for _, ev := range []fsm.Event{
					fsm.Accepted{Conn: conn},
					fsm.FrameReceived{Conn: conn, Frame: wire.Frame{Type: wire.Hello, ID: "A", Incarnation: 1}},
				} {
					_ = n.Step(0, ev)
				}
				check(rt, n)
				if _, ok := n.SessionConn("A"); !ok {
					rt.Fatalf("no session with A on its new connection")
				}
				// The peer delivered some of what was written.
				resume(rt, acked+uint64(rapid.IntRange(0, int(next-acked)).Draw(rt, "delivered")))
			},
		})
	})
}

// queued returns how many messages the node holds for A.
func queued(n *fsm.Node) int {
	for _, p := range n.Peers() {
		if p.ID == "A" {
			return p.Queued
		}
	}
	return 0
}
