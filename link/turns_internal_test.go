package link

import "testing"

// TestTurnsTrim: a burst from many sources leaves their emptied queues'
// buffers as spares for the next sources; Trim gives them all back, and the
// queue works as before after it.
func TestTurnsTrim(t *testing.T) {
	var q Turns[int]
	for s := range 100 {
		for i := range 100 {
			q.PushMessage(string(rune('A'+s)), i)
		}
	}
	for q.Len() > 0 {
		q.PopChunk(nil, 64)
	}
	if q.spareCap == 0 || len(q.spare) == 0 {
		t.Fatalf("no spare buffers kept after the burst (%d items in %d queues): nothing to trim", q.spareCap, len(q.spare))
	}
	q.Trim()
	if q.spareCap != 0 || q.spare != nil {
		t.Fatalf("Trim kept %d items in %d spare queues", q.spareCap, len(q.spare))
	}
	q.PushMessage("A", 1)
	q.PushMessage("B", 2)
	if got := q.PopChunk(nil, 64); len(got) != 2 || got[0] != 1 || got[1] != 2 {
		t.Fatalf("after Trim: %v", got)
	}
}

// TestTurnsKeepNoEmptiedQueue: once every source has been emptied, no
// queue stays reachable from the ring's backing array (past its length),
// so Trim gives back every buffer a burst grew.
func TestTurnsKeepNoEmptiedQueue(t *testing.T) {
	var q Turns[int]
	for s := range 10 {
		for i := range 1000 {
			q.PushMessage(string(rune('A'+s)), i)
		}
	}
	for q.Len() > 0 {
		q.PopChunk(nil, 64)
	}
	q.Trim()
	for i, tq := range q.ring[:cap(q.ring)] {
		if tq != nil {
			t.Fatalf("ring slot %d of %d (length %d) still holds a queue with a buffer of %d items", i, cap(q.ring), len(q.ring), cap(tq.items))
		}
	}
}
