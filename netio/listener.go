package netio

import (
	"errors"
	"log/slog"
	"net"
	"time"
)

// acceptLoop reports every accepted connection to the connection layer. The
// state machine decides whether to keep it (it refuses past its bound on
// handshaking connections) and how long its dialer may take to say which
// protocol it speaks (the handshake timeout); a refused connection is closed
// before any goroutine or buffer is spent on it.
func (n *Runtime) acceptLoop() {
	defer n.wg.Done()
	var backoff time.Duration
	for {
		nc, err := n.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// Out of file descriptors and the like: wait, but stop on Close.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			n.mu.Lock()
			n.logPeer(slog.LevelWarn, "accept failed", err, "retry_in", backoff)
			n.mu.Unlock()
			select {
			case <-time.After(backoff):
			case <-n.done:
				return
			}
			continue
		}
		backoff = 0
		n.mu.Lock()
		if n.closed {
			n.mu.Unlock()
			nc.Close()
			continue
		}
		c := n.newConn(nc)
		c.detect = n.cfg.TLS != nil
		if n.logging(slog.LevelDebug) {
			n.log.Debug("accepted", "conn", uint64(c.id), "remote", c.remote)
		}
		n.link.Incoming(n.now(), c.id, nc.RemoteAddr().String()) // fsm groups it into a source (fsm/source.go)
		c.run(true)
		n.settle()
		n.unlockInline() // what readEarly made due may go inline
	}
}
