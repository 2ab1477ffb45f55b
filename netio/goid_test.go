package netio

import "testing"

// TestGoid: the id parses, is stable on one goroutine and differs on
// another, which is all onDispatcher needs.
func TestGoid(t *testing.T) {
	me := goid()
	if me == 0 || goid() != me {
		t.Fatalf("goid() = %d, then %d", me, goid())
	}
	other := make(chan uint64)
	go func() { other <- goid() }()
	if o := <-other; o == 0 || o == me {
		t.Fatalf("another goroutine's id is %d, this one's %d", o, me)
	}
}
