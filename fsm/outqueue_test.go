package fsm

import (
	"fmt"
	"testing"
	"unsafe"

	"github.com/masterless-go/masterless/wire"
)

// TestQueueKeepsARunPerBatch holds the send queue to what outqueue.go
// says it costs: messages queued one after the other, of one kind, are one
// run, however many there are and however they came (Sends one at a time,
// a lease's batches), and a message of the other kind, or a SendMany's
// shared copy, starts a run of its own. A run lies in one segment: the
// stream starts here with a spare segment that holds them all, and a
// stream without one has a run per segment.
func TestQueueKeepsARunPerBatch(t *testing.T) {
	small := make([]byte, 32)
	var frames []byte
	for range 100 {
		frames = wire.AppendData(frames, small)
	}
	var fresh outStream // its segments grow from minSegment
	for range 10 {
		fresh.queueFrames(frames, 100, 100*32, 32, true)
	}
	if len(fresh.segs) < 3 || len(fresh.runs) != len(fresh.segs) || fresh.count != 1000 {
		t.Fatalf("1,000 producers' messages in %d segments: %d runs, %d messages; want a run per segment", len(fresh.segs), len(fresh.runs), fresh.count)
	}
	if err := fresh.check(); err != nil {
		t.Fatal(err)
	}
	o := outStream{spares: []*segment{{b: make([]byte, 0, 64<<10)}}}
	for range 10 {
		o.queueFrames(frames, 100, 100*32, 32, true)
	}
	for range 50 {
		o.queue(small, true, nil)
	}
	if len(o.runs) != 1 || o.count != 1050 {
		t.Fatalf("1,050 producers' messages queued in a row: %d runs, %d messages; want 1 run of 1,050", len(o.runs), o.count)
	}
	o.queue(small, false, nil) // an answer
	o.queue(small, false, nil) // another: the same run
	big := make([]byte, 600)
	o.queue(big, true, &big)  // a shared copy
	o.queue(small, true, nil) // a producer's again
	if len(o.runs) != 4 || o.count != 1054 {
		t.Fatalf("runs %d, messages %d; want 4 runs (producers', answers, shared, producers'), 1,054 messages", len(o.runs), o.count)
	}
	if err := o.check(); err != nil {
		t.Fatal(err)
	}
	o.drop(1051) // into the answers' run
	if len(o.runs) != 3 || o.count != 3 || o.runs[0].count != 1 {
		t.Fatalf("after 1,051 acknowledged: runs %+v", o.runs)
	}
	if err := o.check(); err != nil {
		t.Fatal(err)
	}
	// Negative controls: check sees each of these off by one, or broken.
	o.limit = 1 << 40
	o.advance(o.next(), 1, 5+32, 32)
	for name, breakIt := range map[string]func(o *outStream){
		"a cursor's offset":        func(o *outStream) { o.cur.end++ },
		"a cursor's buffer offset": func(o *outStream) { o.cur.at++ },
		"a cursor's message":       func(o *outStream) { o.cur.in++ },
		"the sent count":           func(o *outStream) { o.sent-- },
		"a run's bytes":            func(o *outStream) { o.runs[0].n++ },
		"a run's end":              func(o *outStream) { o.runs[1].end++ },
		"the reserved cost":        func(o *outStream) { o.reserved++ },
		"the count":                func(o *outStream) { o.count++ },
		"a run's largest payload":  func(o *outStream) { o.runs[0].maxN-- },
		"a run's segment, another with the same bytes": func(o *outStream) {
			o.runs[0].seg = &segment{b: append([]byte(nil), o.runs[0].seg.b...)}
		},
		"the order of the segments": func(o *outStream) {
			before := &segment{b: append([]byte(nil), o.runs[2].seg.b...)}
			o.segs = append([]*segment{before}, o.segs...)
			o.runs[2].seg = before
		},
		"a spare still in use": func(o *outStream) { o.spares = append(o.spares[:len(o.spares):len(o.spares)], o.segs[0]) },
	} {
		if err := o.check(); err != nil {
			t.Fatal(err)
		}
		saved := o
		saved.runs = append([]outRun(nil), o.runs...)
		breakIt(&o)
		if o.check() == nil {
			t.Errorf("check missed %s off by one", name)
		}
		o = saved
	}
}

// TestCutKeepsTheRest cuts the next message to send (a message too large
// for the peer, pump) at the start, inside and at the end of a run, and
// after a shared copy: the others stay, in order, with their offsets, and
// the cursor stands at the one after it.
func TestCutKeepsTheRest(t *testing.T) {
	big := make([]byte, sharedMin)
	for _, shared := range []bool{false, true} {
		for _, at := range []int{0, 1, 4, 9} {
			var o outStream
			var want [][]byte
			for i := range 10 {
				m := []byte{byte(i), byte(i), byte(i)}
				if shared && i == at {
					m = append([]byte{byte(i)}, big...)
					o.queue(m, true, &m)
				} else {
					o.queue(m, i%4 == 3, nil) // answers now and then: several runs
				}
				if i != at {
					want = append(want, m)
				}
			}
			o.limit = 1 << 40
			for range at {
				r := o.next()
				m := frameAt(r.seg, o.cur.at)
				o.advance(r, 1, len(m)+5, len(m))
			}
			o.next()
			o.cutNext()
			if err := o.check(); err != nil {
				t.Fatalf("shared %t, cut message %d: %v", shared, at, err)
			}
			var got [][]byte
			o.each(o.count, func(m []byte) { got = append(got, append([]byte(nil), m...)) })
			if fmt.Sprint(got) != fmt.Sprint(want) || o.sent != at {
				t.Fatalf("shared %t, cut message %d: left %v, sent %d; want %v, sent %d", shared, at, got, o.sent, want, at)
			}
			if at < 9 {
				r := o.next()
				if m := frameAt(r.seg, o.cur.at); r.shared != nil || m[0] != byte(at+1) {
					t.Fatalf("shared %t, cut message %d: the next to send is %v", shared, at, m)
				}
			}
		}
	}
}

// TestQueueNeverMovesFrames: a message queued is copied once, into a
// segment, and stays there until its segment is retired; no Send copies
// what was queued before it (a buffer grown by append copied all of it:
// 44-68 ms for one Send toward a peer that had stopped acknowledging 17 MiB
// of 1 KiB messages). No segment is larger than maxSegment but the one of a
// frame larger than that, its own size.
func TestQueueNeverMovesFrames(t *testing.T) {
	var o outStream
	where := map[*segment]*byte{} // each segment's bytes, as first seen
	payload := make([]byte, 1<<10)
	big := make([]byte, 600<<10)
	for i := range 20_000 {
		m := payload
		if i%5000 == 4999 {
			m = big
		}
		o.queue(m, true, nil)
		for _, g := range o.segs {
			at := unsafe.SliceData(g.b)
			if was, ok := where[g]; ok && was != at {
				t.Fatalf("message %d: a segment's frames moved", i)
			}
			where[g] = at
			if c := cap(g.b); c > maxSegment && c != wire.DataFrameSize(len(big)) {
				t.Fatalf("message %d: a segment of %d bytes", i, c)
			}
		}
		if i%1000 == 999 { // acknowledged in bursts: segments retire and come back as spares
			o.drop(o.count - 100)
			if err := o.check(); err != nil {
				t.Fatalf("message %d: %v", i, err)
			}
		}
	}
	t.Logf("%d segments", len(where))
	if len(where) > 40 {
		t.Fatalf("%d segments for 20,000 messages acknowledged in bursts of 1,000 (18 with spares): spares not reused", len(where))
	}
}

// TestQueueOfFewMessagesStaysSmall: a stream that never holds more than a
// few messages keeps small segments, however many it sends: sized by the
// last segment rather than by what is queued, each new segment doubled, to
// maxSegment with spares of it (712 KiB measured for a stream holding
// 3 KiB).
func TestQueueOfFewMessagesStaysSmall(t *testing.T) {
	var o outStream
	payload := make([]byte, 1<<10)
	most := 0
	for range 100_000 {
		o.queue(payload, true, nil)
		if o.count > 3 {
			o.drop(1)
		}
		most = max(most, o.segmentsCap())
	}
	if err := o.check(); err != nil {
		t.Fatal(err)
	}
	if most > 8*minSegment {
		t.Fatalf("a stream of at most 3 KiB messages held %d bytes of segments", most)
	}
	t.Logf("at most %d bytes of segments", most)
}
