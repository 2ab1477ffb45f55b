package fsm

import (
	"fmt"
	"testing"
)

// The address book holds at most maxAddrBook forgotten peers, the most
// recent ones, and its age order does not grow without bound when ids are
// restored and forgotten again and again.
func TestAddrBookBounded(t *testing.T) {
	var b addrBook
	for i := range 3 * maxAddrBook {
		b.remember(&peer{id: fmt.Sprint("p", i), info: fmt.Sprint("tcp://h:", i)})
	}
	if len(b.entries) != maxAddrBook {
		t.Fatalf("%d entries, want %d", len(b.entries), maxAddrBook)
	}
	oldest := fmt.Sprint("p", 2*maxAddrBook)
	if _, ok := b.entries[oldest]; !ok {
		t.Fatalf("the oldest of the most recent %d (%s) is gone", maxAddrBook, oldest)
	}
	if _, ok := b.entries[fmt.Sprint("p", 2*maxAddrBook-1)]; ok {
		t.Fatal("an entry older than the most recent maxAddrBook is still there")
	}
	for range 10 * maxAddrBook { // one id restored and forgotten over and over
		p := &peer{id: "again"}
		b.restore(p)
		p.info = "tcp://again:1"
		b.remember(p)
	}
	if len(b.order) > 2*maxAddrBook+1 {
		t.Fatalf("age order holds %d refs for %d entries", len(b.order), len(b.entries))
	}
	p := &peer{id: "again"}
	b.restore(p)
	if p.info != "tcp://again:1" {
		t.Fatalf("restored info %q", p.info)
	}
	if _, ok := b.entries["again"]; ok {
		t.Fatal("a restored entry stays in the book")
	}
}
