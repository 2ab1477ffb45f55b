package netio

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/masterless-go/masterless/fsm"
	"github.com/masterless-go/masterless/internal/measure"
	"github.com/masterless-go/masterless/wire"
)

// Flood tests (issue 11, spec/PROTOCOL.md 3.6): real TCP on loopback, a
// flood of connections from other loopback addresses, and the targets:
// a real node connects within 1 s during an idle flood of 5,000
// connections/s, and an established session keeps its p99 latency under
// 5 ms during a garbage flood, with the heap and the log bounded. Each runs
// a few seconds and holds at most a few thousand sockets (ulimit -n is
// 20,000 on the dev machine).

const floodRate = 5000 // connections per second

// floodSources are the loopback addresses the flood comes from: Linux
// routes all of 127/8 to lo, so each is a source address of its own.
func floodSources(n int) []net.IP {
	var ips []net.IP
	for i := range n {
		ips = append(ips, net.IPv4(127, 0, 0, byte(2+i)))
	}
	return ips
}

// flooder opens connections to addr at rate per second from sources. Each
// connection writes garbage bytes (or nothing), then waits for the server
// to close it, at most hold, and closes. It runs in a process of its own
// (this test binary, TestFloodHelper), as an attacker would: its
// goroutines and sockets then do not compete with the node's inside one Go
// scheduler, nor count in the node's memory.
type flooder struct {
	addr     string
	sources  []net.IP
	rate     int
	garbage  bool
	stubborn bool // never closes before hold, even when the server has
	tlsStall bool // starts a TLS record and stops
	hello    bool // sends a preamble and a HELLO, then holds it open
	hold     time.Duration

	stop           chan struct{}
	wg             sync.WaitGroup
	started        time.Time
	stopped        time.Time
	dialed         atomic.Int64
	failed         atomic.Int64
	closedByServer atomic.Int64
}

var junk = func() []byte {
	r := rand.New(rand.NewPCG(11, 12))
	b := make([]byte, 64<<10)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}()

func (f *flooder) run() {
	f.stop, f.started = make(chan struct{}), time.Now()
	const workers = 4
	for w := range workers {
		f.wg.Add(1)
		go f.work(w, workers)
	}
}

func (f *flooder) work(w, workers int) {
	defer f.wg.Done()
	interval := time.Duration(workers) * time.Second / time.Duration(f.rate)
	next := f.started.Add(time.Duration(w) * interval / time.Duration(workers))
	for k := w; ; k += workers {
		select {
		case <-f.stop:
			return
		default:
		}
		if d := time.Until(next); d > 0 {
			time.Sleep(d)
		} else if d < -100*time.Millisecond {
			next = time.Now() // far behind: do not burst to catch up
		}
		next = next.Add(interval)
		d := net.Dialer{Timeout: time.Second, LocalAddr: &net.TCPAddr{IP: f.sources[k%len(f.sources)]}}
		c, err := d.Dial("tcp", f.addr)
		if err != nil {
			f.failed.Add(1)
			continue
		}
		f.dialed.Add(1)
		f.wg.Add(1)
		go f.hang(c, k)
	}
}

// hang writes the connection's garbage, if any, then reads until the server
// closes it or hold passes.
func (f *flooder) hang(c net.Conn, k int) {
	defer f.wg.Done()
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(f.hold))
	if f.tlsStall {
		if _, err := c.Write([]byte{0x16, 0x03, 0x01}); err != nil {
			return
		}
	}
	if f.hello {
		var codec wire.Binary
		b := codec.AppendPreamble(nil)
		b, _ = codec.AppendFrame(b, &wire.Frame{Type: wire.Hello, ID: fmt.Sprintf("flood-%d-%d", os.Getpid(), k), Incarnation: 1, MaxFrame: 1 << 20})
		if _, err := c.Write(b); err != nil {
			return
		}
	}
	if f.garbage {
		off := (k * 977) % (len(junk) - 512)
		if _, err := c.Write(junk[off : off+256]); err != nil {
			return
		}
	}
	if f.stubborn {
		time.Sleep(f.hold)
		return
	}
	if _, err := io.Copy(io.Discard, c); err == nil {
		f.closedByServer.Add(1) // EOF: the server closed it
	}
}

func (f *flooder) halt() {
	f.stopped = time.Now()
	close(f.stop)
	f.wg.Wait()
}

// floodHelperEnv carries a flood's settings to the helper process.
const floodHelperEnv = "MASTERLESS_FLOOD_HELPER"

// TestFloodHelper is the flooding process: it runs only when started by
// startFlood, floods for the time given, and prints what it did.
func TestFloodHelper(t *testing.T) {
	spec := os.Getenv(floodHelperEnv)
	if spec == "" {
		t.Skip("runs only as the flood tests' helper process")
	}
	var f flooder
	var sources, garbage int
	var hold, run int64
	if _, err := fmt.Sscanf(spec, "%s %d %d %d %d %d", &f.addr, &f.rate, &sources, &garbage, &hold, &run); err != nil {
		t.Fatalf("bad %s %q: %v", floodHelperEnv, spec, err)
	}
	f.sources, f.garbage, f.stubborn, f.tlsStall, f.hold = floodSources(sources), garbage&floodGarbage != 0, garbage&floodStubborn != 0, garbage&floodTLSStall != 0, time.Duration(hold)
	f.hello = garbage&floodHello != 0
	if sources == 0 {
		f.sources = []net.IP{net.IPv4(127, 0, 0, 1)}
	}
	f.run()
	time.Sleep(time.Duration(run))
	f.halt()
	fmt.Printf("flood: %d %d %d %d\n", f.dialed.Load(), f.failed.Load(), f.closedByServer.Load(), f.stopped.Sub(f.started).Nanoseconds())
}

// flood is a flood under way in the helper process.
type flood struct {
	cmd  *exec.Cmd
	out  bytes.Buffer
	done bool
	// What the helper reported.
	dialed, failed, closedByServer int64
	took                           time.Duration
}

// Kinds of flood connection.
const (
	floodIdle     = 0 // sends nothing
	floodGarbage  = 1 // sends 256 random bytes
	floodStubborn = 2 // with either: never closes before its hold time
	floodTLSStall = 4 // sends the first 3 bytes of a TLS record, then nothing
	floodHello    = 8 // sends the preamble and a HELLO (a fresh id), then nothing
)

// startFlood floods addr for run from a helper process: rate connections per
// second of kind g, from the sources addresses 127.0.0.2... (0: from
// 127.0.0.1), each held at most hold.
func startFlood(t *testing.T, addr string, rate, sources, g int, hold, run time.Duration) *flood {
	t.Helper()
	f := &flood{cmd: exec.Command(os.Args[0], "-test.run=^TestFloodHelper$", "-test.count=1")}
	f.cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%s %d %d %d %d %d", floodHelperEnv, addr, rate, sources, g, hold, run))
	f.cmd.Stdout, f.cmd.Stderr = &f.out, &f.out
	require.NoError(t, f.cmd.Start())
	t.Cleanup(func() { f.Wait(t) })
	return f
}

// Wait waits for the helper to finish and reads its report.
func (f *flood) Wait(t *testing.T) {
	t.Helper()
	if f.done {
		return
	}
	f.done = true
	err := f.cmd.Wait()
	for _, line := range strings.Split(f.out.String(), "\n") {
		var ns int64
		if _, e := fmt.Sscanf(line, "flood: %d %d %d %d", &f.dialed, &f.failed, &f.closedByServer, &ns); e == nil {
			f.took = time.Duration(ns)
		}
	}
	require.NoError(t, err, "flood helper: %s", f.out.String())
	require.NotZero(t, f.took, "flood helper said nothing: %s", f.out.String())
}

// Rate is the connections per second the flood opened.
func (f *flood) Rate() float64 { return float64(f.dialed) / f.took.Seconds() }

// floodTries is how many floods a flood test runs before it gives up on a
// machine too busy to flood. A flood that did not reach a quarter of its
// rate (or did not fill the handshake slots) measured nothing, and a busy
// spell of a shared two-CPU machine (load average 6-9) can slow one; the
// bounds themselves are never retried: a flood that reached its rate is
// judged on what it measured.
const floodTries = 3

// measured reports whether the flood of try (1, 2, ...) measured what it
// is for, cond; when it did not, it logs why and the load, and fails t
// (why) after the last try.
func measured(t floodT, try int, cond bool, why string) bool {
	t.Helper()
	if cond {
		return true
	}
	if try < floodTries {
		t.Logf("try %d of %d: %s (load average %s): flooding again", try, floodTries, why, measure.LoadAverage())
		return false
	}
	require.Fail(t, why+": the test measured nothing", "after %d floods; load average %s", floodTries, measure.LoadAverage())
	return false
}

// floodT is what measured needs of a *testing.T (a recorder in
// TestFloodRetriesOnlyWhatMeasuredNothing).
type floodT interface {
	require.TestingT
	Helper()
	Logf(format string, args ...any)
}

// floodRecorder is a floodT that records what measured did with it.
type floodRecorder struct{ logs, failures int }

func (r *floodRecorder) Errorf(string, ...any) { r.failures++ }
func (r *floodRecorder) FailNow()              {}
func (r *floodRecorder) Helper()               {}
func (r *floodRecorder) Logf(string, ...any)   { r.logs++ }

// TestFloodRetriesOnlyWhatMeasuredNothing holds measured to its rule: a
// flood that measured what it is for is judged at once, whatever its try;
// one that did not is flooded again, up to floodTries, and then fails the
// test rather than pass it unmeasured.
func TestFloodRetriesOnlyWhatMeasuredNothing(t *testing.T) {
	var r floodRecorder
	require.True(t, measured(&r, 1, true, ""), "a first flood that reached its rate")
	require.Zero(t, r.logs+r.failures)
	for try := 1; try < floodTries; try++ {
		require.False(t, measured(&r, try, false, "slow"), "try %d, slow", try)
	}
	require.Equal(t, floodTries-1, r.logs, "each try before the last logs why it floods again")
	require.Zero(t, r.failures, "no failure before the last try")
	require.False(t, measured(&r, floodTries, false, "slow"))
	require.Equal(t, 1, r.failures, "the last try that measured nothing fails the test")
	require.True(t, measured(&floodRecorder{}, floodTries, true, ""), "the last try that reached its rate")
}

// reached is the condition of measured for the flood's rate.
func (f *flood) reached(rate int) (bool, string) {
	return f.Rate() > float64(rate)/4, fmt.Sprintf("the flood reached %.0f connections/s, not a quarter of %d (a machine far too busy?)", f.Rate(), rate)
}

// lineCounter is a slog.Handler that counts the lines at Info and above.
type lineCounter struct{ lines *atomic.Int64 }

func (h lineCounter) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelInfo }
func (h lineCounter) Handle(context.Context, slog.Record) error {
	h.lines.Add(1)
	return nil
}
func (h lineCounter) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h lineCounter) WithGroup(string) slog.Handler      { return h }

func startNode(t *testing.T, cfg fsm.Config, log *slog.Logger, ev Events) *Runtime {
	t.Helper()
	return startNodeWith(t, Config{FSM: cfg, Logger: log, Events: ev})
}

func startNodeWith(t *testing.T, cfg Config) *Runtime {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = quiet()
	}
	n, err := Start(cfg)
	require.NoError(t, err)
	t.Cleanup(func() { n.Close() })
	return n
}

// connectWithin connects a new node to srv, trying again at once after a
// failed attempt, and reports how long it took, how many attempts, and
// whether it made it within limit.
func connectWithin(t *testing.T, id, srv string, secure bool, limit time.Duration) (time.Duration, int, bool) {
	cfg := Config{FSM: fsm.Config{ID: id}}
	if secure {
		cfg.TLS = testTLS(t, id)
	}
	n := startNodeWith(t, cfg)
	defer n.Close()
	start := time.Now()
	for attempts := 1; ; attempts++ {
		ctx, cancel := context.WithDeadline(context.Background(), start.Add(limit))
		_, err := n.Connect(ctx, srv)
		cancel()
		took := time.Since(start)
		if err == nil {
			return took, attempts, took <= limit
		}
		if took >= limit {
			return took, attempts, false
		}
		time.Sleep(time.Millisecond) // a refusal comes at once: do not spin
	}
}

// idleFlood floods a node built from cfg with connections that send
// nothing, from sources, and connects real nodes to it meanwhile. It
// returns each real node's time to connect (limit if it did not), and
// whether all made it within limit.
func idleFlood(t *testing.T, cfg fsm.Config, sources, tries int, limit time.Duration) ([]time.Duration, bool) {
	return idleFloodOf(t, cfg, false, floodIdle, sources, tries, limit)
}

// idleFloodOf is idleFlood with a node that speaks TLS when secure, and
// flood connections of kind g.
func idleFloodOf(t *testing.T, cfg fsm.Config, secure bool, g, sources, tries int, limit time.Duration) ([]time.Duration, bool) {
	rc := Config{FSM: cfg}
	if secure {
		rc.TLS = testTLS(t, cfg.ID)
	}
	rate := floodRate
	if raceEnabled {
		rate /= 5
	}
	for try := 1; ; try++ {
		srv := startNodeWith(t, rc)
		f := startFlood(t, srv.Addr().String(), rate, sources, g, 3*time.Second, 2500*time.Millisecond)
		time.Sleep(500 * time.Millisecond) // the slots fill
		var times []time.Duration
		all := true
		for i := range tries {
			took, attempts, ok := connectWithin(t, fmt.Sprint("real", i), srv.Info(), secure, limit)
			t.Logf("real node %d: connected=%v after %v, %d attempts", i, ok, took.Round(time.Microsecond), attempts)
			times = append(times, took)
			all = all && ok
		}
		srv.mu.Lock()
		evicted, busy := srv.fsm.Evicted(), srv.fsm.Handshaking()
		srv.mu.Unlock()
		f.Wait(t)
		srv.Close()
		t.Logf("flood: %.0f connections/s from %d addresses (%d dials failed), %d evicted, %d handshaking at the end; load average %s",
			f.Rate(), max(sources, 1), f.failed, evicted, busy, measure.LoadAverage())
		if ok, why := f.reached(rate); !measured(t, try, ok, why) {
			continue
		}
		if !measured(t, try, busy >= min(cfg.MaxHandshakes, 64), fmt.Sprintf("the flood filled %d handshake slots, not %d", busy, min(cfg.MaxHandshakes, 64))) {
			continue
		}
		return times, all
	}
}

// TestIdleFlood: during a flood of 5,000 connections/s that never say a
// word, a real node connects within 1 s, whether the flood comes from eight
// other addresses (each silent connection is evicted after about 256 newer
// ones) or from the real node's own address (the same, as that address
// holds more than its share and pays first).
func TestIdleFlood(t *testing.T) {
	limit := time.Second
	if raceEnabled {
		limit = 3 * time.Second
	}
	for _, tc := range []struct {
		name    string
		sources int
	}{
		{"other addresses", 8},
		{"the real node's own address", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			times, ok := idleFlood(t, fsm.Config{ID: "srv"}, tc.sources, 3, limit)
			require.True(t, ok, "a real node did not connect within %v during the idle flood: %v", limit, times)
		})
	}
}

// TestIdleFloodTLS: the same with a node that speaks TLS, flooded with
// connections that start a TLS handshake and stall in it: each holds a slot
// (the handshake runs while the state machine holds the connection in
// detect) only until it is evicted, and a real node, over TLS, gets in.
func TestIdleFloodTLS(t *testing.T) {
	limit := time.Second
	if raceEnabled {
		limit = 3 * time.Second
	}
	times, ok := idleFloodOf(t, fsm.Config{ID: "srv", RequireAuth: true}, true, floodTLSStall, 8, 3, limit)
	require.True(t, ok, "a real node did not connect within %v during the TLS-stalling flood: %v", limit, times)
}

// testTLS is a TLS setting for node id: a self-signed Ed25519 certificate
// naming id, and trust in any certificate (what is tested here is the
// slots, not the trust).
func testTLS(t *testing.T, id string) *TLS {
	t.Helper()
	pub, key, err := ed25519.GenerateKey(nil)
	require.NoError(t, err)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: id},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(nil, tmpl, tmpl, pub, key)
	require.NoError(t, err)
	return &TLS{
		Config: &tls.Config{
			Certificates:       []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}},
			ClientAuth:         tls.RequireAnyClientCert,
			MinVersion:         tls.VersionTLS13,
			InsecureSkipVerify: true, // VerifyConnection below: any certificate will do
			VerifyConnection: func(cs tls.ConnectionState) error {
				if len(cs.PeerCertificates) == 0 {
					return errors.New("no certificate")
				}
				return nil
			},
		},
		PeerID: func(cs tls.ConnectionState) (string, error) { return cs.PeerCertificates[0].Subject.CommonName, nil },
	}
}

// latencies collects one-way message latencies, in the phase they fall in.
type latencies struct {
	mu    sync.Mutex
	phase int
	d     [][]time.Duration
}

func (l *latencies) add(d time.Duration) {
	l.mu.Lock()
	if l.phase < len(l.d) { // after the last phase: not counted
		l.d[l.phase] = append(l.d[l.phase], d)
	}
	l.mu.Unlock()
}

func (l *latencies) next() {
	l.mu.Lock()
	l.phase++
	l.mu.Unlock()
}

func percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[min(len(s)-1, int(float64(len(s))*p))]
}

// memUse is what the process holds in heap objects and goroutine stacks.
func memUse() uint64 {
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse + m.StackInuse
}

// bareSink is the baseline's target: a bare TCP server in this process that
// does for each connection what a node does for garbage (read the first
// bytes, answer 8 bytes, half-close, read until the dialer closes), with
// none of the protocol.
func bareSink(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				_ = c.SetDeadline(time.Now().Add(2 * time.Second))
				b := make([]byte, 128)
				if _, err := c.Read(b); err != nil {
					return
				}
				if _, err := c.Write(b[:8]); err != nil {
					return
				}
				_ = c.(*net.TCPConn).CloseWrite()
				_, _ = io.Copy(io.Discard, c)
			}()
		}
	}()
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	return ln.Addr().String()
}

// garbageResult is what a garbage flood measured: the session's latency
// p99 alone, and in each round while a bare TCP server in the same process
// was flooded (the machine's and the flood's own cost) and while the node
// was; with the medians over the rounds.
type garbageResult struct {
	alone            time.Duration
	bare, node       []time.Duration // p99 per round
	bareMed, nodeMed time.Duration
	nodeMsgs         int
	memBase, memMax  uint64
	lines            int64
}

// garbageFlood runs a session between two nodes with a message every
// millisecond: alone, then in rounds, during a flood of connections that
// send random bytes to a bare TCP server in the same process, then during
// the same flood to the node. limits, when set, replaces the node's log
// limiter (the negative control of the log bound).
func garbageFlood(t *testing.T, rounds int, phase time.Duration, limits *logLimiter) garbageResult {
	for try := 1; ; try++ {
		if r, ok := garbageFloodOnce(t, try, rounds, phase, limits); ok {
			return r
		}
	}
}

// garbageFloodOnce is garbageFlood's try (1, 2, ...); false when a flood
// measured nothing (measured).
func garbageFloodOnce(t *testing.T, try, rounds int, phase time.Duration, limits *logLimiter) (garbageResult, bool) {
	var lines atomic.Int64
	lat := latencies{d: make([][]time.Duration, 1+2*rounds)}
	start := time.Now()
	srv := startNode(t, fsm.Config{ID: "srv"}, slog.New(lineCounter{&lines}), Events{
		Message: func(_ string, p []byte) {
			lat.add(time.Since(start) - time.Duration(binary.BigEndian.Uint64(p)))
		},
	})
	if limits != nil {
		srv.mu.Lock()
		srv.logs = limits
		srv.mu.Unlock()
	}
	peer := startNode(t, fsm.Config{ID: "peer"}, nil, Events{})
	_, err := peer.Connect(context.Background(), srv.Info())
	require.NoError(t, err)
	sink := bareSink(t)

	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // the session's traffic: one message a millisecond
		defer wg.Done()
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		var p [8]byte
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				binary.BigEndian.PutUint64(p[:], uint64(time.Since(start)))
				if err := peer.Send("srv", p[:]); err != nil {
					t.Errorf("send: %v", err)
					return
				}
			}
		}
	}()
	// stopSession ends the session's traffic; deferred too, so that a
	// require failing below does not leave the sender running (and calling
	// t.Errorf) after the test has returned.
	stopSession := sync.OnceFunc(func() { close(stop); wg.Wait() })
	defer stopSession()
	var r garbageResult
	rate := floodRate
	if raceEnabled {
		rate /= 5
	}
	time.Sleep(phase / 2)
	runtime.GC()
	r.memBase = memUse()
	for round := range rounds {
		for i, target := range []string{sink, srv.Addr().String()} {
			lat.next()
			f := startFlood(t, target, rate, 8, floodGarbage, 2*time.Second, phase)
			for end := time.Now().Add(phase); time.Now().Before(end); time.Sleep(200 * time.Millisecond) {
				if i == 1 {
					r.memMax = max(r.memMax, memUse())
				}
			}
			f.Wait(t)
			t.Logf("round %d: %.0f connections/s to the %s", round, f.Rate(), []string{"bare TCP server", "node"}[i])
			if ok, why := f.reached(rate); !measured(t, try, ok, why) {
				srv.Close()
				peer.Close()
				return r, false
			}
		}
	}
	r.lines = lines.Load()
	lat.next()
	stopSession()
	lat.mu.Lock()
	defer lat.mu.Unlock()
	r.alone = percentile(lat.d[0], 0.99)
	t.Logf("session latency p50/p99/max alone: %v/%v/%v (%d msgs)", percentile(lat.d[0], 0.5), r.alone, percentile(lat.d[0], 1), len(lat.d[0]))
	for round := range rounds {
		for i, ds := range lat.d[1+2*round : 3+2*round] {
			p99 := percentile(ds, 0.99)
			if i == 0 {
				r.bare = append(r.bare, p99)
			} else {
				r.node = append(r.node, p99)
				r.nodeMsgs += len(ds)
			}
			t.Logf("round %d, session latency p50/p99/max while the %s is flooded: %v/%v/%v (%d msgs)", round,
				[]string{"bare TCP server", "node"}[i], percentile(ds, 0.5), p99, percentile(ds, 1), len(ds))
		}
	}
	r.bareMed, r.nodeMed = percentile(r.bare, 0.5), percentile(r.node, 0.5)
	t.Logf("garbage flood: session p99 median over %d rounds %v while the node is flooded, %v while a bare TCP server is (alone %v); heap+stacks %.1f MB before, at most %.1f MB during; %d log lines at Info+; load average %s",
		rounds, r.nodeMed, r.bareMed, r.alone, float64(r.memBase)/(1<<20), float64(r.memMax)/(1<<20), r.lines, measure.LoadAverage())
	return r, true
}

// Bounds of the garbage flood test. The target is a p99 under 5 ms. On a
// machine busy with other work the flood's own cost (the kernel's, the
// flooding process's, the Go runtime's) can push even a bare TCP server's
// neighbours past that, so the node passes when its session's p99 is under
// the target or at most floodP99Ratio times what the same flood on a bare
// TCP server in the same process costs the session, and in any case under
// floodP99Cap (issue 11 measured 106-363 ms before the hardening).
const (
	floodP99Target = 5 * time.Millisecond
	floodP99Ratio  = 3
	floodP99Cap    = 100 * time.Millisecond
	floodMemGrowth = 32 << 20
	floodLogLines  = 100 // in 3 rounds of 2 s: a few kinds, 10 lines each per 10 s
)

// TestGarbageFlood: during a flood of 5,000 connections/s that each send
// random bytes, an established session keeps its p99 latency under 5 ms
// (see the bounds above), memory stays bounded and the log says a few lines,
// not one per connection.
func TestGarbageFlood(t *testing.T) {
	r := garbageFlood(t, 3, 2*time.Second, nil)
	require.Greater(t, r.nodeMsgs, 1000, "the session carried messages during the flood")
	require.Less(t, r.lines, int64(floodLogLines), "log lines during the flood")
	require.Less(t, r.memMax-min(r.memMax, r.memBase), uint64(floodMemGrowth), "memory growth during the flood")
	if raceEnabled {
		t.Skip("latency targets are not asserted under the race detector")
	}
	require.Less(t, r.nodeMed, floodP99Cap, "median p99 latency during the flood")
	require.Less(t, r.nodeMed, max(floodP99Target, floodP99Ratio*r.bareMed), "median p99 latency during the flood, against the target and %dx the bare TCP server's flood", floodP99Ratio)
}

// TestGarbageFloodCatchesUnlimitedLogs is the negative control of the log
// bound: without the limiter, the same flood writes a line per connection.
func TestGarbageFloodCatchesUnlimitedLogs(t *testing.T) {
	r := garbageFlood(t, 1, time.Second, newLogLimiter(1<<30, time.Second))
	require.Greater(t, r.lines, int64(floodLogLines), "without the limiter the log bound must fail")
}

// stubbornFlood floods a node with connections whose dialers never close
// them before 1.5 s, of kind g, and returns the most sockets the node held.
// lingerCap, when not 0, replaces the bound on lingering closes.
func stubbornFlood(t *testing.T, g, lingerCap int) int {
	rate := floodRate
	if raceEnabled {
		rate /= 5
	}
	for try := 1; ; try++ {
		srv := startNode(t, fsm.Config{ID: "srv"}, nil, Events{})
		if lingerCap != 0 {
			srv.mu.Lock()
			srv.lingerCap = lingerCap
			srv.mu.Unlock()
		}
		f := startFlood(t, srv.Addr().String(), rate, 8, g|floodStubborn, 1500*time.Millisecond, 2*time.Second)
		most := 0
		for end := time.Now().Add(2 * time.Second); time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
			srv.mu.Lock()
			most = max(most, len(srv.live))
			srv.mu.Unlock()
		}
		f.Wait(t)
		srv.Close()
		t.Logf("stubborn flood (kind %d): %.0f connections/s; the node held at most %d sockets; load average %s", g, f.Rate(), most, measure.LoadAverage())
		if ok, why := f.reached(rate); measured(t, try, ok, why) {
			return most
		}
	}
}

// TestStubbornFlood: dialers that never close their connections cannot make
// the node hold more sockets than its handshake slots and its bound on
// lingering closes: a connection closed before its protocol was known closes
// at once, and past maxLingering every close does.
func TestStubbornFlood(t *testing.T) {
	bound := fsm.DefaultMaxHandshakes + maxLingering + 16
	for _, g := range []int{floodIdle, floodGarbage} {
		require.Less(t, stubbornFlood(t, g, 0), bound, "sockets held during a stubborn flood of kind %d", g)
	}
}

// TestStubbornFloodCatchesUnboundedLinger is the negative control: without
// the bound, every garbage connection lingers and the node holds thousands.
func TestStubbornFloodCatchesUnboundedLinger(t *testing.T) {
	if raceEnabled {
		t.Skip("the flood is too slow under the race detector to outgrow the bound")
	}
	bound := fsm.DefaultMaxHandshakes + maxLingering + 16
	require.Greater(t, stubbornFlood(t, floodGarbage, 1<<30), bound, "without the bound on lingering, the sockets bound must fail")
}

// helloFloodResult is what a HELLO flood measured.
type helloFloodResult struct {
	evicted, silent uint64 // connections the node evicted; of those, silent ones
	firstFailed     int    // real nodes whose first attempt failed
	keptOut         int    // real nodes not connected within a second
}

// helloFlood floods a node with connections that each send a preamble and
// a HELLO, then nothing, held open (the last 1,500 of each of three flooding
// goroutines, which dial as fast as they can), from the real nodes' own
// address, with ids on both sides of the node's (it leads some handshakes
// and follows others), and connects real nodes to it one after the other
// meanwhile, each trying again at once after a failed attempt for up to a
// second. The flood runs in this process, as a black-box audit's did (and
// as other work in a user's process competes with the node's goroutines).
func helloFlood(t *testing.T, cfg fsm.Config, tries, hold int) helloFloodResult {
	srv := startNode(t, cfg, nil, Events{})
	addr := srv.Addr().String()
	var codec wire.Binary
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var dialed atomic.Int64
	for w := range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var held []net.Conn
			defer func() {
				for _, c := range held {
					c.Close()
				}
			}()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				if raceEnabled {
					time.Sleep(3 * time.Millisecond) // about 1,000 a second: the race detector slows the node far more than the flood
				}
				c, err := net.DialTimeout("tcp", addr, time.Second)
				if err != nil {
					continue
				}
				dialed.Add(1)
				id := fmt.Sprintf("aa-flood-%d-%d", w, i) // the node leads
				if i%2 == 1 {
					id = fmt.Sprintf("zz-flood-%d-%d", w, i) // the node follows
				}
				b := codec.AppendPreamble(nil)
				b, _ = codec.AppendFrame(b, &wire.Frame{Type: wire.Hello, ID: id, Incarnation: uint64(i + 1), MaxFrame: 1 << 20})
				_, _ = c.Write(b)
				if held = append(held, c); len(held) > hold {
					held[0].Close()
					held = held[1:]
				}
			}
		}()
	}
	start := time.Now()
	defer func() { close(stop); wg.Wait() }()
	time.Sleep(300 * time.Millisecond) // the slots fill
	var r helloFloodResult
	for i := range tries {
		took, attempts, ok := connectWithin(t, fmt.Sprintf("real-%02d", i), srv.Info(), false, time.Second)
		if !ok {
			r.keptOut++
		}
		if attempts > 1 {
			r.firstFailed++
			t.Logf("real node %d: %d attempts, connected after %v", i, attempts, took.Round(time.Microsecond))
		}
		time.Sleep(20 * time.Millisecond)
	}
	srv.mu.Lock()
	r.evicted, r.silent = srv.fsm.Evicted(), srv.fsm.EvictedSilent()
	srv.mu.Unlock()
	t.Logf("hello flood: %.0f connections/s, %d evicted, %d of them silent; of %d real nodes, %d failed their first attempt, %d did not connect within 1 s; load average %s",
		float64(dialed.Load())/time.Since(start).Seconds(), r.evicted, r.silent, tries, r.firstFailed, r.keptOut, measure.LoadAverage())
	return r
}

// TestHelloFlood: during a flood of connections that each send a HELLO and
// hold it open, from the real nodes' own address, at up to 8,000 a second
// from this process, every real node connects within a second (README,
// Hostile networks). How many first attempts fail is logged, not asserted:
// it depends on how long the node's goroutines wait for a CPU beside the
// flood's (0 to 3 of 20 in runs of this test on an idle two-core VM, more
// with other work in the process); the node reads a connection's first
// bytes when it accepts it (readEarly), so that waiting for its reader
// does not make a dialer whose HELLO is in look silent.
func TestHelloFlood(t *testing.T) {
	r := helloFlood(t, fsm.Config{ID: "mm-node"}, 20, 1500)
	least := uint64(500)
	if raceEnabled {
		least = 100
	}
	require.Greater(t, r.evicted, least, "the flood did not fill the slots and evict: the test measured nothing")
	require.Zero(t, r.keptOut, "real nodes kept out during the HELLO flood")
}
