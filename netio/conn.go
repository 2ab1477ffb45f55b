package netio

import (
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/masterless-go/masterless/fsm"
	"github.com/masterless-go/masterless/wire"
)

// conn is one TCP connection: a reader goroutine that parses frames and steps
// the fsm, and a writer goroutine that flushes the output buffer.
type conn struct {
	n      *Node
	id     fsm.ConnID
	nc     net.Conn
	remote string
	// legacy is the connection's codec when it speaks masterless 0.4.1 (one
	// per connection: it tracks the handshake); nil for v1, which uses n.codec.
	legacy *wire.Legacy
	// initial holds the bytes read before the connection was registered (an
	// accepted connection's first bytes, read to tell its protocol).
	initial []byte

	// closing is set (under n.mu) once the fsm closed this connection or it
	// failed: the reader then discards what still arrives.
	closing atomic.Bool

	wmu sync.Mutex
	// data wakes the writer: bytes to write, or a state change.
	data sync.Cond
	// space wakes senders waiting for the buffer to drain below the bound.
	space   sync.Cond
	out     []byte // bytes waiting for the writer
	spare   []byte // the writer's other buffer, swapped with out
	state   connState
	idle    bool // the writer waits on data
	waiting int  // senders waiting on space

	writerDone chan struct{}
}

type connState uint8

const (
	connOpen     connState = iota
	connFlushing           // fsm closed it: flush, half-close, then linger
	connAborted            // failed: stop writing now
)

// newConn registers nc, queues the preamble (v1 only: 0.4.1 has none) and
// starts its goroutines. legacy selects masterless 0.4.1; initial are bytes
// already read from nc. Called with n.mu held; the caller then steps Accepted
// or Dialed.
func (n *Node) newConn(nc net.Conn, legacy bool, initial []byte) *conn {
	n.nextConn++
	c := &conn{n: n, id: n.nextConn, nc: nc, remote: nc.RemoteAddr().String(), writerDone: make(chan struct{}), initial: initial}
	c.data.L = &c.wmu
	c.space.L = &c.wmu
	if legacy {
		c.legacy = &wire.Legacy{MaxFrameSize: n.cfg.MaxFrameSize}
		c.out = make([]byte, 0, 4096)
	} else {
		c.out = n.codec.AppendPreamble(make([]byte, 0, 4096))
	}
	if tc, ok := nc.(*net.TCPConn); ok {
		_ = tc.SetNoDelay(true)
	}
	n.conns[c.id] = c
	n.wg.Add(2)
	go c.writeLoop()
	go c.readLoop()
	return c
}

// writeFrame appends f to the output buffer (called under n.mu).
func (c *conn) writeFrame(f *wire.Frame) {
	c.wmu.Lock()
	if c.state == connOpen {
		if c.legacy != nil {
			var err error
			if c.out, err = c.legacy.AppendFrame(c.out, f); err != nil {
				c.n.log.Error("bug: fsm asked to write a frame the 0.4.1 codec refuses", "frame", f.String(), "err", err)
			}
		} else if f.Type == wire.Data {
			c.out = wire.AppendData(c.out, f.Payload)
		} else {
			var err error
			if c.out, err = c.n.codec.AppendFrame(c.out, f); err != nil {
				c.n.log.Error("bug: fsm asked to write a frame the codec refuses", "frame", f.String(), "err", err)
			}
		}
		c.wakeWriter()
	}
	c.checkFull()
	c.wmu.Unlock()
}

// writeEncoded appends an already encoded frame (SendMany's shared DATA).
func (c *conn) writeEncoded(b []byte) {
	c.wmu.Lock()
	if c.state == connOpen {
		c.out = append(c.out, b...)
		c.wakeWriter()
	}
	c.checkFull()
	c.wmu.Unlock()
}

func (c *conn) wakeWriter() {
	if c.idle {
		c.idle = false
		c.data.Signal()
	}
}

// checkFull records c for the sender to wait on once it drops n.mu.
func (c *conn) checkFull() {
	if len(c.out) > c.n.cfg.SendBuffer && c.state == connOpen {
		c.n.full = append(c.n.full, c)
	}
}

// waitSpace blocks while c's output buffer is over the send bound. The wait
// ends when the writer drains it, or when the connection closes; a peer that
// reads nothing makes the write fail after the peer timeout, which closes the
// connection, so the wait is bounded by the peer timeout.
func (c *conn) waitSpace() {
	c.wmu.Lock()
	for len(c.out) > c.n.cfg.SendBuffer && c.state == connOpen {
		c.waiting++
		c.space.Wait()
		c.waiting--
	}
	c.wmu.Unlock()
}

// closeGraceful carries out ActClose (called under n.mu).
func (c *conn) closeGraceful() {
	c.closing.Store(true)
	c.wmu.Lock()
	if c.state == connOpen {
		c.state = connFlushing
		c.idle = false
		c.data.Signal()
		c.space.Broadcast()
	}
	c.wmu.Unlock()
}

// abort stops the writer now and unblocks both goroutines' syscalls.
func (c *conn) abort() {
	c.closing.Store(true)
	c.wmu.Lock()
	c.state = connAborted
	c.out = nil
	c.idle = false
	c.data.Signal()
	c.space.Broadcast()
	c.wmu.Unlock()
	_ = c.nc.SetDeadline(time.Now())
}

// fail reports that the connection broke (EOF, reset, write error). Unless
// the fsm already closed it, the fsm hears ConnClosed.
func (c *conn) fail(err error) {
	n := c.n
	n.mu.Lock()
	if n.conns[c.id] == c {
		delete(n.conns, c.id)
		c.closing.Store(true)
		n.log.Debug("connection lost", "conn", uint64(c.id), "remote", c.remote, "reason", errText(err))
		n.step(fsm.ConnClosed{Conn: c.id, Err: err}, nil)
	}
	n.mu.Unlock()
}

// linger bounds how long a closing connection waits for its BYE to drain and
// for the peer's FIN.
func (c *conn) linger() time.Duration { return min(c.n.fcfg.HandshakeTimeout, maxLinger) }

// writeLoop flushes the output buffer: each pass writes everything appended
// since the previous one in a single syscall.
func (c *conn) writeLoop() {
	defer c.n.wg.Done()
	defer close(c.writerDone)
	c.wmu.Lock()
	for {
		for len(c.out) == 0 && c.state == connOpen {
			c.idle = true
			c.data.Wait()
		}
		if c.state == connAborted {
			c.wmu.Unlock()
			return
		}
		if len(c.out) == 0 { // flushing, and everything is out
			c.wmu.Unlock()
			if tc, ok := c.nc.(*net.TCPConn); ok {
				_ = tc.CloseWrite()
			}
			_ = c.nc.SetReadDeadline(time.Now().Add(c.linger()))
			return
		}
		buf := c.out
		c.out, c.spare = c.spare[:0], nil
		timeout := c.n.fcfg.PeerTimeout
		if c.state == connFlushing {
			timeout = c.linger()
		}
		c.wmu.Unlock()

		_ = c.nc.SetWriteDeadline(time.Now().Add(timeout))
		_, err := c.nc.Write(buf)

		c.wmu.Lock()
		if cap(buf) <= 2*c.n.cfg.SendBuffer {
			c.spare = buf[:0]
		}
		if c.waiting > 0 {
			c.space.Broadcast()
		}
		if err != nil {
			c.wmu.Unlock()
			c.fail(err)
			c.abort()
			return
		}
	}
}
