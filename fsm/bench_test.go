package fsm_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/masterless-go/masterless/fsm"
	"github.com/masterless-go/masterless/wire"
)

// established returns a node M with a session with peer A on connection 1,
// whose streams both ways have resumed (A's ACK and RESUME arrived).
func established(b testing.TB) *fsm.Node {
	b.Helper()
	return establishedWith(b, fsm.Config{ID: "M", Incarnation: 1})
}

// establishedWith is established for a node of configuration cfg (its ID
// must be "M").
func establishedWith(b testing.TB, cfg fsm.Config) *fsm.Node {
	b.Helper()
	n, err := establishedE(cfg)
	if err != nil {
		b.Fatal(err)
	}
	return n
}

// establishedE is establishedWith returning what went wrong.
func establishedE(cfg fsm.Config) (*fsm.Node, error) {
	n, err := fsm.New(cfg)
	if err != nil {
		return nil, err
	}
	for _, ev := range []fsm.Event{
		fsm.Accepted{Conn: 1},
		fsm.FrameReceived{Conn: 1, Frame: wire.Frame{Type: wire.Hello, ID: "A", Incarnation: 1}},
		fsm.FrameReceived{Conn: 1, Frame: wire.Frame{Type: wire.Ack, Credit: 1 << 40}},
		fsm.FrameReceived{Conn: 1, Frame: wire.Frame{Type: wire.Resume, Next: 1}},
	} {
		if err := n.Step(0, ev); err != nil {
			return nil, err
		}
	}
	if _, ok := n.SessionConn("A"); !ok {
		return nil, errors.New("no session: the setup broke the protocol")
	}
	n.Ready()
	return n, nil
}

func requireSession(b testing.TB, n *fsm.Node) {
	b.Helper()
	if _, ok := n.SessionConn("A"); !ok {
		b.Fatal("no session: the benchmark broke the protocol")
	}
}

// BenchmarkStepSend measures the fsm's share of sending one message: queue
// it in the stream, write it, and (every 64) drop what A acknowledged.
func BenchmarkStepSend(b *testing.B) {
	n := established(b)
	payload := make([]byte, 32)
	var sent uint64
	b.ReportAllocs()
	for b.Loop() {
		if err := n.Step(0, fsm.Send{Peer: "A", Payload: payload}); err != nil {
			b.Fatal(err)
		}
		if sent++; sent%64 == 0 {
			_ = n.Step(0, fsm.FrameReceived{Conn: 1, Frame: wire.Frame{Type: wire.Ack, Delivered: sent, Credit: 1 << 40}})
		}
		n.Ready()
	}
	requireSession(b, n)
}

// BenchmarkStepReceiveData measures the fsm's share of receiving one
// message: count it, deliver it, and (every 64) take back the credit the
// user's consumption frees.
func BenchmarkStepReceiveData(b *testing.B) {
	n := established(b)
	ev := fsm.FrameReceived{Conn: 1, Frame: wire.Frame{Type: wire.Data, Payload: make([]byte, 32)}}
	var got int
	b.ReportAllocs()
	for b.Loop() {
		_ = n.Step(0, ev)
		if got++; got%64 == 0 {
			_ = n.Step(0, fsm.Consumed{Peer: "A", Incarnation: 1, Messages: 64, Bytes: 64 * 32})
		}
		n.Ready()
	}
	requireSession(b, n)
}

// BenchmarkStepReceiveDataRun is BenchmarkStepReceiveData with the messages
// arriving k at a time, as a read brings them, in one step each
// (fsm.DataReceived); ns/op is per message. The sized variants come with
// their length (DataReceived.FrameSize), as netio's reads of messages of
// one length do.
func BenchmarkStepReceiveDataRun(b *testing.B) {
	for _, k := range []int{8, 64, 512} {
		for _, sized := range []bool{false, true} {
			name := fmt.Sprint(k)
			size := 0
			if sized {
				name, size = name+"-sized", wire.DataFrameSize(32)
			}
			b.Run(name, func(b *testing.B) { benchReceiveDataRun(b, k, size) })
		}
	}
}

// benchReceiveDataRun is one of BenchmarkStepReceiveDataRun's variants.
func benchReceiveDataRun(b *testing.B, k, size int) {
	n := established(b)
	var run []byte
	for range k {
		run = wire.AppendData(run, make([]byte, 32))
	}
	b.ReportAllocs()
	for i := 0; i < b.N; i += k {
		n.ReceiveData(0, 1, run, size)
		n.Ready()
		_ = n.Step(0, fsm.Consumed{Peer: "A", Incarnation: 1, Messages: k, Bytes: k * 32})
		n.Ready()
	}
	requireSession(b, n)
}

// BenchmarkStepAdmit measures the fsm's share of a producer's message
// staged under a lease: its part of the Admit of a batch of up to 512 (the
// lease's), of writing them, and of the ACK that drops them, with a small
// backlog of messages unacknowledged and with one near the producers'
// share (15,000 of 32 bytes, as a one-way stream keeps); ns/op is per message.
func BenchmarkStepAdmit(b *testing.B) {
	for _, lag := range []uint64{64, 15000} {
		b.Run(fmt.Sprintf("unacknowledged=%d", lag), func(b *testing.B) {
			n := establishedWith(b, fsm.Config{ID: "M", Incarnation: 1, Leases: true})
			var lease fsm.Lease
			take := func() {
				for _, a := range n.Ready() {
					if a.Kind == fsm.ActLease {
						if a.Lease.Gen == lease.Gen {
							lease.Messages += a.Lease.Messages
						} else {
							lease = a.Lease
						}
					}
				}
			}
			_ = n.Step(0, fsm.Admit{Peer: "A", Renew: true})
			take()
			var frames []byte
			var sent, acked uint64
			payload := make([]byte, 32)
			b.ResetTimer()
			for i := 0; i < b.N; {
				frames = frames[:0]
				k := 0
				for k < lease.Messages && k < 512 && i < b.N {
					frames = wire.AppendData(frames, payload)
					k++
					i++
				}
				if k == 0 {
					b.Fatalf("no lease room: sent %d acked %d", sent, acked)
				}
				lease.Messages -= k
				_ = n.Step(0, fsm.Admit{Peer: "A", Gen: lease.Gen, Frames: frames, Messages: k, Renew: true})
				take()
				sent += uint64(k)
				for sent-acked >= lag+64 {
					acked += 64
					_ = n.Step(0, fsm.FrameReceived{Conn: 1, Frame: wire.Frame{Type: wire.Ack, Delivered: acked, Credit: 1 << 40}})
					take()
				}
			}
		})
	}
}
