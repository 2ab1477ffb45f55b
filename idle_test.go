package masterless

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// Idle peers in another process. The memory and idle-CPU measurements
// (memory_test.go, idlecpu_test.go) need peers whose own cost does not count:
// peers in the same process would add their heap, goroutines and timers to
// the node's. So the test binary starts itself again as a child
// (TestIdlePeersChild, selected by an environment variable) that opens the
// peers and holds them until its stdin closes. The parent measures only
// itself: runtime.MemStats and getrusage(RUSAGE_SELF) cover one process.

const (
	envChild     = "MASTERLESS_IDLE_CHILD"  // "masterless", "masterless-burst", "bare" or "tls-hog"
	envChildAddr = "MASTERLESS_IDLE_ADDR"   // where the peers connect
	envChildN    = "MASTERLESS_IDLE_N"      // how many peers
	envChildTO   = "MASTERLESS_IDLE_PEERTO" // the peers' peer timeout, if not the default
)

// idleChild is a child process holding n idle peers of the node at addr.
type idleChild struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	done  chan error
}

// startIdleChild starts the child in mode ("masterless": n Servers that each
// Connect to addr; "bare": n TCP connections to addr that exchange bare
// heartbeats; "tls-hog": n connections that stall in a huge TLS handshake
// message, childTLSHog) and returns once it reports all n connected.
func startIdleChild(t testing.TB, mode, addr string, n int, peerTimeout time.Duration) *idleChild {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestIdlePeersChild$", "-test.count=1", "-test.timeout=10m")
	cmd.Env = append(os.Environ(), envChild+"="+mode, envChildAddr+"="+addr, envChildN+"="+strconv.Itoa(n),
		envChildTO+"="+peerTimeout.String())
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	require.NoError(t, err)
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	c := &idleChild{cmd: cmd, stdin: stdin, done: make(chan error, 1)}
	ready := make(chan error, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		sent := false
		for sc.Scan() {
			line := sc.Text()
			if !sent && strings.HasPrefix(line, "ready") {
				ready <- nil
				sent = true
			} else if !sent && strings.HasPrefix(line, "failed") {
				ready <- errors.New(line)
				sent = true
			}
		}
		if !sent {
			ready <- errors.New("the child ended before it was ready")
		}
		c.done <- cmd.Wait()
	}()
	select {
	case err := <-ready:
		if err != nil {
			c.stop(t)
			t.Fatalf("idle child (%s, %d peers): %v", mode, n, err)
		}
	case <-time.After(2 * time.Minute):
		c.stop(t)
		t.Fatalf("idle child (%s, %d peers) not ready after 2 min", mode, n)
	}
	return c
}

// stop closes the child's stdin, which makes it close its peers and exit,
// and waits for it (killing it after a bound).
func (c *idleChild) stop(t testing.TB) {
	_ = c.stdin.Close()
	select {
	case <-c.done:
	case <-time.After(time.Minute):
		_ = c.cmd.Process.Kill()
		<-c.done
		t.Errorf("the idle child did not exit within a minute; killed")
	}
}

// TestIdlePeersChild is the child's body; it is skipped unless the parent
// started this binary for it.
func TestIdlePeersChild(t *testing.T) {
	mode := os.Getenv(envChild)
	if mode == "" {
		t.Skip("runs only as the child of the idle measurements")
	}
	addr := os.Getenv(envChildAddr)
	n, err := strconv.Atoi(os.Getenv(envChildN))
	if err != nil {
		fmt.Println("failed: bad", envChildN)
		t.Fatal(err)
	}
	var opts []Option
	if to, _ := time.ParseDuration(os.Getenv(envChildTO)); to > 0 {
		opts = append(opts, WithPeerTimeout(to))
	}
	var stop func()
	switch mode {
	case "masterless":
		stop, err = childServers(addr, n, 0, opts...)
	case "masterless-burst":
		stop, err = childServers(addr, n, burstSize, opts...)
	case "bare":
		stop, err = childBare(addr, n)
	case "tls-hog":
		stop, err = childTLSHog(addr, n)
	default:
		err = fmt.Errorf("unknown mode %q", mode)
	}
	if err != nil {
		fmt.Println("failed:", err)
		t.Fatal(err)
	}
	fmt.Println("ready")
	_, _ = io.Copy(io.Discard, os.Stdin) // until the parent closes stdin
	stop()
}

// burstSize is the message each peer of the "masterless-burst" child sends
// the node once connected: enough to grow every buffer on the way.
const burstSize = 256 << 10

// childServers opens n Servers, each of which Connects to addr (and so keeps
// the node), with default heartbeats, and sends it a message of burst bytes
// if burst > 0.
func childServers(addr string, n, burst int, opts ...Option) (func(), error) {
	servers := make([]*Server, 0, n)
	stop := func() {
		var wg sync.WaitGroup
		for _, s := range servers {
			wg.Add(1)
			go func() { defer wg.Done(); s.Close() }()
		}
		wg.Wait()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	for i := range n {
		s, err := New(fmt.Sprintf("idle-peer-%05d", i), append([]Option{WithLogger(quietLogger())}, opts...)...)
		if err != nil {
			stop()
			return nil, err
		}
		servers = append(servers, s)
	}
	// A few Connects at a time: the node's handshake cap (WithMaxHandshakes)
	// must not refuse them.
	sem := make(chan struct{}, 16)
	errs := make(chan error, n)
	for _, s := range servers {
		sem <- struct{}{}
		go func() {
			defer func() { <-sem }()
			id, err := s.Connect(ctx, addr)
			if err == nil && burst > 0 {
				err = s.SendContext(ctx, id, make([]byte, burst))
			}
			errs <- err
		}()
	}
	for range n {
		if err := <-errs; err != nil {
			stop()
			return nil, err
		}
	}
	return stop, nil
}

// The bare-TCP baseline: the same heartbeat as a session (a 5-byte PING
// frame every heartbeat interval, each way) and the same dead-peer check (a
// read deadline of the peer timeout), written as plain Go would: one reader
// goroutine per connection and a runtime timer for the heartbeat.

var barePing = func() []byte {
	var b [5]byte
	binary.BigEndian.PutUint32(b[:], 1)
	b[4] = 0x05
	return b[:]
}()

// beatConn runs the bare heartbeat on nc until it fails or stop is called.
type beatConn struct {
	nc    net.Conn
	timer *time.Timer
	wg    *sync.WaitGroup
}

func runBeat(nc net.Conn, wg *sync.WaitGroup, heartbeat, peerTimeout time.Duration) *beatConn {
	b := &beatConn{nc: nc, wg: wg}
	var ping func()
	ping = func() {
		_ = nc.SetWriteDeadline(time.Now().Add(peerTimeout))
		if _, err := nc.Write(barePing); err != nil {
			return
		}
		b.timer.Reset(heartbeat)
	}
	b.timer = time.AfterFunc(heartbeat, ping)
	wg.Add(1)
	go func() {
		defer wg.Done()
		var buf [64]byte
		for {
			_ = nc.SetReadDeadline(time.Now().Add(peerTimeout))
			if _, err := nc.Read(buf[:]); err != nil {
				return
			}
		}
	}()
	return b
}

func (b *beatConn) stop() {
	b.timer.Stop()
	_ = b.nc.Close()
}

// childBare opens n TCP connections to addr that run the bare heartbeat.
func childBare(addr string, n int) (func(), error) {
	var wg sync.WaitGroup
	conns := make([]*beatConn, 0, n)
	stop := func() {
		for _, c := range conns {
			c.stop()
		}
		wg.Wait()
	}
	for range n {
		nc, err := net.DialTimeout("tcp", addr, 10*time.Second)
		if err != nil {
			stop()
			return nil, err
		}
		conns = append(conns, runBeat(nc, &wg, time.Second, 5*time.Second))
	}
	return stop, nil
}

// bareNode is the parent's end of the baseline: a listener whose accepted
// connections run the bare heartbeat.
type bareNode struct {
	ln    net.Listener
	mu    sync.Mutex
	conns []*beatConn
	wg    sync.WaitGroup
	done  chan struct{}
}

func startBareNode(t testing.TB) *bareNode {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	b := &bareNode{ln: ln, done: make(chan struct{})}
	go func() {
		defer close(b.done)
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			b.mu.Lock()
			b.conns = append(b.conns, runBeat(nc, &b.wg, time.Second, 5*time.Second))
			b.mu.Unlock()
		}
	}()
	return b
}

func (b *bareNode) count() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.conns)
}

func (b *bareNode) close() {
	_ = b.ln.Close()
	<-b.done
	b.mu.Lock()
	for _, c := range b.conns {
		c.stop()
	}
	b.mu.Unlock()
	b.wg.Wait()
}

// quietLogger drops every record: the measurements must not count logs.
func quietLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }
