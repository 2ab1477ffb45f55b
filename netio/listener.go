package netio

import (
	"errors"
	"net"
	"time"

	"github.com/masterless-go/masterless/fsm"
	"github.com/masterless-go/masterless/wire"
)

// acceptLoop hands every accepted connection to a detect goroutine, which
// tells its protocol and then hands it to the fsm, which decides whether to
// keep it (it refuses past its bound on handshaking connections).
func (n *Node) acceptLoop() {
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
			n.log.Warn("accept failed", "err", err, "retry_in", backoff)
			select {
			case <-time.After(backoff):
			case <-n.done:
				return
			}
			continue
		}
		backoff = 0
		n.mu.Lock()
		if n.closed || len(n.detecting) >= n.fcfg.MaxHandshakes {
			n.mu.Unlock()
			nc.Close()
			continue
		}
		n.detecting[nc] = struct{}{}
		n.wg.Add(1)
		go n.detect(nc)
		n.mu.Unlock()
	}
}

// maxDetectBytes bounds what detect reads before it decides.
const maxDetectBytes = 128

// detect reads an accepted connection's first bytes, before writing
// anything, and tells from them whether the dialer speaks v1 or masterless
// 0.4.1 (wire.DetectLegacy; a v1 dialer writes its preamble unprompted, a
// 0.4.1 dialer its JSON HELLO). It waits at most the handshake timeout and
// reads at most maxDetectBytes; the bytes read go to the connection's reader.
// Only then is the connection registered, the v1 preamble queued (for v1),
// and Accepted stepped.
func (n *Node) detect(nc net.Conn) {
	defer n.wg.Done()
	buf := make([]byte, maxDetectBytes)
	got, legacy, decided := 0, false, false
	_ = nc.SetReadDeadline(time.Now().Add(n.fcfg.HandshakeTimeout))
	var err error
	for !decided && err == nil && got < len(buf) {
		var k int
		k, err = nc.Read(buf[got:])
		got += k
		legacy, decided = wire.DetectLegacy(buf[:got])
	}
	_ = nc.SetReadDeadline(time.Time{})
	n.mu.Lock()
	defer n.mu.Unlock()
	delete(n.detecting, nc)
	if n.closed || !decided {
		n.log.Debug("accepted connection closed before its protocol was known", "remote", nc.RemoteAddr().String(), "read", got, "err", err)
		nc.Close()
		return
	}
	c := n.newConn(nc, legacy, buf[:got])
	if legacy {
		n.log.Debug("accepted", "conn", uint64(c.id), "remote", c.remote, "protocol", "0.4.1")
	} else {
		n.log.Debug("accepted", "conn", uint64(c.id), "remote", c.remote)
	}
	n.step(fsm.Accepted{Conn: c.id, Legacy: legacy}, nil)
}
