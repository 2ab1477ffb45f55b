// Command mesh starts N servers, has every one dial every other at the same
// moment, and waits until the mesh has exactly one connection per pair:
// N(N-1)/2 in all. It exits non-zero if that does not happen within the
// timeout. It prints the time to converge, the peak heap and the goroutines.
//
//	go run ./examples/mesh -n 16
//
// Each server has at most -inflight Connect calls under way at once (32 up
// to 128 nodes, fewer above: size.go), so that a large mesh does not need every
// TCP connection of every pair open at the same moment, and a Connect that
// fails (out of descriptors, a handshake that timed out) is tried again
// after a pause until the timeout. (The library itself also keeps the
// address of a failed Connect and dials it again with its reconnect
// backoff; the example's own retries only make each Connect call wait for
// the peer, so that at most -inflight are under way.)
//
// A mesh of N nodes holds N(N-1) sockets once it has converged (65,280 for
// 256) and more while it forms. When one process may not open that many
// files, the example runs the nodes in several processes of itself (-procs,
// chosen from the limit when 0), each holding a block of nodes and dialing
// every node of every block; the parent gathers the counts (procs.go).
//
// From 192 nodes on, every node of the mesh uses a heartbeat of 2 s and a
// peer timeout of 10 s rather than the defaults (1 s, 5 s): on one machine
// the heartbeats of all the sessions of all the nodes are most of the work
// of a large mesh (heartbeat.go; -heartbeat and -peer-timeout set them).
//
// With -join, every server runs discovery (masterless.WithDiscovery) and
// knows only node 0's address: servers 1..N-1 each Connect to node 0 once,
// and learn every other member from their peers (join.go). Of each new pair
// only the node with the smaller id dials, so the mesh opens one TCP
// connection per pair when nothing fails. It runs in one process.
//
//	go run ./examples/mesh -n 64 -join
//
// The example watches the mesh form through each server's Connect and
// Disconnect events, and asks Connections (a sorted copy of the peers,
// taken under the server's lock) only once the events say every node has
// all its peers (count.go): polling Connections of every node every few
// milliseconds cost a large mesh a good part of its CPU. For measuring a
// run: -progress prints the connections made every second, -stats the
// connections closed by reason and how long goroutines waited to run,
// -cpuprofile writes a CPU profile per process, -hold sets how long the
// formed mesh must hold (1 s) and so how long it runs idle.
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"log/slog"
	"os"
	"slices"
	"time"

	"github.com/masterless-go/masterless"
)

// hold is how long the mesh must still hold once it has formed (-hold).
var hold time.Duration

func main() {
	n := flag.Int("n", 16, "number of nodes")
	timeout := flag.Duration("timeout", 0, "give up after this long (0: 30s, or 90s from 192 nodes on; size.go)")
	verbose := flag.Bool("v", false, "log protocol events")
	inflight := flag.Int("inflight", 0, "Connect calls under way at once per server (0: 4096/n, from 8 to 32; size.go)")
	procs := flag.Int("procs", 0, "processes to run the nodes in (0: one if the open-file limit allows, else as many as needed)")
	child := flag.String("child", "", "internal: run nodes FIRST,COUNT of the mesh for a parent process")
	join := flag.Bool("join", false, "discovery: every node knows only node 0's address (one process)")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile of the run to this file (a child process to FILE.P)")
	progress := flag.Bool("progress", false, "print the connections made every second while the mesh forms")
	flag.DurationVar(&hold, "hold", time.Second, "how long the mesh must hold once formed")
	statsOn := flag.Bool("stats", false, "print the connections closed by reason, and how long goroutines waited to run, once the mesh has held")
	flag.DurationVar(&heartbeat, "heartbeat", 0, "every node's heartbeat interval (0: the library's default, 2s from 192 nodes on; heartbeat.go)")
	flag.DurationVar(&peerTimeout, "peer-timeout", 0, "every node's peer timeout (0: the library's default, or 5 heartbeats when the heartbeat is set)")
	flag.Parse()
	if *n < 2 {
		log.Fatal("-n must be at least 2")
	}
	heartbeatFor(*n)
	if *inflight <= 0 {
		*inflight = inflightFor(*n)
	}
	if *timeout <= 0 {
		*timeout = timeoutFor(*n)
	}
	level := slog.LevelWarn
	if *verbose {
		level = slog.LevelDebug
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	limit := raiseFileLimit()
	if *child != "" {
		runChild(*child, *n, *inflight, *timeout, logger, *cpuprofile, *statsOn)
		return
	}
	if *join {
		*procs = 1
	}
	why := "-procs"
	if *procs <= 0 {
		*procs = procsFor(*n, *inflight, limit)
		why = "the open-file limit of one process is too low for all"
	}
	fmt.Println(heartbeatLine())
	if *procs > 1 {
		os.Exit(runParent(*n, *procs, *inflight, *timeout, *verbose, *cpuprofile, *progress, *statsOn, why))
	}
	if limit != 0 && limit < uint64(*n)*uint64(*n-1)+64 {
		log.Printf("warning: %d open files allowed, a mesh of %d needs about %d: it may not converge", limit, *n, *n*(*n-1))
	}
	os.Exit(runLocal(*n, *inflight, *timeout, logger, *join, *cpuprofile, *progress, *statsOn))
}

// runLocal runs the whole mesh in this process; with join, through
// discovery from node 0's address alone.
func runLocal(n, inflight int, timeout time.Duration, logger *slog.Logger, join bool, cpuprofile string, progressOn, statsOn bool) int {
	var opts []masterless.Option
	if join {
		opts = append(opts, masterless.WithDiscovery())
	}
	cnt, err := startCounted(0, n, n, logger, opts...)
	if err != nil {
		log.Print(err)
		return 1
	}
	servers := cnt.servers
	defer closeAll(servers)
	addrs := make([]string, n)
	for i, s := range servers {
		addrs[i] = s.Info()
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	peak := sampleUsage(ctx)
	defer startProfile(cpuprofile)()
	start := time.Now()
	prog := newProgress(progressOn, start)
	var errs <-chan error
	if join {
		errs = joinAll(ctx, servers)
	} else {
		errs = dialAll(ctx, servers, 0, addrs, inflight)
	}

	counts := make([]int, n)
	for cnt.count(counts); !converged(counts); cnt.count(counts) {
		prog.update(counts)
		if ctx.Err() != nil {
			cnt.exact(counts)
			report(counts, n, time.Since(start), false)
			return 1
		}
		time.Sleep(time.Millisecond)
	}
	took := time.Since(start)
	at := slices.Clone(counts)
	time.Sleep(hold) // does it hold?
	cnt.exact(counts)
	report(at, n, took, true)
	fmt.Printf("%v later: %s\n", hold, holds(converged(counts)))
	if join {
		fmt.Printf("discovery: every node started knowing only %s\n", servers[0].Info())
	}
	u := peak()
	if statsOn {
		printStats(os.Stdout, "all nodes", servers)
		printSchedLatency(os.Stdout, "this process")
	}
	printOpened(connEnds(servers), n)
	fmt.Printf("peak heap %.1f MiB, %d goroutines at most\n", float64(u.heap)/(1<<20), u.goroutines)
	if failed := drain(errs); failed || !converged(counts) {
		return 1
	}
	return 0
}

func nodeID(i int) string { return fmt.Sprintf("node-%03d", i) }

func closeAll(servers []*masterless.Server) {
	for _, s := range servers {
		s.Close()
	}
}

// converged reports whether every node has a connection to every other.
func converged(counts []int) bool {
	for _, c := range counts {
		if c != len(counts)-1 {
			return false
		}
	}
	return true
}

// report prints every node's connections and the total.
func report(counts []int, n int, took time.Duration, ok bool) {
	total := 0
	for i, c := range counts {
		fmt.Printf("%s: %d connections\n", nodeID(i), c)
		total += c
	}
	want := n * (n - 1) / 2
	if !ok {
		fmt.Printf("did not converge within %v: %d connection ends, want %d\n", took.Round(time.Millisecond), total, 2*want)
		return
	}
	fmt.Printf("total: %d connections (N(N-1)/2 = %d), converged in %v\n", total/2, want, took.Round(time.Microsecond))
}

// connEnds counts the connection ends of servers that ended their
// handshake: those that became a session (Stats.Handshakes) and those closed
// before (Stats.HandshakesFailed: duplicates, timeouts, refusals). Every TCP
// connection both ends saw counts once at each end; dials refused or never
// answered count nowhere.
func connEnds(servers []*masterless.Server) uint64 {
	var ends uint64
	for _, s := range servers {
		st := s.Stats()
		ends += st.Handshakes + st.HandshakesFailed
	}
	return ends
}

// printOpened prints the TCP connections the mesh opened, from the
// connection ends of every server (connEnds).
func printOpened(ends uint64, n int) {
	pairs := n * (n - 1) / 2
	fmt.Printf("TCP connections opened: %d (%.2f per pair; half the connection ends counted by Stats)\n", ends/2, float64(ends)/2/float64(pairs))
}

func holds(ok bool) string {
	if ok {
		return "every node still has N-1 connections"
	}
	return "the mesh no longer has every connection (see the log)"
}

func drain(errs <-chan error) (failed bool) {
	for err := range errs {
		log.Print(err)
		failed = true
	}
	return failed
}
