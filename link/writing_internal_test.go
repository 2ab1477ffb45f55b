package link

import (
	"testing"

	"github.com/masterless-go/masterless/fsm"
	"github.com/masterless-go/masterless/internal/recent"
	"github.com/masterless-go/masterless/wire"
)

// TestWritingFindsItsConnection: connections whose ids share a slot of
// recent each get their own writes (their protocols may differ), and one
// the Layer forgot is no longer found, even though its slot held it: the
// state machine writing on it is a bug, which write reports by panicking.
func TestWritingFindsItsConnection(t *testing.T) {
	l := &Layer{conns: map[fsm.ConnID]*conn{}}
	a, b, c := l.register(5, protoBinary), l.register(5+recent.Slots, protoLegacy), l.register(6, protoBinary)
	ids := map[*conn]fsm.ConnID{a: 5, b: 5 + recent.Slots, c: 6}
	for i, want := range []*conn{a, b, a, c, b, b, a} {
		if got := l.writing(ids[want]); got != want {
			t.Fatalf("write %d, for c%d: found %p, want %p", i, ids[want], got, want)
		}
	}
	l.forget(5, a)
	if got := l.writing(5); got != nil {
		t.Fatalf("c5 forgotten: found %p", got)
	}
	if got := l.writing(5 + recent.Slots); got != b {
		t.Fatalf("c%d: found %p, want %p", 5+recent.Slots, got, b)
	}
	l.forget(5+recent.Slots, b)
	if got := l.writing(5 + recent.Slots); got != nil {
		t.Fatalf("c%d forgotten while in its slot: found %p", 5+recent.Slots, got)
	}
	defer func() {
		if recover() == nil {
			t.Fatal("a write on a forgotten connection did not panic")
		}
	}()
	l.write(5, &wire.Frame{Type: wire.Ping})
}
