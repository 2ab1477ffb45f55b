package netio

import (
	"errors"
	"io"

	"github.com/masterless-go/masterless/fsm"
	"github.com/masterless-go/masterless/wire"
)

// readLoop reads big chunks, checks the preamble, parses every whole frame in
// the chunk and steps them under one lock. It owns closing the socket: when
// reading ends it waits for the writer and closes.
func (c *conn) readLoop() {
	defer c.n.wg.Done()
	err := c.readFrames()
	if errors.Is(err, io.EOF) {
		err = fsm.ErrPeerClosed
	}
	c.fail(err)
	if !c.flushing() {
		c.abort()
	}
	<-c.writerDone
	_ = c.nc.Close()
}

// flushing reports whether the fsm closed c and its writer is flushing the
// last frames (BYE): the reader then lets it finish instead of aborting.
func (c *conn) flushing() bool {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	return c.state == connFlushing
}

// readFrames runs until the socket fails or is closed. Once the connection is
// closing it keeps reading and discards, so that the peer's last bytes do not
// turn our close into a reset that could destroy our BYE in flight.
func (c *conn) readFrames() error {
	if c.legacy != nil {
		return c.readLegacy()
	}
	n := c.n
	buf := make([]byte, readBufferSize)
	var frames []wire.Frame
	start, end := 0, 0
	preamble := false
	initial := c.initial // read by detect, on an accepted connection
	c.initial = nil
	for {
		if start == end || c.closing.Load() {
			start, end = 0, 0
		}
		nr, rerr := c.readInto(buf[end:], &initial)
		end += nr
		if nr > 0 && !c.closing.Load() {
			var bad error
			if !preamble {
				k, err := n.codec.ParsePreamble(buf[start:end])
				if err != nil {
					bad = err
				} else if k > 0 {
					preamble = true
					start += k
				}
			}
			frames = frames[:0]
			payload := 0
			if preamble && bad == nil {
				var used int
				frames, used, payload, bad = parseFrames(n.codec, buf[start:end], frames)
				start += used
			}
			if len(frames) > 0 || bad != nil {
				c.deliver(frames, payload, bad)
				clear(frames) // drop references into buf
			}
			if bad == nil && preamble && start < end {
				buf = c.fit(buf, start, end)
				end -= start
				start = 0
			}
		}
		if rerr != nil {
			return rerr
		}
	}
}

// fit makes room in buf for the whole frame that starts at buf[start:end],
// moving it to the front. ParseFrame already checked its length against the
// max frame size, so buf never grows past it.
func (c *conn) fit(buf []byte, start, end int) []byte {
	need, ok := wire.FrameLen(buf[start:end])
	if !ok || need <= len(buf) {
		if len(buf) > readBufferSize && end-start <= readBufferSize {
			// A big frame passed: shrink back rather than keep the memory.
			small := make([]byte, readBufferSize)
			copy(small, buf[start:end])
			return small
		}
		copy(buf, buf[start:end])
		return buf
	}
	bigger := make([]byte, need)
	copy(bigger, buf[start:end])
	return bigger
}

// deliver steps a batch of frames (and the decode error that ended it, if
// any) under one lock, then waits for room in the dispatch queue. The batch's
// message payloads are copied into one allocation that the handlers own.
func (c *conn) deliver(frames []wire.Frame, payload int, bad error) {
	n := c.n
	var slab []byte
	if payload > 0 {
		slab = make([]byte, 0, payload)
	}
	n.mu.Lock()
	now := n.now() // one clock read per batch: they arrived together
	for i := range frames {
		if c.closing.Load() {
			break // closed by the fsm part-way: the rest is discarded
		}
		_ = n.fsm.Step(now, fsm.FrameReceived{Conn: c.id, Frame: frames[i]})
		n.apply(&slab)
	}
	if bad != nil && !c.closing.Load() {
		_ = n.fsm.Step(now, fsm.Malformed{Conn: c.id, Err: bad})
		n.apply(nil)
	}
	n.settle()
	if bad != nil {
		c.closing.Store(true) // never parse past a decode error
	}
	n.mu.Unlock()
	n.disp.waitRoom()
}

// legacyBufferSize is the first read buffer of a 0.4.1 connection; it grows
// up to the max frame size for a long message.
const legacyBufferSize = 4096

// readLegacy is readFrames for a connection that speaks masterless 0.4.1:
// no preamble, JSON lines. wire.Legacy reports ErrFrameTooLarge once more
// than the max frame size arrived without a CR LF, so the buffer never grows
// past that plus two bytes.
func (c *conn) readLegacy() error {
	buf := make([]byte, legacyBufferSize)
	var frames []wire.Frame
	start, end := 0, 0
	initial := c.initial
	c.initial = nil
	for {
		if start == end || c.closing.Load() {
			start, end = 0, 0
		}
		if end == len(buf) { // a message longer than the buffer: make room
			if start > 0 {
				end = copy(buf, buf[start:end])
				start = 0
			} else {
				limit := c.n.cfg.MaxFrameSize
				if limit <= 0 {
					limit = wire.DefaultMaxFrameSize
				}
				bigger := make([]byte, max(min(2*len(buf), limit+2), len(buf)+1))
				copy(bigger, buf[:end])
				buf = bigger
			}
		}
		nr, rerr := c.readInto(buf[end:], &initial)
		end += nr
		if nr > 0 && !c.closing.Load() {
			frames, used, payload, bad := parseFrames(c.legacy, buf[start:end], frames[:0])
			start += used
			if len(frames) > 0 || bad != nil {
				c.deliver(frames, payload, bad)
				clear(frames) // drop references into buf
			}
			if len(buf) > legacyBufferSize && end-start < legacyBufferSize {
				small := make([]byte, legacyBufferSize) // a long message passed
				end = copy(small, buf[start:end])
				buf, start = small, 0
			}
		}
		if rerr != nil {
			return rerr
		}
	}
}

// parseFrames appends the whole frames at the start of b to frames. It returns
// them, the bytes they took, their payload bytes, and the codec's error, if
// any, for the bytes after them. (Generic rather than taking wire.Codec, so
// that the V1 value is not boxed on every read.)
func parseFrames[C wire.Codec](codec C, b []byte, frames []wire.Frame) (_ []wire.Frame, used, payload int, err error) {
	for {
		f, k, err := codec.ParseFrame(b[used:])
		if err != nil {
			return frames, used, payload, err
		}
		if k == 0 {
			return frames, used, payload, nil
		}
		used += k
		payload += len(f.Payload)
		frames = append(frames, f)
	}
}

// readInto reads into b: first the bytes protocol detection already read from
// an accepted connection (*initial, consumed by this call), then the socket.
// b is never smaller than detection's bounded read.
func (c *conn) readInto(b []byte, initial *[]byte) (int, error) {
	if len(*initial) > 0 {
		n := copy(b, *initial)
		*initial = nil
		return n, nil
	}
	return c.nc.Read(b)
}
