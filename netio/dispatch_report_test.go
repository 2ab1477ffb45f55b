package netio

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/masterless-go/masterless/wire"
)

// TestDispatcherReportsConsumption: what the user took off the queue is
// reported as it goes, not only when the queue runs empty (every
// reportEvery bytes, so that a sender's credit comes back while a long
// queue is being delivered), each message once, under its peer and
// incarnation, whether it came alone or in a run of frames.
func TestDispatcherReportsConsumption(t *testing.T) {
	var mu sync.Mutex
	var reports []consumption
	var handed int
	var d dispatcher
	gate := make(chan struct{})
	d.init(Events{Message: func(string, []byte) { handed++ }}, gate, 1<<20, 1<<30, func(used []consumption) {
		mu.Lock()
		reports = append(reports, used...)
		reports = append(reports, consumption{}) // the end of one report
		mu.Unlock()
	})
	// Queued before delivery starts (the gate), so that the queue runs empty
	// only after the last: every report but the last is one of reportEvery.
	var evs []event
	want := map[string][2]int{} // peer/inc -> messages, bytes
	for i := range 300 {
		peer, inc := fmt.Sprintf("p%d", i%3), uint64(1+i%2)
		size := 100 + 37*(i%50) // up to 1,913 bytes
		var frames []byte
		k := 1 + i%20
		for range k {
			frames = wire.AppendData(frames, make([]byte, size))
		}
		evs = append(evs, event{kind: evMessages, n: uint32(k), peer: peer, inc: inc, payload: frames})
		evs = append(evs, event{kind: evMessage, peer: peer, inc: inc, payload: make([]byte, size)})
		key := fmt.Sprintf("%s/%d", peer, inc)
		w := want[key]
		want[key] = [2]int{w[0] + k + 1, w[1] + (k+1)*size}
	}
	d.push(evs)
	done := make(chan struct{})
	go d.run(done)
	close(gate)
	total, msgs := 0, 0
	for _, w := range want {
		msgs, total = msgs+w[0], total+w[1]
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		if time.Now().After(deadline) {
			t.Fatal("not everything was reported within 10 s")
		}
		mu.Lock()
		got := map[string][2]int{}
		var sizes []int
		report := 0
		for _, u := range reports {
			if u.peer == "" {
				sizes = append(sizes, report)
				report = 0
				continue
			}
			key := fmt.Sprintf("%s/%d", u.peer, u.inc)
			g := got[key]
			got[key] = [2]int{g[0] + u.msgs, g[1] + u.bytes}
			report += u.bytes
		}
		mu.Unlock()
		sum := 0
		for _, g := range got {
			sum += g[1]
		}
		if sum < total {
			time.Sleep(time.Millisecond)
			continue // not all reported yet
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("reported %v, handed over %v", got, want)
		}
		if len(sizes) < total/reportEvery {
			t.Fatalf("%d reports for %d bytes: not one every %d bytes", len(sizes), total, reportEvery)
		}
		for i, b := range sizes[:len(sizes)-1] {
			if b < reportEvery || b >= reportEvery+2000 {
				t.Fatalf("report %d of %d: %d bytes, want from %d, at the message that reached it", i, len(sizes), b, reportEvery)
			}
		}
		break
	}
	d.stop()
	<-d.gone
	if handed != msgs {
		t.Fatalf("%d messages handed over, want %d", handed, msgs)
	}
}
