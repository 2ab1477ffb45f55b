package netio

import (
	"testing"

	"github.com/masterless-go/masterless/fsm"
	"github.com/masterless-go/masterless/internal/recent"
)

// TestWritingFindsItsConnection: connections whose ids share a slot of
// recent (a SendMany's, a mesh's) each get their own writes, and a
// connection forgotten is no longer found, even though its slot held it: a
// write for it would land in another connection's buffer, or in one no
// reader or writer serves any more.
func TestWritingFindsItsConnection(t *testing.T) {
	n := &Runtime{conns: map[fsm.ConnID]*conn{}}
	a, b, c := &conn{id: 3}, &conn{id: 3 + recent.Slots}, &conn{id: 4}
	for _, x := range []*conn{a, b, c} {
		n.conns[x.id] = x
	}
	for i, want := range []*conn{a, b, a, c, b, b, a} {
		if got := n.writing(want.id); got != want {
			t.Fatalf("write %d, for c%d: found %p, want %p", i, want.id, got, want)
		}
	}
	n.forgetConn(a)
	if got := n.writing(a.id); got != nil {
		t.Fatalf("c%d forgotten: found %p", a.id, got)
	}
	if got := n.writing(b.id); got != b {
		t.Fatalf("c%d: found %p, want %p", b.id, got, b)
	}
	n.forgetConn(b)
	if got := n.writing(b.id); got != nil {
		t.Fatalf("c%d forgotten while in its slot: found %p", b.id, got)
	}
	if got := n.writing(99); got != nil {
		t.Fatalf("c99 was never held: found %p", got)
	}
}
