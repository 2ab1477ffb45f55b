package netio

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/masterless-go/masterless/fsm"
	"github.com/masterless-go/masterless/wire"
)

// conn is one TCP connection: a reader goroutine that hands what it reads to
// the connection layer, and, once a write cannot be made inline (inline.go),
// a writer goroutine that flushes the output buffer. The bytes themselves
// (framing, parsing, encoding) are the layer's.
type conn struct {
	n      *Runtime
	id     fsm.ConnID
	nc     net.Conn // the TCP connection: deadlines, addresses, half-close, close
	remote string
	// sc is the TLS session over nc, whose plaintext the layer reads and
	// writes; nil on a plaintext connection. A dial sets it before the
	// goroutines start; on an accepted connection the reader sets it, under
	// wmu, once the handshake is done (secure).
	sc *tls.Conn
	// detect: accepted by a node with TLS; the reader reads the first byte
	// itself to tell a TLS dialer from a plaintext one (secure).
	detect bool
	// steady: the deadlines detection set on the socket are cleared (or
	// there were none), so a write deadline the writer sets stays until it
	// sets another, or until Close or an abort sets an earlier one.
	// writeBy is the one it set last once steady (zero: none yet); only
	// the writer reads or writes it (writeOut).
	steady  atomic.Bool
	writeBy time.Time

	wmu sync.Mutex
	// data wakes the writer (bytes to write, or a state change), and a
	// reader's end waiting for an inline write (waitWriter); wake and
	// abort broadcast on it for that reason.
	data sync.Cond
	// space wakes senders waiting for the buffer to drain below the bound.
	space sync.Cond
	out   []byte // bytes waiting for the writer; allocated on demand
	spare []byte // the writer's other buffer, swapped with out
	// lastBatch is how many bytes the writer's last write carried, and
	// bigAt when it last carried idleKeep or more: once writes have been
	// small for idleTrimAfter, an idle writer gives its big buffers back.
	lastBatch int
	bigAt     time.Time
	state     connState
	wrote     bool // anything was ever written: a close lingers for it (core.go)
	// overflowed: the output buffer passed outputBound; set under n.mu.
	overflowed bool
	// gated: a 0.4.1 session whose output buffer passed the send bound;
	// sends to it wait before they add anything (waitGates). Under n.mu.
	gated   bool
	lingers bool // closed gracefully, counted in Runtime.lingering until its reader ends
	// idle: no writer is writing, nor about to: the writer waits on data,
	// or there is none. Only the writer sets it, as it parks (or ends), and
	// it is cleared by a kick and by the writer as it leaves its wait,
	// however woken: inline writes are made only while it is set, so that
	// no two writes are ever in the socket at once (inline.go).
	idle bool
	// writer says whether c has a writer goroutine (writerState);
	// writerAt is when it last wrote or started, and retire tells a parked
	// one that has not written for writerRetireAfter to end (inline.go).
	writer   writerState
	writerAt time.Duration
	retire   bool
	// inlined: out holds bytes that the goroutine whose step queued them
	// writes itself once it drops the core lock (inline.go), so the writer
	// is not woken (or started) for them; inflight: that write is in its
	// system call, and the writer must not write meanwhile. lastWrite is
	// when something was last written, inline or by the writer (since
	// Runtime.start). raw is the socket for the non-blocking write, nil
	// where there is none. inflightWaiters counts the goroutines waiting
	// for that write to return (the reader's end, waitWriter): the write's
	// end wakes them, and no one else.
	inlined         bool
	inflight        bool
	inflightWaiters int
	lastWrite       time.Duration
	// answering: bytes were read since the last write (inline.go,
	// inlineFor: the Send of an answer goes inline however recent that
	// write was).
	answering bool
	lastPaced time.Duration // when the protocol's own bytes were last written inline
	raw       syscall.RawConn
	// laneWork: the lane of this session has messages for the writer to
	// admit (lane.go); lane is that lane, nil if none.
	laneWork bool
	lane     *lane
	waiting  int // senders waiting on space

	writerDone chan struct{} // closed when the writer started last ends

	// Bytes read from and written to the socket, for Stats.
	bytesIn, bytesOut atomic.Uint64
}

// writerState is whether a connection has a writer goroutine. A
// connection starts without one: its first handshake frames, heartbeats,
// occasional acknowledgements and quiet sends are written inline by the
// goroutine whose step made them (inline.go), so an idle connection costs
// one goroutine, its reader. The writer starts at the first write that is
// not made inline (a stream of sends, a producer's lane, the handshake's
// frames a round trip after the first, bytes the socket did not take,
// TLS), and ends once it has had nothing to write for writerRetireAfter,
// when an inline write finds it parked (a heartbeat, at the latest),
// giving back its stack and its buffers; the next write not made inline
// starts another. A TLS connection's writes are never inline, so its
// writer, once started, stays.
type writerState uint8

const (
	writerNone    writerState = iota // none yet; one starts when needed
	writerRunning                    // started; it ends with the connection, or when idle (writerNone again)
	writerNever                      // none, and none will start: the connection is ending
)

// wakeUp is what a kick asks of the goroutine that made it, once it has
// released wmu (wake).
type wakeUp uint8

const (
	wakeNone   wakeUp = iota
	wakeParked        // wake the parked writer (a broadcast on data: wake)
	wakeStart         // start the writer
)

// kick tells c's writer that there is work for it, starting it if c has
// none yet, and returns what the caller does once it releases wmu (called
// under wmu). A connection that is aborted gets no writer: nothing is
// written after an abort.
func (c *conn) kick() wakeUp {
	if !c.idle {
		return wakeNone
	}
	switch c.writer {
	case writerRunning:
		c.idle = false
		return wakeParked
	case writerNone:
		if c.state == connAborted {
			return wakeNone
		}
		c.writer, c.idle, c.retire = writerRunning, false, false
		c.writerDone = make(chan struct{})
		return wakeStart
	}
	return wakeNone
}

// wake carries out what kick returned (without wmu). The reader holds its
// count in n.wg until the writer it may wait for has ended (waitWriter), so
// the count is positive when a writer is added to it.
//
// A broadcast, not a signal: c.data also has a reader's end waiting on it
// for an inline write (waitWriter), and a signal that woke that instead
// would leave the writer parked, marked not idle, so that no later kick
// wakes it. Since waitWriter's fix the two no longer wait together (before
// it, one run of a black-box audit's test hung in Close, its reader in
// waitWriter and its writer parked); this keeps any such wait from
// swallowing the writer's wake-up.
func (c *conn) wake(w wakeUp) {
	switch w {
	case wakeParked:
		c.data.Broadcast()
	case wakeStart:
		c.n.writersStarted.Add(1)
		c.n.wg.Add(1)
		go c.writeLoop()
	}
}

// waitWriter waits until nothing writes on c's socket any more, before the
// reader closes it: an inline write in its system call has returned, and
// the writer, if one started, has ended; none starts after this.
//
// It waits for the inline write first and looks for a writer after: the
// write's end may start one (a goodbye queued behind it), which must then
// be waited for, not marked away (a review found the writer then writing
// to the socket the reader had closed, after the reader's count in n.wg
// was gone: TestReaderWaitsForWriterStartedByInlineWrite).
func (c *conn) waitWriter() {
	c.wmu.Lock()
	for c.writer == writerNone && c.inflight {
		c.inflightWaiters++
		c.data.Wait() // flushInline broadcasts when it ends
		c.inflightWaiters--
	}
	running := c.writer == writerRunning // a writer waits for the inline write itself
	done := c.writerDone
	if !running {
		c.writer = writerNever
	}
	c.wmu.Unlock()
	if running {
		<-done
	}
}

type connState uint8

const (
	connOpen     connState = iota
	connFlushing           // the layer closed it: flush, half-close, then linger
	connAborted            // failed: stop writing now
)

// newConn registers nc under a fresh id (called with n.mu held). The caller
// reports it to the layer, then calls run.
func (n *Runtime) newConn(nc net.Conn) *conn {
	n.nextConn++
	c := &conn{n: n, id: n.nextConn, nc: nc, remote: nc.RemoteAddr().String(), idle: true}
	if tc, ok := nc.(*net.TCPConn); ok {
		c.raw, _ = tc.SyscallConn()
	}
	c.data.L = &c.wmu
	c.space.L = &c.wmu
	n.conns[c.id] = c
	return c
}

// run starts c's reader if the layer kept the connection, or closes the
// socket at once if it refused it (called with n.mu held): a refused
// connection costs no goroutine. The writer starts when it is needed (kick).
func (c *conn) run(accepted bool) {
	n := c.n
	if !n.link.Open(c.id) {
		// No reader will run, so none will wait for a writer or give back
		// the lingering close counted for it: an inline write already
		// registered (a dial's preamble) starts no writer on the closed
		// socket, and the count goes back here (a review found both for a
		// dial the state machine had abandoned: TestRefusedConnStartsNoWriter).
		c.wmu.Lock()
		c.writer = writerNever
		c.wmu.Unlock()
		if c.lingers {
			c.lingers = false
			n.lingering--
		}
		n.forgetConn(c)
		_ = c.nc.Close()
		return
	}
	n.live[c] = struct{}{}
	if c.detect {
		// Detection and the TLS handshake end by the handshake timeout
		// (sooner once Close has started, which sets its own deadline
		// later, also under n.mu): a dialer that never finishes holds its
		// slot no longer than the state machine would.
		_ = c.nc.SetDeadline(c.deadline(n.fcfg.HandshakeTimeout))
	} else {
		c.steady.Store(true)
		if accepted {
			c.readEarly()
		}
	}
	n.wg.Add(1)
	go c.readLoop()
}

// readEarly steps what an accepted connection's dialer has already sent,
// read without waiting before its reader starts (called with n.mu held, by
// the accept loop). A real dialer writes its preamble and HELLO as soon as
// TCP connects, so under a flood, when the connections wait in the
// listener's queue, its HELLO is usually in by the time it is accepted;
// read here, it leaves the silent tier of the handshake slots (fsm/slots.go)
// at once. Left to its reader, a goroutine that starts behind every other
// the flood made runnable, it stayed silent for milliseconds and was
// evicted as silent (a black-box audit: 1 to 7 of 20 first Connects failed
// during a flood of connections that each send a HELLO and hold it open).
// Nothing read (the usual case off a flood), it cost one read(2) that
// found nothing.
func (c *conn) readEarly() {
	n := c.n
	buf := n.link.ReadBuffer(c.id)
	if buf == nil {
		return
	}
	k := c.tryRead(buf)
	if k <= 0 {
		return
	}
	c.countIn(k)
	c.stepRead(k)
}

// stepRead steps the k bytes just read into the layer's buffer (called
// with n.mu held): what the read makes due may go inline (inline.go).
func (c *conn) stepRead(k int) {
	n := c.n
	c.wmu.Lock()
	c.answering = true
	c.wmu.Unlock()
	n.slabHint = n.link.Buffered(c.id) + k
	n.allowInline(maxInline, inlinePaced)
	n.link.Received(n.now(), c.id, k)
	n.noInline()
}

// write appends head and body to the output buffer (called under n.mu).
//
// An idle writer is woken after wmu is released: woken under it, the
// writer would run only to wait for wmu, and the release would then have
// to wake it a second time (with a fan-out, the producer's writes then
// spent a quarter of their time releasing wmu). The writer registered its
// wait before it let go of wmu (sync.Cond), so the wake-up reaches it.
func (c *conn) write(head, body []byte) {
	c.wmu.Lock()
	w := wakeNone
	if c.state == connOpen {
		c.wrote = true
		was := len(c.out)
		c.out = append(append(c.out, head...), body...)
		if len(c.out) > c.n.cfg.SendBuffer {
			if len(c.out) > c.n.outputBound() && c.n.link.FlowControlled(c.id) {
				c.wmu.Unlock()
				c.overflow()
				return
			}
			c.n.full = append(c.n.full, c) // for the sender to wait on once it drops n.mu
		}
		switch {
		case c.inlined: // its writer-to-be takes these too
		case c.idle && was == 0 && c.n.inlineFor(c):
			c.inlined = true
		default:
			w = c.kick()
		}
	}
	c.wmu.Unlock()
	c.wake(w)
}

// outputBound is the most an output buffer may hold on a session with
// acknowledgements (a 0.4.1 one has none, and its sends wait on the send
// buffer instead, waitGates; a message larger than the send queue is legal
// there, and the bound closed such a session): the DATA a peer that
// follows the protocol can leave unacknowledged (fsm.Config.Unacknowledged),
// and the send buffer's bound more for the other frames (ACKs, PINGs,
// member lists), which a peer that reads anything at all takes long before
// they add up to that much. Past it the peer is
// acknowledging messages it never read: a black-box audit's peer did so
// while reading nothing (or 128 KiB every 250 ms, enough to keep the write
// timeout away), and the buffer grew without bound (312-486 MiB in 4 s).
func (n *Runtime) outputBound() int {
	return n.fcfg.Unacknowledged() + n.cfg.SendBuffer
}

// errOutputOverflow is why a connection whose output buffer passed
// outputBound is closed.
var errOutputOverflow = fmt.Errorf("%w: output buffer over its bound: the peer acknowledged messages it never read, or reads far less than it makes this node write", fsm.ErrProtocol)

// overflow closes c, whose output buffer passed outputBound (called under
// n.mu, from write, without wmu): what it holds is let go at once, and the
// state machine hears why when a goroutine of c fails (fail prefers this
// reason to the deadline's).
func (c *conn) overflow() {
	c.overflowed = true
	c.abort()
}

// waitSpace blocks while c's output buffer is over the send bound. The wait
// ends when the writer drains it, when the connection closes, or when ctx
// is done; a peer that reads nothing makes the write fail after the peer
// timeout, which closes the connection, so the wait is bounded by the peer
// timeout.
func (c *conn) waitSpace(ctx context.Context) {
	if ctx.Done() != nil {
		stop := context.AfterFunc(ctx, func() {
			c.wmu.Lock()
			c.space.Broadcast()
			c.wmu.Unlock()
		})
		defer stop()
	}
	c.wmu.Lock()
	for len(c.out) > c.n.cfg.SendBuffer && c.state == connOpen && ctx.Err() == nil {
		c.waiting++
		c.space.Wait()
		c.waiting--
	}
	c.wmu.Unlock()
}

// closeGraceful carries out the layer's close (called under n.mu): the
// writer flushes what is queued and half-closes. A connection without a
// writer half-closes here when nothing is queued, and leaves it to the
// inline write pending (flushInline) when that holds the rest.
func (c *conn) closeGraceful() {
	c.wmu.Lock()
	w, now := wakeNone, false
	if c.state == connOpen {
		c.state = connFlushing
		switch {
		case c.writer == writerNone && c.inlined:
		case c.flushedWithoutWriter():
			now = true
		default:
			w = c.kick()
		}
		c.space.Broadcast()
	}
	c.wmu.Unlock()
	c.wake(w)
	if now {
		c.halfClose()
	}
}

// flushedWithoutWriter reports whether c, closed gracefully, has no
// writer, nothing queued and no inline write pending, and if so marks that
// none will start: the caller half-closes it once it releases wmu (called
// under wmu).
func (c *conn) flushedWithoutWriter() bool {
	if c.writer != writerNone || c.state != connFlushing || len(c.out) > 0 || c.laneWork || c.inlined {
		return false
	}
	c.writer = writerNever
	return true
}

// halfClose ends a flushed connection's writing: the FIN, and the linger
// for the peer's (the reader reads until then, discarding). A TLS
// connection ends with the bare FIN too, without a close_notify alert:
// tls.Conn.CloseWrite sets a write deadline of its own (5 s) that would
// override closeGrace, and the peer's TLS reads a FIN at a record boundary
// as a clean EOF anyway. The protocol's own goodbye is the BYE frame,
// inside TLS.
func (c *conn) halfClose() {
	if tc, ok := c.nc.(*net.TCPConn); ok {
		_ = tc.CloseWrite()
	}
	_ = c.nc.SetReadDeadline(c.deadline(c.linger()))
}

// abort stops the writer now and unblocks both goroutines' syscalls.
func (c *conn) abort() {
	c.wmu.Lock()
	c.state = connAborted
	c.out = nil
	c.idle = false
	c.data.Broadcast() // the writer, and a reader's end waiting for an inline write (wake)
	c.space.Broadcast()
	c.wmu.Unlock()
	_ = c.nc.SetDeadline(time.Now())
}

// lostWhy is the reason a failed read or write gives the state machine, and
// through it the user (a Disconnect event, Stats' LastEnd, Connect's error):
// one that wraps a sentinel of this module, as every error the package
// reports does. The peer's FIN (EOF) is ErrPeerClosed; a deadline that
// passed, the sentinel it stands for here (timeout: ErrPeerTimeout for a
// write that made no progress for a peer timeout, ErrHandshakeTimeout for
// a TLS handshake); a reason that already names one, itself; anything else
// (a reset, a broken pipe, an unreachable host) wraps ErrConnectionLost,
// with the operating system's error.
func lostWhy(err, timeout error) error {
	var ne net.Error
	switch {
	case err == nil:
		return nil
	case errors.Is(err, io.EOF):
		return fsm.ErrPeerClosed
	case reasonClass(err) != "other":
		return err
	case errors.As(err, &ne) && ne.Timeout():
		return fmt.Errorf("%w: %w", timeout, err)
	}
	return fmt.Errorf("%w: %w", fsm.ErrConnectionLost, err)
}

// fail reports that the connection broke (EOF, reset, write error). Unless
// the layer already closed it, the state machine hears of it.
func (c *conn) fail(err error) {
	n := c.n
	n.mu.Lock()
	if c.overflowed {
		err = errOutputOverflow // its goroutines fail on the deadline abort set
	}
	if n.conns[c.id] == c {
		n.forgetConn(c)
		why := n.link.Closed(n.now(), c.id, err)
		level := slog.LevelDebug // a peer going away is the protocol's business
		if errors.Is(why, wire.ErrMalformedFrame) {
			level = slog.LevelInfo // it went away in the middle of a frame
		}
		n.logPeer(level, "connection lost", why, "conn", uint64(c.id), "remote", c.remote)
		n.settle()
	}
	n.mu.Unlock()
}

// deadline returns when an I/O that may take d must end: d from now, or
// sooner once Close has started.
func (c *conn) deadline(d time.Duration) time.Time { return c.deadlineFrom(time.Now(), d) }

// deadlineFrom is deadline for an I/O that starts at now.
func (c *conn) deadlineFrom(now time.Time, d time.Duration) time.Time {
	t := now.Add(d)
	if by := c.n.closeBy.Load(); by != 0 && by < t.UnixNano() {
		return time.Unix(0, by)
	}
	return t
}

// Two timing rules of the socket layer, which only a socket can observe and
// so are not the state machine's: a write that makes no progress for the
// peer timeout fails the connection (the peer stopped reading; the state
// machine's peer timeout only watches what arrives), and a closing
// connection lingers at most min(handshake timeout, maxLinger) for its last
// bytes to drain and for the peer's FIN, so that closing does not turn into
// a reset that destroys the BYE in flight.
func (c *conn) linger() time.Duration { return min(c.n.fcfg.HandshakeTimeout, maxLinger) }

// writeLoop flushes the output buffer: each pass writes everything appended
// since the previous one in a single syscall.
func (c *conn) writeLoop() {
	defer c.n.wg.Done()
	c.wmu.Lock()
	defer close(c.writerDone) // this writer's: kick made it under wmu
	c.writerAt = time.Since(c.n.start)
	for {
		for c.inflight || (len(c.out) == 0 && !c.laneWork && c.state == connOpen) {
			if !c.inflight {
				if c.retire && !c.inlined {
					c.retireWriter()
					c.wmu.Unlock()
					return
				}
				c.trimIdle()
			}
			c.idle = true
			c.data.Wait()
			c.n.writerWakes.Add(1)
		}
		// Not parked any more, whoever woke it: a kick clears idle, but
		// a broadcast does not (an inline write's end broadcast to the
		// writer too, until it woke only a reader's end waiting for it),
		// and a writer that then found bytes queued wrote them with idle
		// still set, so that the next Send wrote inline at the same time
		// and its bytes could go first (a black-box audit saw messages
		// delivered out of order under -race;
		// TestNoInlineWriteWhileWriterWrites).
		c.idle = false
		if c.state == connAborted {
			c.wmu.Unlock()
			return
		}
		if c.laneWork {
			// The producers' messages first: admitted, their DATA joins
			// what this write carries.
			c.laneWork = false
			if l := c.lane; l != nil && c.state == connOpen {
				c.wmu.Unlock()
				c.admitForWriter(l)
				c.wmu.Lock()
				continue
			}
			if len(c.out) == 0 && c.state == connOpen {
				// Its lane was revoked meanwhile (settle admitted what it
				// held): nothing to write, and the connection stays open.
				// (Falling through took it for a flushed close and
				// half-closed a healthy session.)
				continue
			}
		}
		if len(c.out) == 0 { // flushing, and everything is out
			c.wmu.Unlock()
			c.halfClose()
			return
		}
		buf := c.out
		c.out, c.spare = c.spare[:0], nil
		c.inlined = false // the writer takes them
		var w io.Writer = c.nc
		if c.sc != nil {
			w = c.sc
		}
		c.lastBatch = len(buf)
		big := len(buf) >= idleKeep
		timeout := c.n.fcfg.PeerTimeout
		if c.state == connFlushing {
			timeout = c.linger()
		}
		c.wmu.Unlock()

		// The clock is read outside wmu: a producer appending meanwhile
		// would wait for it.
		now := time.Now()
		err := c.writeOut(w, buf, now, timeout)

		c.wmu.Lock()
		c.lastWrite = now.Sub(c.n.start)
		c.writerAt, c.retire = c.lastWrite, false
		c.answering = false
		if big {
			c.bigAt = now
		}
		if cap(buf) <= 2*c.n.cfg.SendBuffer {
			c.spare = buf[:0] // a stream keeps its two buffers: no reallocation per write
		}
		if c.waiting > 0 {
			c.space.Broadcast()
		}
		if err != nil {
			c.wmu.Unlock()
			c.fail(lostWhy(err, fsm.ErrPeerTimeout)) // no progress for a peer timeout: the peer reads nothing
			c.abort()
			return
		}
	}
}

// retireWriter ends the writer of a connection that has had nothing for it
// for writerRetireAfter (called by the writer, parked with nothing queued,
// under wmu): the connection is as before its first writer, with no big
// buffer kept.
func (c *conn) retireWriter() {
	c.writer, c.retire, c.idle = writerNone, false, true
	c.dropBuffers(c.lane != nil && c.lane.big.Load())
	c.n.writersRetired.Add(1)
}

// writeChunk is the most writeOut hands the socket in one write: a peer
// that reads slowly but steadily makes progress within each chunk's
// deadline however large the buffer (one write of the whole buffer, 16 MiB
// toward a peer reading 1.6 MiB/s, failed after one peer timeout:
// TestSlowSteadyReaderKeepsSession), and the bytes written count as they
// go out (WireOut grew only when a whole blocked write ended).
const writeChunk = 256 << 10

// writeOut writes buf to w, which is c's socket or its TLS layer, in
// chunks of at most writeChunk, and fails the connection once the socket
// has taken nothing for timeout (or Close's deadline passed).
//
// On a plain socket each write gets a deadline of a slice of the timeout
// (timeout/writeSlices), and a slice in which the socket took some bytes is
// progress: a reader slower than a chunk per peer timeout but steady (a
// loaded machine's) keeps its session, and a peer that stops reading is
// found within the timeout and a slice or two of it (TestPeerNotReadingTimesOut:
// 1.28 s for a 1 s timeout). (A deadline of the whole
// timeout per write, renewed whenever the write had taken anything, let a
// peer that read nothing hold the writer for three peer timeouts: the
// bytes that filled its socket buffer at once counted as progress at the
// deadline, a black-box audit.) Over TLS a write that timed out leaves the
// connection unusable (crypto/tls), so there a write gets the whole timeout.
func (c *conn) writeOut(w io.Writer, buf []byte, now time.Time, timeout time.Duration) error {
	slice := timeout
	if c.sc == nil {
		slice = timeout / writeSlices
	}
	progress := now // when the socket last took bytes, as far as the writer saw
	for {
		chunk := buf[:min(len(buf), writeChunk)]
		c.armWrite(now, c.deadlineFrom(now, min(slice, progress.Add(timeout).Sub(now))), slice)
		k, err := w.Write(chunk)
		c.countOut(k)
		buf = buf[k:]
		if err == nil && len(buf) == 0 {
			return nil
		}
		now = time.Now()
		if k > 0 {
			progress = now
		}
		if err != nil && c.sc == nil && errors.Is(err, os.ErrDeadlineExceeded) && c.n.closeBy.Load() == 0 && now.Sub(progress) < timeout {
			err = nil // a slice ended: the socket took bytes within the timeout
		}
		if err != nil {
			return err
		}
	}
}

// armWrite sets the socket's write deadline to by for a write starting at
// now, unless the one the writer set last will do: no later than by, and at
// least half a slice away, on a plain socket. Setting a deadline re-arms a
// runtime timer (a lock and the timer heap) once per write; a steady stream
// now sets one about every half slice (a sixteenth of the peer timeout).
// Such a deadline only ends a slice early: writeOut counts the progress, not
// the slices, so a write still fails exactly when the socket took nothing
// for the timeout. Over TLS a deadline is the whole timeout and its expiry
// fails the connection, so there every write sets its own. An earlier
// deadline set by Close or an abort stands either way: the writer's last
// one is never earlier than by.
func (c *conn) armWrite(now, by time.Time, slice time.Duration) {
	if c.sc == nil && !c.writeBy.IsZero() && !c.writeBy.After(by) && c.writeBy.Sub(now) >= slice/2 {
		return
	}
	steady := c.steady.Load() // before the set: a deadline set after it is the writer's own
	_ = c.nc.SetWriteDeadline(by)
	c.writeBy = time.Time{}
	if steady {
		c.writeBy = by
	}
}

// writeSlices is how many deadlines a blocked write on a plain socket
// waits through before it fails for want of progress (writeOut).
const writeSlices = 8

// idleKeep is the largest output buffer an idle connection keeps (a
// heartbeat takes 29 bytes; a small request or reply fits).
const idleKeep = 1 << 10

// idleTrimAfter is how long writes must have stayed small before an idle
// writer gives back its big buffers: a stream whose batches are sometimes
// big and sometimes small (a producer and a fan-out alternating) keeps them
// and allocates nothing per write, while a burst that has passed is given
// back at the next small write after it, a heartbeat at the latest.
const idleTrimAfter = 250 * time.Millisecond

// trimIdle gives back the writer's buffers before it waits, once they are
// big, the last write was small and no write was big for idleTrimAfter: a
// burst has passed (the writer learns it at the latest with the next
// heartbeat), so an idle connection holds at most idleKeep bytes of output
// buffer, while a stream that keeps writing allocates nothing per write.
// Called with c.wmu held and c.out empty.
func (c *conn) trimIdle() {
	laneBig := c.lane != nil && c.lane.big.Load()
	if c.lastBatch >= idleKeep || (cap(c.out) <= idleKeep && cap(c.spare) <= idleKeep && !laneBig) || time.Since(c.bigAt) < idleTrimAfter {
		return
	}
	c.dropBuffers(laneBig)
}

// dropBuffers gives back c's output buffers larger than idleKeep, and its
// lane's when laneBig (under wmu, with c.out empty).
func (c *conn) dropBuffers(laneBig bool) {
	if laneBig {
		c.lane.trim()
	}
	if cap(c.out) > idleKeep {
		c.out = nil
	}
	if cap(c.spare) > idleKeep {
		c.spare = nil
	}
}

// readLoop reads into the buffer the layer hands out and reports each read
// under the core lock; the layer parses and steps every whole frame. Once
// the layer has closed the connection, it keeps reading and discards until
// the peer's FIN or the linger deadline, so that the peer's last bytes do not
// turn our close into a reset that could destroy our BYE in flight. It owns
// closing the socket: when reading ends it waits for the writer and closes.
func (c *conn) readLoop() {
	n := c.n
	defer n.wg.Done()
	growStack()
	var err error
	if c.detect {
		err = c.secure()
	}
	if err == nil {
		err = c.pump()
	}
	if err == nil {
		err = c.discard()
	}
	c.fail(lostWhy(err, fsm.ErrConnectionLost)) // a read has a deadline only while Close ends it
	if !c.flushing() {
		c.abort()
	}
	c.waitWriter()
	_ = c.nc.Close()
	n.mu.Lock()
	delete(n.live, c)
	if c.lingers {
		n.lingering--
	}
	n.wireIn += c.bytesIn.Load()
	n.wireOut += c.bytesOut.Load()
	n.mu.Unlock()
}

// refuse ends a connection whose TLS handshake this node refused without
// destroying the alert that says why: in TLS 1.3 the dialer has finished its
// handshake and written its first frames before it reads the alert, and
// closing with those unread would reset the connection, which can discard
// the alert. So it half-closes and reads what still arrives for at most the
// linger.
func (c *conn) refuse() {
	if tc, ok := c.nc.(*net.TCPConn); ok {
		_ = tc.CloseWrite()
	}
	_ = c.nc.SetReadDeadline(c.deadline(c.linger()))
	_ = c.discard()
}

// pump reads into the buffer the layer hands out until the layer no longer
// holds the connection (nil) or a read fails (its error).
func (c *conn) pump() error {
	n := c.n
	var r io.Reader = c.nc
	if c.sc != nil {
		r = c.sc
	}
	n.mu.Lock()
	buf := n.link.ReadBuffer(c.id)
	n.mu.Unlock()
	var err error
	for buf != nil {
		var k int
		k, err = r.Read(buf)
		c.countIn(k)
		n.mu.Lock()
		if k > 0 {
			c.stepRead(k)
			n.settle()
		}
		buf = nil
		if err == nil {
			buf = n.link.ReadBuffer(c.id)
		}
		// A v2 session never waits for the user: credit bounds what its
		// peer may send. A 0.4.1 one has none, so it stops reading while
		// the dispatch queue is over its bound and TCP pushes back.
		metered := n.link.FlowControlled(c.id)
		n.unlockInline()
		if k > 0 && !metered && n.disp.full() {
			c.pauseFor(n.disp.waitRoom)
		}
	}
	if err != nil && c.sc != nil && !errors.Is(err, io.EOF) {
		err = tlsError(err) // a dialer hears its certificate was refused here
	}
	return err
}

// pauseFor runs wait, which stops this connection's reading, with the state
// machine told (fsm.ReadPaused): the peer's silence meanwhile is ours, so
// the session is not timed out for it (a slow callback used to cost a 0.4.1
// session its peer timeout while the peer kept sending).
func (c *conn) pauseFor(wait func()) {
	c.readPaused(true)
	wait()
	c.readPaused(false)
}

// readPaused steps fsm.ReadPaused for c.
func (c *conn) readPaused(paused bool) {
	n := c.n
	n.mu.Lock()
	defer n.mu.Unlock()
	if !n.closed {
		_ = n.link.Step(n.now(), fsm.ReadPaused{Conn: c.id, Paused: paused})
		n.settle()
	}
}

// secure runs on a connection accepted by a node with TLS, before the
// connection layer sees a byte of it: the dialer's first byte tells TLS
// from plaintext (wire.DetectTLS). A TLS dialer gets the server handshake,
// bounded by the deadline run set, and the id its certificate proved goes to
// the layer (link.Authenticated), which hands it to the state machine with
// Accepted; the plaintext that follows is the layer's, as on any connection.
// A plaintext dialer's byte goes to the layer as read, and the state machine
// judges the connection (it refuses it when it requires authentication).
// The handshake reads at most handshakeBudget bytes (handshakeConn); one
// that goes past them, or that crypto/tls or the trust refuses, is refused
// as unauthenticated (logged at Warn; Stats counts it as closed
// "unauthenticated"), one whose socket failed is lost (Info).
// Nothing here runs under the core lock but the reporting.
func (c *conn) secure() error {
	n := c.n
	var first [1]byte
	if _, err := io.ReadFull(c.nc, first[:]); err != nil {
		return err
	}
	var sc *tls.Conn
	var peer string
	if wire.DetectTLS(first[0]) {
		hc := newHandshakeConn(c.nc, first[:])
		sc = tls.Server(hc, n.cfg.TLS.Config)
		err := sc.Handshake()
		hc.finished()
		if err == nil {
			peer, err = n.cfg.TLS.PeerID(sc.ConnectionState())
		} else if err = tlsError(err); !hc.socketFailed() && reasonClass(err) == "other" {
			// crypto/tls refused the dialer's handshake by itself, with an
			// alert: no certificate, an application protocol other than
			// masterless, a TLS version before 1.3, a malformed message. The
			// dialer proved nothing: it is refused as unauthenticated (a
			// black-box audit: this was logged at Info as a lost connection).
			err = fmt.Errorf("%w: the TLS handshake was refused: %w", fsm.ErrUnauthenticated, err)
		}
		if err != nil {
			err = fmt.Errorf("TLS handshake with %s: %w", c.remote, lostWhy(err, fsm.ErrHandshakeTimeout))
			untrusted := errors.Is(err, ErrUntrusted) || errors.Is(err, ErrCertificateExpired)
			refused := untrusted || errors.Is(err, fsm.ErrIDMismatch) || errors.Is(err, fsm.ErrUnauthenticated)
			level := slog.LevelInfo // a dialer that left, or timed out
			if refused {
				level = slog.LevelWarn // a dialer that did not prove who it is
			}
			n.mu.Lock()
			n.logPeer(level, "TLS handshake failed", err, "conn", uint64(c.id), "remote", c.remote)
			// Linger for the alert only on a connection the state machine
			// still held (not one it evicted) and within the bound on
			// lingering closes (core.go).
			linger := n.conns[c.id] == c && n.lingering < n.lingerCap
			if linger {
				c.lingers = true
				n.lingering++
			}
			n.mu.Unlock()
			why := err
			if untrusted {
				// The dialer did not prove who it is: Stats counts the
				// refusal as closed "unauthenticated", not as a lost
				// connection (a black-box audit).
				why = fmt.Errorf("%w: %w", fsm.ErrUnauthenticated, err)
			}
			c.fail(why) // the state machine frees the slot now
			if linger {
				c.refuse()
			}
			return err
		}
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if !n.closed && n.link.Open(c.id) {
		// The state machine's timers bound the rest. (A connection it has
		// closed keeps the deadline its writer set for the linger, and one
		// Close is ending keeps Close's.)
		_ = c.nc.SetDeadline(time.Time{})
		c.steady.Store(true) // after the clear: the writer's next deadline is its own
	}
	if sc != nil {
		c.wmu.Lock()
		c.sc = sc
		c.wmu.Unlock()
		n.link.Authenticated(c.id, peer)
		if n.logging(slog.LevelDebug) {
			n.log.Debug("TLS handshake done", "conn", uint64(c.id), "remote", c.remote, "peer", peer)
		}
	} else if buf := n.link.ReadBuffer(c.id); buf != nil {
		buf[0] = first[0]
		n.link.Received(n.now(), c.id, 1)
		n.settle()
	}
	return nil
}

// discard reads and drops what still arrives on a connection the layer
// closed, until the socket fails (the peer's FIN, or the deadline the writer
// sets once it has flushed), or until it has dropped discardBound bytes:
// then it returns errDiscardedEnough, and the socket is closed with what
// still arrives unread (a reset).
func (c *conn) discard() error {
	var small [discardFirst]byte // most closes read a FIN, or a BYE: no heap
	sink := small[:]
	bound := c.discardBound()
	for dropped := 0; dropped < bound; {
		k, err := c.nc.Read(sink)
		dropped += k
		if err != nil {
			return err
		}
		if k == len(sink) && len(sink) < discardChunk {
			sink = make([]byte, discardChunk) // the peer keeps sending
		}
	}
	return errDiscardedEnough
}

// discardChunk is the size of the reads that drop a closed connection's
// bytes once a read filled discardFirst: a peer that kept sending cost a
// system call per 512 bytes for the whole linger when every read was that
// small, and an 8 KiB buffer for every lingering close made the 64-node
// mesh example's peak heap 25-45% larger (a black-box audit: the mesh
// closes about 900 duplicate connections, each lingering with one).
const (
	discardFirst = 512
	discardChunk = 8 << 10
)

// discardBound is how much a closed connection reads and drops while it
// lingers: what the state machine says a peer that follows the protocol can
// have in flight (fsm.Config.InFlight), and a MiB more. The linger exists
// so that those bytes do not turn the close into a reset that could destroy
// the BYE in flight; a peer that keeps sending past them is not reading the
// BYE anyway. (A refused 0.4.1 peer that kept sending was read for 434 MiB
// in the 2 s of its linger, a black-box audit.)
func (c *conn) discardBound() int { return c.n.fcfg.InFlight() + 1<<20 }

// errDiscardedEnough ends a lingering close whose peer sent more than
// discardBound after it.
var errDiscardedEnough = errors.New("the peer kept sending after the close")

// countIn and countOut count bytes read and written on the connection. The
// Runtime's totals add them up when asked (Stats) and when the connection
// ends, so no counter is shared between connections.
func (c *conn) countIn(k int) {
	if k > 0 {
		c.bytesIn.Add(uint64(k))
	}
}

func (c *conn) countOut(k int) {
	if k > 0 {
		c.bytesOut.Add(uint64(k))
	}
}

// flushing reports whether the layer closed c and its writer is flushing the
// last frames (BYE): the reader then lets it finish instead of aborting.
func (c *conn) flushing() bool {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	return c.state == connFlushing
}
