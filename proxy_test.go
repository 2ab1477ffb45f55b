package masterless

import (
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"
)

// proxy is a raw TCP relay between a test's servers. It can stop forwarding
// without closing anything (a peer gone silent, no FIN) or cut every
// connection abruptly.
type proxy struct {
	ln     net.Listener
	target atomic.Pointer[string] // host:port (retarget)
	frozen atomic.Bool
	// Connections opened before the last blackhole drop what they read.
	holes atomic.Int64
	stop  chan struct{}

	mu    sync.Mutex
	conns []net.Conn
	wg    sync.WaitGroup
}

func newProxy(t testing.TB, targetInfo string) *proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	p := &proxy{ln: ln, stop: make(chan struct{})}
	p.retarget(targetInfo)
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(p.close)
	return p
}

func (p *proxy) info() string { return "tcp://" + p.ln.Addr().String() }

// retarget makes the proxy relay later connections to targetInfo
// (tcp://host:port); "" refuses them. A test that needs a server to
// advertise its proxy makes the proxy first, then the server, then points
// the proxy at it.
func (p *proxy) retarget(targetInfo string) {
	t := strings.TrimPrefix(targetInfo, "tcp://")
	p.target.Store(&t)
}

func (p *proxy) accept() {
	defer p.wg.Done()
	for {
		in, err := p.ln.Accept()
		if err != nil {
			return
		}
		target := *p.target.Load()
		if target == "" {
			in.Close()
			continue
		}
		out, err := net.Dial("tcp", target)
		if err != nil {
			in.Close()
			continue
		}
		p.mu.Lock()
		p.conns = append(p.conns, in, out)
		p.mu.Unlock()
		gen := p.holes.Load()
		p.wg.Add(2)
		go p.pipe(in, out, gen)
		go p.pipe(out, in, gen)
	}
}

func (p *proxy) pipe(from, to net.Conn, gen int64) {
	defer p.wg.Done()
	buf := make([]byte, 32<<10)
	for {
		n, err := from.Read(buf)
		if p.frozen.Load() {
			<-p.stop // silent: hold the bytes, close nothing
			return
		}
		if p.holes.Load() > gen && err == nil {
			continue // blackholed: swallow the bytes, close nothing
		}
		if n > 0 {
			if _, werr := to.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			if err == io.EOF {
				if tc, ok := to.(*net.TCPConn); ok {
					tc.CloseWrite()
					return
				}
			}
			to.Close()
			return
		}
	}
}

// relays reports whether the proxy joined a dialer whose local address is
// from with the target-side connection whose local address is to.
func (p *proxy) relays(from, to string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	for i := 0; i+1 < len(p.conns); i += 2 {
		if p.conns[i].RemoteAddr().String() == from && p.conns[i+1].LocalAddr().String() == to {
			return true
		}
	}
	return false
}

// freeze stops forwarding on every connection, present and future.
func (p *proxy) freeze() { p.frozen.Store(true) }

// blackhole makes every connection relayed so far swallow what it reads,
// without closing anything; later connections are relayed as usual.
func (p *proxy) blackhole() { p.holes.Add(1) }

// reset closes every relayed connection with a TCP reset. Every socket
// gets its zero linger before any closes: a relay goroutine closes the
// other side of a connection whose one side failed, and would otherwise
// send a FIN there.
func (p *proxy) reset() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		if tc, ok := c.(*net.TCPConn); ok {
			_ = tc.SetLinger(0) // close sends RST
		}
	}
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

// cut closes every relayed connection at once.
func (p *proxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

func (p *proxy) close() {
	p.ln.Close()
	close(p.stop)
	p.cut()
	p.wg.Wait()
}
