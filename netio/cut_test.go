package netio

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/masterless-go/masterless/fsm"
	"github.com/masterless-go/masterless/wire"
)

// TestCutByLengthIsCutByWalk: a run of messages of one length (event.size)
// is cut where walking its frames cuts it, at every message, and the event
// a read's ActMessages becomes carries the length only when the state
// machine gave one that fits the field.
func TestCutByLengthIsCutByWalk(t *testing.T) {
	for _, payload := range []int{0, 1, 32, 1000} {
		var frames []byte
		for i := range 9 {
			p := make([]byte, payload)
			for j := range p {
				p[j] = byte(i + j)
			}
			frames = wire.AppendData(frames, p)
		}
		ev := event{kind: evMessages, n: 9, payload: frames}
		arith := ev
		arith.size = uint16(wire.DataFrameSize(payload))
		for k := 1; k < 9; k++ {
			wantHead, wantRest := cutMessages(ev, k)
			head, rest := cutMessages(arith, k)
			require.Equal(t, wantHead.payload, head.payload, "payload %d, cut at %d", payload, k)
			require.Equal(t, wantRest.payload, rest.payload, "payload %d, cut at %d", payload, k)
			require.Equal(t, [2]uint32{wantHead.n, wantRest.n}, [2]uint32{head.n, rest.n})
			require.Equal(t, [2]uint16{arith.size, arith.size}, [2]uint16{head.size, rest.size}, "both parts keep the length")
		}
	}

	n, err := Start(Config{FSM: fsm.Config{ID: "x"}, Events: Events{Message: func(string, []byte) {}}})
	require.NoError(t, err)
	defer n.Close()
	frames := wire.AppendData(wire.AppendData(nil, []byte("ab")), []byte("cd"))
	for _, c := range []struct{ frameSize, want int }{{0, 0}, {7, 7}, {1 << 16, 0}} {
		n.mu.Lock()
		n.events = n.events[:0]
		(*transport)(n).Notify(&fsm.Action{Kind: fsm.ActMessages, Peer: "p", Messages: 2, FrameSize: c.frameSize, Frame: wire.Frame{Type: wire.Data, Payload: frames}})
		require.Len(t, n.events, 1)
		got := n.events[0].size
		n.events = n.events[:0]
		n.mu.Unlock()
		require.Equal(t, uint16(c.want), got, fmt.Sprintf("FrameSize %d", c.frameSize))
	}
}

// TestMessagesOfOneLengthAreHandedOverWhole: the dispatcher hands over the
// messages of a run of frames of one length (event.size, which it slices
// without reading their headers) as it does those of a run it parses:
// the same payloads, in order, each capped at its own end.
func TestMessagesOfOneLengthAreHandedOverWhole(t *testing.T) {
	var frames []byte
	var want []string
	for i := range 40 {
		p := fmt.Sprintf("message %02d", i)
		frames = wire.AppendData(frames, []byte(p))
		want = append(want, p)
	}
	for _, size := range []int{0, wire.DataFrameSize(len(want[0]))} {
		got := make(chan string, len(want))
		n, err := Start(Config{FSM: fsm.Config{ID: "x"}, Events: Events{Message: func(_ string, p []byte) {
			if cap(p) != len(p) {
				t.Errorf("a payload of %d bytes with room for %d: a handler's append would write over the next", len(p), cap(p))
			}
			got <- string(p)
		}}})
		require.NoError(t, err)
		n.mu.Lock()
		(*transport)(n).Notify(&fsm.Action{Kind: fsm.ActMessages, Peer: "p", Incarnation: 1, Messages: len(want), FrameSize: size, Frame: wire.Frame{Type: wire.Data, Payload: frames}})
		n.settle()
		n.mu.Unlock()
		for i := range want {
			require.Equal(t, want[i], <-got, "FrameSize %d, message %d", size, i)
		}
		require.NoError(t, n.Close())
	}
}

// TestLaneSaysOneLengthOnly: a lane's Admit says the length of its frames
// (fsm.Admit.FrameSize) only when every message staged since the last take
// has it, producers' and answers' alike, and a take starts over.
func TestLaneSaysOneLengthOnly(t *testing.T) {
	l := &lane{peer: "p", gen: 1, amsgs: 100, acost: 1 << 20, maxPayload: 1 << 10}
	stage := func(payloads ...string) {
		l.mu.Lock()
		for _, p := range payloads {
			l.putAnswer([]byte(p), uint64(len(p))+fsm.MessageCost)
		}
		l.mu.Unlock()
	}
	for _, c := range []struct {
		staged []string
		want   int
	}{
		{[]string{"abc"}, wire.DataFrameSize(3)},
		{[]string{"abc", "def", "ghi"}, wire.DataFrameSize(3)},
		{[]string{"abc", "de"}, 0},
		{[]string{"ab", "cde", "fg"}, 0},
		{[]string{"", ""}, wire.DataFrameSize(0)},
		{nil, 0},
	} {
		stage(c.staged...)
		a := l.take()
		require.Equal(t, len(c.staged), a.Messages)
		require.Equal(t, c.want, a.FrameSize, "staged %q", c.staged)
		if a.FrameSize != 0 {
			require.Len(t, a.Frames, a.Messages*a.FrameSize)
		}
	}
}

// TestLaneOfSeveralLengthsDeliversThem: a producer's messages of lengths
// that change from one to the next, staged in its lane and admitted in
// batches of several lengths, arrive whole and in order.
func TestLaneOfSeveralLengthsDeliversThem(t *testing.T) {
	const total = 20000
	got := make(chan []byte, total)
	a, _ := lanePair(t, func(_ string, p []byte) { got <- p })
	payload := func(i int) []byte { return []byte(fmt.Sprintf("%d%s", i, strings.Repeat("x", i%7))) }
	ctx := context.Background()
	for i := range total {
		require.NoError(t, a.SendContext(ctx, "b", payload(i)))
	}
	timeout := time.After(20 * time.Second)
	for i := range total {
		select {
		case p := <-got:
			require.Equal(t, string(payload(i)), string(p))
		case <-timeout:
			t.Fatalf("%d of %d messages arrived", i, total)
		}
	}
}
