package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log"
	"log/slog"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// A mesh larger than one process's open-file limit runs in several
// processes of this program. The parent starts P children with
// -child FIRST,COUNT; they talk in lines:
//
//	child:  listen I ADDR      (one per node of its block), then ready
//	parent: peer I ADDR        (every node of the mesh), then go
//	child:  count C1 C2 ...    (connections of each of its nodes; every 20 ms)
//	child:  usage HEAP GOROUTINES   (its peaks, when its stdin closes)
//	child:  err TEXT           (a Connect that never succeeded)
//
// The parent closes the children's stdin to end them.

// procsFor returns how many processes a mesh of n needs when one may hold
// limit open files: a node holds a socket per peer once converged and, while
// the mesh forms, its own dials under way and the ones of other nodes that
// reach it (each at most inflight), so a block of k nodes needs about
// k(n-1+2*inflight) descriptors, and a tenth of the limit is kept spare.
// One process if the limit is unknown.
func procsFor(n, inflight int, limit uint64) int {
	if limit == 0 {
		return 1
	}
	perNode := n - 1 + 2*inflight
	k := max((int(min(limit, 1<<30))*9/10-64)/perNode, 1)
	return (n + k - 1) / k
}

// child is the parent's view of one child process.
type child struct {
	first, count int
	cmd          *exec.Cmd
	in           io.WriteCloser
	out          *bufio.Scanner
}

// runParent runs the mesh in procs children and waits until it converges.
func runParent(n, procs, inflight int, timeout time.Duration, verbose bool, cpuprofile string, progressOn, statsOn bool, why string) int {
	self, err := os.Executable()
	if err != nil {
		log.Print(err)
		return 1
	}
	fmt.Printf("running %d nodes in %d processes (%s)\n", n, procs, why)
	children := make([]*child, 0, procs)
	defer func() {
		for _, c := range children { // all at once: each takes a while to close its nodes
			c.in.Close()
		}
		for _, c := range children {
			c.cmd.Wait()
		}
	}()
	addrs := make([]string, n)
	for p := range procs {
		first, end := p*n/procs, (p+1)*n/procs
		args := []string{"-child", fmt.Sprintf("%d,%d", first, end-first), "-n", strconv.Itoa(n),
			"-inflight", strconv.Itoa(inflight), "-timeout", timeout.String(), "-v=" + strconv.FormatBool(verbose),
			"-heartbeat", heartbeat.String(), "-peer-timeout", peerTimeout.String()}
		if statsOn {
			args = append(args, "-stats")
		}
		if cpuprofile != "" {
			args = append(args, "-cpuprofile", fmt.Sprintf("%s.%d", cpuprofile, p))
		}
		c := &child{first: first, count: end - first, cmd: exec.Command(self, args...)}
		c.cmd.Stderr = os.Stderr
		if c.in, err = c.cmd.StdinPipe(); err != nil {
			log.Print(err)
			return 1
		}
		out, err := c.cmd.StdoutPipe()
		if err != nil {
			log.Print(err)
			return 1
		}
		c.out = bufio.NewScanner(out)
		c.out.Buffer(make([]byte, 64<<10), 1<<20)
		if err := c.cmd.Start(); err != nil {
			log.Print(err)
			return 1
		}
		children = append(children, c)
		for c.out.Scan() && c.out.Text() != "ready" {
			var i int
			var addr string
			if _, err := fmt.Sscanf(c.out.Text(), "listen %d %s", &i, &addr); err != nil || i < 0 || i >= n {
				log.Printf("child %d: unexpected line %q", p, c.out.Text())
				return 1
			}
			addrs[i] = addr
		}
	}
	for i, a := range addrs {
		if a == "" {
			log.Printf("%s never reported its address", nodeID(i))
			return 1
		}
	}
	start := time.Now()
	for _, c := range children {
		w := bufio.NewWriter(c.in)
		for i, a := range addrs {
			fmt.Fprintf(w, "peer %d %s\n", i, a)
		}
		fmt.Fprintln(w, "go")
		if err := w.Flush(); err != nil {
			log.Print(err)
			return 1
		}
	}

	var mu sync.Mutex
	counts := make([]int, n)
	var total usage
	var ends uint64 // connection ends, summed over the children (connEnds)
	failed := false
	var readers sync.WaitGroup
	for _, c := range children {
		readers.Add(1)
		go func() {
			defer readers.Done()
			for c.out.Scan() {
				f := strings.Fields(c.out.Text())
				mu.Lock()
				switch {
				case len(f) == c.count+1 && f[0] == "count":
					for k, s := range f[1:] {
						counts[c.first+k], _ = strconv.Atoi(s)
					}
				case len(f) == 4 && f[0] == "usage":
					h, _ := strconv.ParseUint(f[1], 10, 64)
					g, _ := strconv.Atoi(f[2])
					e, _ := strconv.ParseUint(f[3], 10, 64)
					total.heap += h
					total.goroutines += g
					ends += e
				case len(f) > 0 && f[0] == "err":
					log.Print(strings.TrimPrefix(c.out.Text(), "err "))
					failed = true
				}
				mu.Unlock()
			}
		}()
	}
	deadline := start.Add(timeout)
	prog := newProgress(progressOn, start)
	for {
		mu.Lock()
		done := converged(counts)
		prog.update(counts)
		mu.Unlock()
		if done {
			break
		}
		if time.Now().After(deadline) {
			mu.Lock()
			report(counts, n, time.Since(start), false)
			mu.Unlock()
			return 1
		}
		time.Sleep(time.Millisecond)
	}
	took := time.Since(start)
	mu.Lock()
	at := slices.Clone(counts)
	mu.Unlock()
	time.Sleep(hold) // does it hold?
	mu.Lock()
	held := converged(counts)
	mu.Unlock()
	for _, c := range children {
		c.in.Close() // the children print their usage and exit
	}
	readers.Wait()
	mu.Lock()
	defer mu.Unlock()
	report(at, n, took, true)
	fmt.Printf("%v later: %s\n", hold, holds(held))
	printOpened(ends, n)
	fmt.Printf("peak heap %.1f MiB, %d goroutines at most (sums over the %d processes)\n", float64(total.heap)/(1<<20), total.goroutines, len(children))
	if failed || !held {
		return 1
	}
	return 0
}

// runChild runs nodes FIRST to FIRST+COUNT-1 of a mesh of n for the parent.
func runChild(spec string, n, inflight int, timeout time.Duration, logger *slog.Logger, cpuprofile string, statsOn bool) {
	var first, count int
	if _, err := fmt.Sscanf(spec, "%d,%d", &first, &count); err != nil || first < 0 || count < 1 || first+count > n {
		log.Fatalf("bad -child %q", spec)
	}
	cnt, err := startCounted(first, count, n, logger)
	if err != nil {
		log.Fatal(err)
	}
	servers := cnt.servers
	defer closeAll(servers)
	out := bufio.NewWriter(os.Stdout)
	var outMu sync.Mutex
	for k, s := range servers {
		fmt.Fprintf(out, "listen %d %s\n", first+k, s.Info())
	}
	fmt.Fprintln(out, "ready")
	out.Flush()

	in := bufio.NewScanner(os.Stdin)
	addrs := make([]string, n)
	for in.Scan() && in.Text() != "go" {
		var i int
		var addr string
		if _, err := fmt.Sscanf(in.Text(), "peer %d %s", &i, &addr); err != nil || i < 0 || i >= n {
			log.Fatalf("child: unexpected line %q", in.Text())
		}
		addrs[i] = addr
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	peak := sampleUsage(ctx)
	stopProfile := startProfile(cpuprofile)
	errs := dialAll(ctx, servers, first, addrs, inflight)
	go func() {
		for err := range errs {
			outMu.Lock()
			fmt.Fprintf(out, "err %v\n", err)
			out.Flush()
			outMu.Unlock()
		}
	}()
	stop := make(chan struct{})
	go func() { // the parent closes stdin to end this process
		for in.Scan() {
		}
		close(stop)
	}()
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	counts := make([]int, count)
	for {
		select {
		case <-t.C:
			cnt.count(counts)
			outMu.Lock()
			fmt.Fprint(out, "count")
			for _, c := range counts {
				fmt.Fprintf(out, " %d", c)
			}
			fmt.Fprintln(out)
			out.Flush()
			outMu.Unlock()
		case <-stop:
			stopProfile()
			if statsOn {
				printStats(os.Stderr, fmt.Sprintf("nodes %d-%d", first, first+count-1), servers)
				printSchedLatency(os.Stderr, fmt.Sprintf("nodes %d-%d", first, first+count-1))
			}
			u := peak()
			outMu.Lock()
			fmt.Fprintf(out, "usage %d %d %d\n", u.heap, u.goroutines, connEnds(servers))
			out.Flush()
			outMu.Unlock()
			return
		}
	}
}
