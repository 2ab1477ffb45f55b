package main

import (
	"fmt"
	"io"
	"log"
	"os"
	"runtime/pprof"
	"time"

	"github.com/masterless-go/masterless"
)

// startProfile starts a CPU profile written to path, and returns the
// function that stops it; with path "" it does nothing.
func startProfile(path string) (stop func()) {
	if path == "" {
		return func() {}
	}
	f, err := os.Create(path)
	if err != nil {
		log.Fatal(err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		log.Fatal(err)
	}
	return func() {
		pprof.StopCPUProfile()
		if err := f.Close(); err != nil {
			log.Print(err)
		}
	}
}

// progress prints, at most once a second, how many pairs have a
// connection at both ends, when on; counts are the connections of every
// node.
type progress struct {
	on    bool
	start time.Time
	next  time.Duration
}

func newProgress(on bool, start time.Time) *progress {
	return &progress{on: on, start: start, next: time.Second}
}

func (p *progress) update(counts []int) {
	if !p.on {
		return
	}
	if t := time.Since(p.start); t >= p.next {
		p.next = t.Truncate(time.Second) + time.Second
		total := 0
		for _, c := range counts {
			total += c
		}
		n := len(counts)
		fmt.Printf("%5.1fs: %d of %d connection ends\n", t.Seconds(), total, n*(n-1))
	}
}

// printStats writes to w the counts of every server's Stats that explain
// the connections beyond one per pair: the connections closed, by reason,
// at this end and at the peer's, those lost, and the sessions a server did
// not time out because its own timer ran late (Stats.PauseGraces).
func printStats(w io.Writer, label string, servers []*masterless.Server) {
	closed, peerClosed := map[string]uint64{}, map[string]uint64{}
	var lost, hs, failed, graces uint64
	for _, s := range servers {
		st := s.Stats()
		for r, v := range st.Closed {
			closed[r] += v
		}
		for r, v := range st.PeerClosed {
			peerClosed[r] += v
		}
		lost += st.Lost
		hs += st.Handshakes
		failed += st.HandshakesFailed
		graces += st.PauseGraces
	}
	fmt.Fprintf(w, "%s: handshakes %d, failed %d, lost %d, pause graces %d, closed %v, peer closed %v\n", label, hs, failed, lost, graces, closed, peerClosed)
}
