package masterless

import (
	"context"
	"crypto/ed25519"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/masterless-go/masterless/netio"
	"github.com/masterless-go/masterless/wire"
)

// Benchmarks over real loopback TCP. Each masterless benchmark has a "bare"
// twin: the same length-prefixed frames over a raw net.Conn pair, with the
// same buffering (a writer goroutine flushing a per-connection buffer, a
// reader parsing many frames per 64 KiB read) but no protocol, no fsm and no
// dispatcher goroutine: the handler runs on the reader. Run both in one
// binary so the ratio comes from one run:
//
//	go test -run '^$' -bench . -benchtime 2s

const benchPayload = 32

func benchServer(b *testing.B, id string, onMsg func(s *Server, from string, p []byte), opts ...Option) *Server {
	b.Helper()
	s, err := New(id, append([]Option{WithLogger(slog.New(slog.DiscardHandler)), WithEvents(Events{Message: onMsg})}, opts...)...)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	return s
}

func benchConnect(b *testing.B, from, to *Server) {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := from.Connect(ctx, to.Info()); err != nil {
		b.Fatal(err)
	}
	for len(to.Connections()) == 0 || !contains(to.Connections(), from.ID()) {
		time.Sleep(time.Millisecond)
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// counter closes done when the number of messages received reaches want,
// which is set before any is sent.
type counter struct {
	n, want atomic.Int64
	done    chan struct{}
}

func newCounter() *counter { return &counter{done: make(chan struct{})} }

func (c *counter) hit() {
	if c.n.Add(1) == c.want.Load() {
		close(c.done)
	}
}

func report(b *testing.B, msgs int, el time.Duration) {
	b.ReportMetric(float64(msgs)/el.Seconds(), "msgs/s")
}

// --- ping-pong: one message in flight, answered from the handler ---

func BenchmarkPingPong(b *testing.B) {
	for _, v := range benchVariants {
		b.Run(v.name, func(b *testing.B) { benchPingPong(b, v) })
	}
}

func benchPingPong(b *testing.B, v benchVariant) {
	if !v.bare {
		var n atomic.Int64
		done := make(chan struct{})
		payload := make([]byte, benchPayload)
		var left int64
		echo := func(s *Server, from string, p []byte) { s.Send(from, p) }
		count := func(s *Server, from string, p []byte) {
			if n.Add(1) == left {
				close(done)
				return
			}
			s.Send(from, p)
		}
		a := benchServer(b, "a", count, v.opts(b, "a")...)
		bb := benchServer(b, "b", echo, v.opts(b, "b")...)
		benchConnect(b, a, bb)
		left = int64(b.N)
		b.ReportAllocs()
		b.ResetTimer()
		start := time.Now()
		a.Send("b", payload)
		<-done
		report(b, b.N, time.Since(start))
		return
	}
	{
		var n atomic.Int64
		done := make(chan struct{})
		left := int64(b.N)
		var x, y *bareConn
		x, y = v.pair(b,
			func(p []byte) {
				if n.Add(1) == left {
					close(done)
					return
				}
				x.reply(p)
			},
			func(p []byte) { y.reply(p) })
		b.ReportAllocs()
		b.ResetTimer()
		start := time.Now()
		x.send(make([]byte, benchPayload))
		<-done
		report(b, b.N, time.Since(start))
	}
}

// --- one-way streaming of 32-byte payloads ---

func BenchmarkOneWay(b *testing.B) {
	for _, v := range benchVariants {
		b.Run(v.name, func(b *testing.B) { benchOneWay(b, v) })
	}
}

func benchOneWay(b *testing.B, v benchVariant) {
	if !v.bare {
		cnt := newCounter()
		sink := func(*Server, string, []byte) { cnt.hit() }
		a := benchServer(b, "a", nil, v.opts(b, "a")...)
		bb := benchServer(b, "b", sink, v.opts(b, "b")...)
		benchConnect(b, a, bb)
		cnt.want.Store(int64(b.N))
		payload := make([]byte, benchPayload)
		b.ReportAllocs()
		b.ResetTimer()
		start := time.Now()
		ctx := context.Background()
		for range b.N { // a producer: it waits for credit, as a stream must
			if err := a.SendContext(ctx, "b", payload); err != nil {
				b.Fatal(err)
			}
		}
		<-cnt.done
		report(b, b.N, time.Since(start))
		return
	}
	cnt := newCounter()
	cnt.want.Store(int64(b.N))
	x, _ := v.pair(b, nil, func([]byte) { cnt.hit() })
	payload := make([]byte, benchPayload)
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	for range b.N {
		x.send(payload)
	}
	<-cnt.done
	report(b, b.N, time.Since(start))
}

// --- SendMany to 16 peers: msgs/s counts deliveries ---

const fanout = 16

func BenchmarkSendMany16(b *testing.B) { benchSendMany(b, benchPayload) }

// BenchmarkSendMany16Large is BenchmarkSendMany16 with 16 KiB payloads, past
// the size from which a SendMany keeps one copy for all its peers' streams.
func BenchmarkSendMany16Large(b *testing.B) { benchSendMany(b, 16<<10) }

func benchSendMany(b *testing.B, size int) {
	b.Run("masterless", func(b *testing.B) {
		cnt := newCounter()
		sink := func(*Server, string, []byte) { cnt.hit() }
		hub := benchServer(b, "hub", nil)
		var ids []string
		for i := range fanout {
			leaf := benchServer(b, fmt.Sprintf("leaf%02d", i), sink)
			benchConnect(b, leaf, hub)
			ids = append(ids, leaf.ID())
		}
		cnt.want.Store(int64(b.N) * fanout)
		payload := make([]byte, size)
		b.ReportAllocs()
		b.ResetTimer()
		start := time.Now()
		ctx := context.Background()
		for range b.N { // a producer: it waits for credit, as a stream must
			if k, err := hub.SendManyContext(ctx, ids, payload); k != fanout || err != nil {
				b.Fatal(k, err)
			}
		}
		<-cnt.done
		report(b, b.N*fanout, time.Since(start))
	})
	b.Run("bare", func(b *testing.B) {
		cnt := newCounter()
		cnt.want.Store(int64(b.N) * fanout)
		sink := func([]byte) { cnt.hit() }
		var hub []*bareConn
		for range fanout {
			x, _ := barePair(b, nil, sink)
			hub = append(hub, x)
		}
		payload := make([]byte, size)
		var frame []byte
		b.ReportAllocs()
		b.ResetTimer()
		start := time.Now()
		for range b.N {
			frame = wire.AppendData(frame[:0], payload)
			for _, x := range hub {
				x.sendEncoded(frame)
			}
		}
		<-cnt.done
		report(b, b.N*fanout, time.Since(start))
	})
}

// --- the bare-TCP baseline ---

// bareConn is the baseline: frames over a raw TCP connection with a writer
// goroutine flushing a buffer and a reader parsing a 64 KiB read at a time,
// calling the handler inline with a copy of each payload.
//
// Its output buffer has masterless's bound (netio.DefaultSendBuffer): a
// producer (send, sendEncoded) waits while more than that is waiting, as
// SendContext waits for room, so that neither side measures how fast memory
// fills. Without the bound a one-way producer outruns the socket and grows
// the buffer to the whole run (hundreds of MiB), and the figure is memcpy,
// not TCP. A reply from the handler (reply) never waits, as masterless
// never refuses one: the handler runs on the reader, and a reader waiting
// on its own peer's reader is the wedge of issue 9.
type bareConn struct {
	nc      net.Conn
	mu      sync.Mutex
	cond    sync.Cond // the writer waits for data
	space   sync.Cond // producers wait for room
	waiting int       // producers waiting on space
	out     []byte
	idle    bool
	dead    bool
	wg      sync.WaitGroup
	codec   wire.Binary
}

// bareBound is the bare output buffer's bound: masterless's default.
const bareBound = netio.DefaultSendBuffer

func barePair(b *testing.B, onX, onY func([]byte)) (x, y *bareConn) {
	b.Helper()
	return wrappedPair(b, onX, onY, nil)
}

// wrappedPair is barePair over the connections wrap returns for the TCP
// pair (dialer, acceptor), or the TCP pair itself when wrap is nil.
func wrappedPair(b *testing.B, onX, onY func([]byte), wrap func(d, a net.Conn) (net.Conn, net.Conn)) (x, y *bareConn) {
	b.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		accepted <- c
	}()
	d, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	a := <-accepted
	d.(*net.TCPConn).SetNoDelay(true)
	a.(*net.TCPConn).SetNoDelay(true)
	if wrap != nil {
		d, a = wrap(d, a)
	}
	x, y = newBare(d, onX), newBare(a, onY)
	b.Cleanup(func() { x.close(); y.close() })
	return x, y
}

func newBare(nc net.Conn, on func([]byte)) *bareConn {
	c := &bareConn{nc: nc}
	c.cond.L = &c.mu
	c.space.L = &c.mu
	c.wg.Add(2)
	go c.writeLoop()
	go c.readLoop(on)
	return c
}

// send is a producer's send: it waits for room, then appends a frame.
func (c *bareConn) send(p []byte) {
	c.mu.Lock()
	c.waitRoom()
	c.out = wire.AppendData(c.out, p)
	c.wake()
	c.mu.Unlock()
}

// sendEncoded is send of a frame encoded once for many connections.
func (c *bareConn) sendEncoded(f []byte) {
	c.mu.Lock()
	c.waitRoom()
	c.out = append(c.out, f...)
	c.wake()
	c.mu.Unlock()
}

// reply is the handler's send: it never waits (see bareConn).
func (c *bareConn) reply(p []byte) {
	c.mu.Lock()
	c.out = wire.AppendData(c.out, p)
	c.wake()
	c.mu.Unlock()
}

// waitRoom waits, under c.mu, while the output buffer is over the bound.
func (c *bareConn) waitRoom() {
	for len(c.out) > bareBound && !c.dead {
		c.waiting++
		c.space.Wait()
		c.waiting--
	}
}

// wake signals an idle writer (under c.mu).
func (c *bareConn) wake() {
	if c.idle {
		c.idle = false
		c.cond.Signal()
	}
}

func (c *bareConn) writeLoop() {
	defer c.wg.Done()
	var spare []byte
	c.mu.Lock()
	for {
		for len(c.out) == 0 && !c.dead {
			c.idle = true
			c.cond.Wait()
		}
		if c.dead {
			c.mu.Unlock()
			return
		}
		buf := c.out
		c.out = spare[:0]
		c.mu.Unlock()
		if _, err := c.nc.Write(buf); err != nil {
			return
		}
		spare = buf
		c.mu.Lock()
		if c.waiting > 0 {
			c.space.Broadcast()
		}
	}
}

func (c *bareConn) readLoop(on func([]byte)) {
	defer c.wg.Done()
	buf := make([]byte, 64<<10)
	start, end := 0, 0
	for {
		if start == end {
			start, end = 0, 0
		}
		n, err := c.nc.Read(buf[end:])
		end += n
		var slab []byte
		for {
			// The parser masterless's reader uses for DATA (wire.Binary.ParseData),
			// so that the ratio measures the library, not a faster parser.
			payload, k, ok := c.codec.ParseData(buf[start:end])
			if !ok {
				break
			}
			start += k
			if on != nil {
				if slab == nil {
					slab = make([]byte, 0, end-start+k)
				}
				s := len(slab)
				slab = append(slab, payload...)
				on(slab[s:len(slab):len(slab)])
			}
		}
		if start < end {
			end = copy(buf, buf[start:end])
			start = 0
		}
		if err != nil {
			return
		}
	}
}

func (c *bareConn) close() {
	c.mu.Lock()
	c.dead = true
	c.cond.Signal()
	c.space.Broadcast()
	c.mu.Unlock()
	c.nc.Close()
	c.wg.Wait()
}

// --- two-way echo: both sides stream 32-byte messages and reply to each
// from the handler; msgs/s counts every delivery, originals and replies ---

func BenchmarkEcho(b *testing.B) {
	b.Run("masterless", func(b *testing.B) {
		cnt := newCounter()
		handler := func(s *Server, from string, p []byte) {
			if p[0] == 'o' {
				r := append([]byte(nil), p...)
				r[0] = 'r'
				if !s.Send(from, r) {
					b.Error("a reply was refused")
				}
			}
			cnt.hit()
		}
		x := benchServer(b, "x", handler)
		y := benchServer(b, "y", handler)
		benchConnect(b, x, y)
		cnt.want.Store(4 * int64(b.N))
		payload := make([]byte, benchPayload)
		payload[0] = 'o'
		b.ReportAllocs()
		b.ResetTimer()
		start := time.Now()
		var wg sync.WaitGroup
		for _, pair := range [][2]*Server{{x, y}, {y, x}} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				ctx := context.Background()
				for range b.N {
					if err := pair[0].SendContext(ctx, pair[1].ID(), payload); err != nil {
						b.Error(err)
						return
					}
				}
			}()
		}
		wg.Wait()
		<-cnt.done
		report(b, 4*b.N, time.Since(start))
	})
	b.Run("bare", func(b *testing.B) {
		cnt := newCounter()
		cnt.want.Store(4 * int64(b.N))
		var x, y *bareConn
		echo := func(to **bareConn) func([]byte) {
			return func(p []byte) {
				if p[0] == 'o' {
					r := append([]byte(nil), p...)
					r[0] = 'r'
					(*to).reply(r)
				}
				cnt.hit()
			}
		}
		x, y = barePair(b, echo(&x), echo(&y))
		payload := make([]byte, benchPayload)
		payload[0] = 'o'
		b.ReportAllocs()
		b.ResetTimer()
		start := time.Now()
		var wg sync.WaitGroup
		for _, c := range []*bareConn{x, y} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range b.N {
					c.send(payload)
				}
			}()
		}
		wg.Wait()
		<-cnt.done
		report(b, 4*b.N, time.Since(start))
	})
}

// --- TLS: the same benchmarks with identities on both nodes, beside bare
// crypto/tls with the same framing and buffering ---

// benchVariant is one column of the ping-pong and one-way benchmarks.
type benchVariant struct {
	name string
	bare bool // the baseline, no masterless
	tls  bool
}

// benchVariants run in this order in every round, so that a round measures
// each variant once, interleaved with the others.
var benchVariants = []benchVariant{
	{name: "masterless"}, {name: "bare", bare: true},
	{name: "masterless-tls", tls: true}, {name: "bare-tls", bare: true, tls: true},
}

// benchTrust holds the identities of the benchmark nodes, made once.
var benchTrust = sync.OnceValues(func() (map[string]*Identity, *Trust) {
	ids := map[string]*Identity{}
	keys := map[string]ed25519.PublicKey{}
	for _, id := range []string{"a", "b"} {
		i, err := NewIdentity(id)
		if err != nil {
			panic(err)
		}
		ids[id], keys[id] = i, i.PublicKey()
	}
	return ids, TrustKeys(keys)
})

// opts returns the options of node id for v: an identity and the trust.
func (v benchVariant) opts(b *testing.B, id string) []Option {
	if !v.tls {
		return nil
	}
	ids, trust := benchTrust()
	return []Option{WithIdentity(ids[id]), WithTrust(trust)}
}

// pair returns the baseline connection pair for v: bare TCP, or TLS 1.3
// with the nodes' certificates and the same configuration as masterless.
func (v benchVariant) pair(b *testing.B, onX, onY func([]byte)) (x, y *bareConn) {
	if !v.tls {
		return barePair(b, onX, onY)
	}
	ids, trust := benchTrust()
	return wrappedPair(b, onX, onY, func(d, a net.Conn) (net.Conn, net.Conn) {
		tc, ts := tls.Client(d, tlsConfig(ids["a"], trust)), tls.Server(a, tlsConfig(ids["b"], trust))
		errc := make(chan error, 1)
		go func() { errc <- ts.Handshake() }()
		if err := tc.Handshake(); err != nil {
			b.Fatal(err)
		}
		if err := <-errc; err != nil {
			b.Fatal(err)
		}
		return tc, ts
	})
}

// --- churn: Connect, one message, Disconnect, until both ends have seen the
// session end; cycles/s. The bare twin dials, writes one frame that the
// acceptor reads and answers with one frame, and closes both ends ---

func reportCycles(b *testing.B, n int, el time.Duration) {
	b.ReportMetric(float64(n)/el.Seconds(), "cycles/s")
}

func BenchmarkChurn(b *testing.B) {
	b.Run("masterless", func(b *testing.B) {
		got := make(chan struct{}, 1)
		goneA := make(chan struct{}, 1)
		goneB := make(chan struct{}, 1)
		a, err := New("a", WithLogger(slog.New(slog.DiscardHandler)), WithEvents(Events{
			Disconnect: func(*Server, string, error) { goneA <- struct{}{} },
		}))
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { a.Close() })
		bb, err := New("b", WithLogger(slog.New(slog.DiscardHandler)), WithEvents(Events{
			Message:    func(*Server, string, []byte) { got <- struct{}{} },
			Disconnect: func(*Server, string, error) { goneB <- struct{}{} },
		}))
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { bb.Close() })
		info := bb.Info()
		payload := make([]byte, benchPayload)
		wait := func(c chan struct{}, what string) {
			select {
			case <-c:
			case <-time.After(10 * time.Second):
				b.Fatalf("no %s within 10s", what)
			}
		}
		b.ReportAllocs()
		b.ResetTimer()
		start := time.Now()
		for range b.N {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			id, err := a.Connect(ctx, info)
			cancel()
			if err != nil {
				b.Fatal(err)
			}
			if !a.Send(id, payload) {
				b.Fatal("Send refused")
			}
			wait(got, "delivery")
			if err := a.Disconnect(id); err != nil {
				b.Fatal(err)
			}
			wait(goneA, "Disconnect event at the dialer")
			wait(goneB, "Disconnect event at the acceptor")
		}
		reportCycles(b, b.N, time.Since(start))
		if n := len(a.Connections()) + len(bb.Connections()); n != 0 {
			b.Fatalf("%d sessions left after the last cycle", n)
		}
	})
	b.Run("bare", func(b *testing.B) {
		// The socket options of netio: Go's default TCP_NODELAY, no
		// keep-alive probes (netio/config.go).
		lc := net.ListenConfig{KeepAlive: -1}
		ln, err := lc.Listen(context.Background(), "tcp", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		d := net.Dialer{KeepAlive: -1}
		var wg sync.WaitGroup
		b.Cleanup(func() { ln.Close(); wg.Wait() })
		wg.Add(1)
		go func() { // the acceptor: read one frame, answer it, close
			defer wg.Done()
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				if p := bareReadFrame(c); p != nil {
					c.Write(wire.AppendData(nil, p))
				}
				c.Close()
			}
		}()
		addr := ln.Addr().String()
		frame := wire.AppendData(nil, make([]byte, benchPayload))
		b.ReportAllocs()
		b.ResetTimer()
		start := time.Now()
		for range b.N {
			c, err := d.Dial("tcp", addr)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := c.Write(frame); err != nil {
				b.Fatal(err)
			}
			if p := bareReadFrame(c); len(p) != benchPayload {
				b.Fatalf("reply of %d bytes", len(p))
			}
			var one [1]byte
			if n, _ := c.Read(one[:]); n != 0 { // wait for the acceptor's close
				b.Fatal("bytes after the reply")
			}
			c.Close()
		}
		reportCycles(b, b.N, time.Since(start))
	})
}

// bareReadFrame reads from c until one whole data frame is in and returns
// a copy of its payload, or nil on an error or a malformed frame.
func bareReadFrame(c net.Conn) []byte {
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	defer c.SetReadDeadline(time.Time{})
	var codec wire.Binary
	buf := make([]byte, 4<<10)
	end := 0
	for {
		n, err := c.Read(buf[end:])
		end += n
		f, k, perr := codec.ParseFrame(buf[:end])
		if perr != nil {
			return nil
		}
		if k > 0 {
			return append([]byte{}, f.Payload...)
		}
		if err != nil || end == len(buf) {
			return nil
		}
	}
}
