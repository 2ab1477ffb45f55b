package fsm_test

import (
	"encoding/binary"
	"errors"
	"fmt"
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
		pick := func(n int) int { return rapid.IntRange(0, n-1).Draw(rt, "pick") }
		if err := runSendQueueModel(fsm.Config{ID: "M", Incarnation: 1}, pick); err != nil {
			rt.Fatal(err)
		}
	})
}

// runSendQueueModel runs one script of TestSendQueueModel, its choices made
// by pick (a number below its argument), on a node of configuration cfg
// (its ID "M"), and returns how the node broke the model, nil if it did not.
func runSendQueueModel(cfg fsm.Config, pick func(n int) int) error {
	const window = 8192
	cfg.Window, cfg.Leases = window, true
	n, err := fsm.New(cfg)
	if err != nil {
		return err
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
	between := func(lo, hi int) int { return lo + pick(hi-lo+1) }
	// check checks the actions of the steps taken against the model.
	var check func() error
	check = func() error {
		var revoked uint64
		for _, a := range splitAll(n.Ready()) {
			switch {
			case a.Kind == fsm.ActLease && a.Lease.Revoked():
				revoked, lease = a.Lease.Gen, fsm.Lease{}
			case a.Kind == fsm.ActLease:
				if a.Lease.Gen == lease.Gen {
					lease.Messages += a.Lease.Messages
					lease.Cost += a.Lease.Cost
					lease.Answers += a.Lease.Answers
					lease.AnswerCost += a.Lease.AnswerCost
				} else {
					lease = a.Lease
				}
			case a.Kind == fsm.ActWrite && a.Frame.Type == wire.Data:
				if a.Conn != conn {
					return fmt.Errorf("DATA written on connection %d, the session is on %d", a.Conn, conn)
				}
				num := binary.BigEndian.Uint64(a.Frame.Payload)
				if num != next+1 {
					return fmt.Errorf("wrote message %d, the next is %d (acknowledged up to %d)", num, next+1, acked)
				}
				if nextEnd >= limit {
					return fmt.Errorf("wrote message %d starting at offset %d, the credit limit is %d", num, nextEnd, limit)
				}
				next++
				nextEnd += msgs[num-1]
			case a.Kind == fsm.ActLost:
				return fmt.Errorf("lost: %v", a.Err)
			}
		}
		if err := n.CheckStreams(); err != nil {
			return err
		}
		if revoked != 0 { // the adapter admits what the lane held (nothing: it admits at once)
			_ = n.Step(0, fsm.Admit{Peer: "A", Gen: revoked})
			return check()
		}
		// Whatever credit allows went out.
		if uint64(len(msgs)) > next && nextEnd < limit {
			if _, ok := n.SessionConn("A"); ok {
				return fmt.Errorf("message %d waits at offset %d with the credit limit at %d", next+1, nextEnd, limit)
			}
		}
		if q := queued(n); q != len(msgs)-int(acked) {
			return fmt.Errorf("the node holds %d messages, the model %d", q, len(msgs)-int(acked))
		}
		return nil
	}
	payload := func(min int) []byte {
		size := between(min, min+100)
		if pick(4) == 0 {
			size = between(min, 1500) // a few large ones fill the buffer sooner: compaction
		}
		p := make([]byte, size)
		binary.BigEndian.PutUint64(p, uint64(len(msgs)+1))
		msgs = append(msgs, uint64(size)+fsm.MessageCost)
		return p
	}
	connect := func() error {
		conn++
		for _, ev := range []fsm.Event{
			fsm.Accepted{Conn: conn},
			fsm.FrameReceived{Conn: conn, Frame: wire.Frame{Type: wire.Hello, ID: "A", Incarnation: 1}},
		} {
			_ = n.Step(0, ev)
		}
		if err := check(); err != nil {
			return err
		}
		if _, ok := n.SessionConn("A"); !ok {
			return fmt.Errorf("no session with A on connection %d", conn)
		}
		return nil
	}
	// resume: the peer's first ACK on the session says it delivered up to
	// delivered, then its RESUME.
	resume := func(delivered uint64) error {
		for acked < delivered {
			ackedEnd += msgs[acked]
			acked++
		}
		credit := uint64(between(0, 3*window))
		limit, next, nextEnd = ackedEnd+credit, acked, ackedEnd
		_ = n.Step(0, fsm.FrameReceived{Conn: conn, Frame: wire.Frame{Type: wire.Ack, Delivered: delivered, Credit: credit}})
		_ = n.Step(0, fsm.FrameReceived{Conn: conn, Frame: wire.Frame{Type: wire.Resume, Next: 1}})
		return check()
	}
	if err := connect(); err != nil {
		return err
	}
	if err := resume(0); err != nil {
		return err
	}
	for steps := between(1, 60); steps > 0; steps-- {
		var err error
		switch pick(5) {
		case 0: // a Send, a producer's or an answer
			reserve := pick(2) == 0
			p := payload(8)
			if err := n.Step(0, fsm.Send{Peer: "A", Payload: p, Reserve: reserve}); err != nil {
				msgs = msgs[:len(msgs)-1] // refused: not queued
				if !errors.Is(err, fsm.ErrQueueFull) {
					return fmt.Errorf("Send refused: %w", err)
				}
			}
			err = check()
		case 1: // a SendMany of a shared copy
			p := payload(fsm.SharedMin)
			errs := make([]error, 1)
			_ = n.Step(0, fsm.SendMany{Peers: []string{"A"}, Payload: p, Errs: errs})
			if errs[0] != nil {
				msgs = msgs[:len(msgs)-1]
			}
			err = check()
		case 2: // a lease's batch of producers' messages and answers, or a request for a lease
			if lease.Gen == 0 || lease.Messages == 0 && lease.Answers == 0 {
				_ = n.Step(0, fsm.Admit{Peer: "A", Renew: true})
				err = check()
				break
			}
			k := between(1, 20)
			var frames []byte
			var runs []fsm.AdmitRun
			count := 0
			for range k {
				answer := pick(2) == 0
				left, room := &lease.Messages, &lease.Cost
				if answer {
					left, room = &lease.Answers, &lease.AnswerCost
				}
				p := payload(8)
				cost := uint64(len(p)) + fsm.MessageCost
				if *left < 1 || cost > *room || len(p) > lease.MaxPayload {
					msgs = msgs[:len(msgs)-1]
					break
				}
				*room -= cost
				*left--
				frames = wire.AppendData(frames, p)
				runs = fsm.AppendRun(runs, count, answer)
				count++
			}
			_ = n.Step(0, fsm.Admit{Peer: "A", Gen: lease.Gen, Frames: frames, Messages: count, Runs: runs, Renew: pick(2) == 0})
			err = check()
		case 3: // an ACK of some of what was written, with credit
			if _, ok := n.SessionConn("A"); !ok {
				break
			}
			delivered := acked + uint64(pick(int(next-acked)+1))
			for acked < delivered {
				ackedEnd += msgs[acked]
				acked++
			}
			credit := uint64(between(0, 2*window))
			limit = max(limit, ackedEnd+credit)
			_ = n.Step(0, fsm.FrameReceived{Conn: conn, Frame: wire.Frame{Type: wire.Ack, Delivered: delivered, Credit: credit}})
			err = check()
		case 4: // the connection breaks; a new one resumes after what the peer delivered of what was written
			_ = n.Step(0, fsm.ConnClosed{Conn: conn, Err: errors.New("connection reset")})
			if err = check(); err == nil {
				if err = connect(); err == nil {
					err = resume(acked + uint64(pick(int(next-acked)+1)))
				}
			}
		}
		if err != nil {
			return err
		}
	}
	return nil
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
