package masterless

import (
	"flag"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/masterless-go/masterless/internal/measure"
)

// The idle cost of sessions (issue 10, item 3): a node with 1,000 idle
// sessions and default heartbeats must use under 3% of one core, and at most
// 1.5 times what a bare-TCP program uses to send the same heartbeats over
// the same number of connections. It runs for real time (about a minute), so
// it is off by default: go test -run TestIdleCPU -idlecpu .
var (
	idleCPU       = flag.Bool("idlecpu", false, "run TestIdleCPU: the CPU of 1,000 idle sessions next to a bare-TCP baseline")
	idleCPURounds = flag.Int("idlecpu.rounds", 3, "TestIdleCPU: interleaved rounds of each")
	idleCPUWindow = flag.Duration("idlecpu.window", 4*time.Second, "TestIdleCPU: how long each round measures")
	idleCPUPeers  = flag.Int("idlecpu.peers", 1000, "TestIdleCPU: idle sessions (connections for the baseline)")
)

const (
	idleCPUMax   = 0.03 // of one core
	idleCPURatio = 1.5  // of the bare-TCP baseline
)

// processCPU returns the CPU time (user + system) this process used so far.
func processCPU(t testing.TB) time.Duration {
	var ru syscall.Rusage
	require.NoError(t, syscall.Getrusage(syscall.RUSAGE_SELF, &ru))
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// cpuPerSecond measures this process's CPU per second of real time over
// window, in cores.
func cpuPerSecond(t testing.TB, window time.Duration) float64 {
	c0, w0 := processCPU(t), time.Now()
	time.Sleep(window)
	c1, w1 := processCPU(t), time.Now()
	return float64(c1-c0) / float64(w1.Sub(w0))
}

// settleTime lets the connection setup end (handshakes, the first
// acknowledgements, the garbage they left) before a measurement.
const settleTime = 2 * time.Second

// idleCPUMasterless measures a node holding n idle sessions with default
// heartbeats. The peers are Servers in a child process, so their CPU is not
// counted: only the node's.
func idleCPUMasterless(t *testing.T, n int, window time.Duration) float64 {
	s, err := New("idle-cpu-node", WithLogger(quietLogger()))
	require.NoError(t, err)
	defer s.Close()
	child := startIdleChild(t, "masterless", s.Info(), n, 0)
	defer child.stop(t)
	eventuallyWithin(t, 2*time.Minute, "every session up at the node", func() bool { return len(s.Connections()) == n })
	time.Sleep(settleTime)
	cpu := cpuPerSecond(t, window)
	require.Len(t, s.Connections(), n, "no session may end while idle")
	return cpu
}

// idleCPUBare measures the baseline: n TCP connections from a child process,
// each end sending a 5-byte PING frame every second and reading with a
// deadline of the peer timeout, one goroutine and one runtime timer per
// connection end.
func idleCPUBare(t *testing.T, n int, window time.Duration) float64 {
	b := startBareNode(t)
	defer b.close()
	child := startIdleChild(t, "bare", b.ln.Addr().String(), n, 0)
	defer child.stop(t)
	eventuallyWithin(t, 2*time.Minute, "every connection accepted", func() bool { return b.count() == n })
	time.Sleep(settleTime)
	return cpuPerSecond(t, window)
}

// TestIdleCPU runs interleaved rounds of the node and of the baseline and
// compares the medians.
func TestIdleCPU(t *testing.T) {
	if !*idleCPU {
		t.Skip("takes about a minute of real time; run with -idlecpu")
	}
	if raceEnabled {
		t.Skip("the race detector multiplies CPU; run without -race")
	}
	n, window := *idleCPUPeers, *idleCPUWindow
	var ml, bare, ratios []float64
	for r := range *idleCPURounds {
		var m, b float64
		if r%2 == 0 {
			b = idleCPUBare(t, n, window)
			m = idleCPUMasterless(t, n, window)
		} else {
			m = idleCPUMasterless(t, n, window)
			b = idleCPUBare(t, n, window)
		}
		t.Logf("round %d: masterless %.2f%% of a core, bare TCP %.2f%%, ratio %.2f (load average %s)", r+1, 100*m, 100*b, m/b, measure.LoadAverage())
		ml, bare, ratios = append(ml, m), append(bare, b), append(ratios, m/b)
	}
	mm, mb, mr := measure.Median(ml), measure.Median(bare), measure.Median(ratios)
	t.Logf("%d idle sessions, %v windows, medians of %d rounds: masterless %.2f%% of one core, bare TCP %.2f%%, ratio %.2f (load average %s)",
		n, window, len(ml), 100*mm, 100*mb, mr, measure.LoadAverage())
	require.Less(t, mm, idleCPUMax, "idle sessions cost %.2f%% of a core, over %.0f%% (bare TCP with the same heartbeats: %.2f%%)", 100*mm, 100*idleCPUMax, 100*mb)
	require.LessOrEqual(t, mr, idleCPURatio, "idle sessions cost %.2fx the bare-TCP baseline, over %.1fx", mr, idleCPURatio)
}
