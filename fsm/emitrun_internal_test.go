package fsm

import (
	"testing"

	"github.com/masterless-go/masterless/wire"
)

// An ActMessages extended by more messages (emitRun's merge, which the
// messages of a run taken frame by frame go through, emitMessage) keeps
// the length of its frames only while the messages added have it too
// (Action.FrameSize): the twins and the sweeps run steady sessions, whose
// stretches each end at an ACK and never merge, so this is their test.
func TestEmitRunKeepsFrameSizeWhileOneLength(t *testing.T) {
	for _, c := range []struct {
		payloads []string
		want     int
	}{
		{[]string{"ab"}, 7},
		{[]string{"ab", "cd", "ef"}, 7},
		{[]string{"ab", "cd", "efg"}, 0},
		{[]string{"abc", "de", "fg"}, 0},
		{[]string{"", ""}, 5},
	} {
		n, err := New(Config{ID: "M", Incarnation: 1})
		if err != nil {
			t.Fatal(err)
		}
		var frames []byte
		for _, p := range c.payloads {
			frames = wire.AppendData(frames, []byte(p))
		}
		c0, p0 := &conn{id: 1}, &peer{id: "A"}
		n.run = dataRun{frames: frames}
		for _, p := range c.payloads { // as dataReceived takes them one by one
			n.run.end = n.run.at + wire.DataFrameSize(len(p))
			n.emitMessage(c0, p0, 1, frames[n.run.at+wire.HeaderSize:n.run.end])
			n.run.at = n.run.end
		}
		if len(n.out) != 1 {
			t.Fatalf("%q: %d actions, want one ActMessages", c.payloads, len(n.out))
		}
		a := n.out[0]
		if a.Kind != ActMessages || a.Messages != len(c.payloads) || len(a.Frame.Payload) != len(frames) {
			t.Fatalf("%q: %v of %d messages, %d bytes; want an ActMessages of all", c.payloads, a.Kind, a.Messages, len(a.Frame.Payload))
		}
		if a.FrameSize != c.want || a.FrameSize != wire.DataRunFrameSize(a.Frame.Payload) {
			t.Errorf("%q: FrameSize %d, want %d", c.payloads, a.FrameSize, c.want)
		}
	}
}
