package link

import (
	"fmt"
	"time"

	"github.com/masterless-go/masterless/fsm"
	"github.com/masterless-go/masterless/wire"
)

// The input side of a connection: a buffer the driver reads into, sized to
// the frame in progress, and the parse loop that turns its bytes into events.

type proto uint8

const (
	protoUnknown proto = iota // accepted; the dialer's first bytes not seen yet
	protoBinary               // masterless-go's own protocol (wire.Binary)
	protoLegacy               // masterless 0.4.1
)

// Input buffer sizes.
const (
	// firstSize is the buffer of a connection whose protocol or preamble is
	// not known yet: enough for wire.DetectLegacy (which decides within 65
	// bytes) and the 8-byte preamble. A connection that never gets past its
	// first bytes costs no more than this.
	firstSize = 128
	// baseSize is the buffer of a connection past its preamble, and what an
	// idle connection keeps.
	baseSize = 4 << 10
	// chunkSize is the largest buffer grown for throughput alone: reads that
	// fill the buffer double it up to this. A larger frame grows it to the
	// frame's size, bounded by the max frame size.
	chunkSize = 64 << 10
)

// runFrames is the most DATA frames taken in one step (fsm.DataReceived):
// as many as a lease's batch, whose Admit step writes as many frames
// (fsm/lease.go), so that the node's action list grows no longer for it.
const runFrames = 512

// conn is the Layer's view of one connection.
type conn struct {
	proto    proto
	preamble bool   // v1: the peer's preamble checked out
	features uint16 // v1: the feature bits of the peer's preamble, handed over with its HELLO
	closed   bool   // the Layer no longer holds it
	// peer is the id the security handshake authenticated the remote as
	// (IncomingAuth, DialedAuth); empty for plaintext.
	peer string
	// in[start:end] holds the bytes read but not yet parsed; in[end:] is
	// free. Nothing refers into in between calls, so it may move.
	in         []byte
	start, end int
	filled     bool // the last read filled all the free space
	lastRead   int  // bytes the last read brought
}

// ReadBuffer returns where the driver reads connection id's next bytes: free
// space at the end of its input buffer, never empty, large enough over
// successive reads for the frame in progress. It returns nil for a
// connection the Layer no longer holds (the driver then discards what
// arrives). The slice is valid until the next call of any Layer method.
func (l *Layer) ReadBuffer(id fsm.ConnID) []byte {
	c := l.conns[id]
	if c == nil {
		return nil
	}
	return c.space(l, id)
}

// Received reports that k bytes were read into the slice ReadBuffer last
// returned for id. The Layer parses every whole frame they complete and
// steps the state machine with each, in order, consecutive whole DATA
// frames (up to runFrames) in one step (fsm.DataReceived); a stream it
// cannot parse is reported to the state machine, which closes the
// connection.
func (l *Layer) Received(now time.Duration, id fsm.ConnID, k int) {
	c := l.conns[id]
	if c == nil || k <= 0 {
		return
	}
	if k > len(c.in)-c.end {
		panic(fmt.Sprintf("link: Received %d bytes on c%d, more than ReadBuffer offered (%d)", k, id, len(c.in)-c.end))
	}
	c.filled = c.end+k == len(c.in)
	c.lastRead = k
	c.end += k
	l.process(now, id, c)
}

// FlowControlled reports whether connection id speaks v2, whose peer sends
// only within the credit the state machine grants (fsm/stream.go): its
// reader never needs to wait for the user. False for a 0.4.1 connection,
// one whose protocol is not known yet, and one the Layer no longer holds.
func (l *Layer) FlowControlled(id fsm.ConnID) bool {
	c := l.conns[id]
	return c != nil && c.proto == protoBinary && l.node.FlowControl()
}

// Buffered returns how many bytes of connection id are read but not parsed
// (a frame in progress).
func (l *Layer) Buffered(id fsm.ConnID) int {
	if c := l.conns[id]; c != nil {
		return c.end - c.start
	}
	return 0
}

// process parses what is buffered on c, as far as whole frames go.
func (l *Layer) process(now time.Duration, id fsm.ConnID, c *conn) {
	if c.proto == protoUnknown {
		legacy, decided := wire.DetectLegacy(c.in[c.start:c.end])
		if !decided {
			return // only whitespace so far
		}
		if legacy {
			c.proto = protoLegacy
		} else {
			c.proto = protoBinary
			l.tr.Write(id, l.v1.AppendPreamble(l.enc[:0]), nil)
		}
		l.step(now, fsm.Accepted{Conn: id, Legacy: legacy, Peer: c.peer})
	}
	if c.proto == protoBinary && !c.preamble && !c.closed {
		k, err := l.v1.ParsePreamble(c.in[c.start:c.end])
		if err != nil {
			l.malformed(now, id, err)
			return
		}
		if k == 0 {
			return
		}
		c.features = wire.PreambleFeatures(c.in[c.start : c.start+k])
		c.start += k
		c.preamble = true
	}
	whole := false // a whole frame was parsed in this call
	for !c.closed && c.start < c.end {
		if c.proto == protoBinary {
			if p, k, ok := l.v1.ParseData(c.in[c.start:c.end]); ok {
				whole = true
				// The whole DATA frames that follow it go with it in one
				// step (fsm.DataReceived), up to runFrames of them.
				// Their length, when they all have one, goes with them
				// (fsm.DataReceived.FrameSize): the state machine then
				// counts them without reading each header again.
				run, count, size := k, 1, k
				for ; count < runFrames; count++ {
					_, k2, ok2 := l.v1.ParseData(c.in[c.start+run : c.end])
					if !ok2 {
						break
					}
					run += k2
					if k2 != size {
						size = 0
					}
				}
				if count > 1 {
					frames := c.in[c.start : c.start+run : c.start+run]
					c.start += run
					l.receiveData(now, id, frames, size)
					continue
				}
				c.start += k
				l.frame.Type, l.frame.Payload = wire.Data, p
				l.receiveFrame(now, id, &l.frame)
				l.frame.Payload = nil // it points into c.in, which may move
				continue
			}
			// Not a whole DATA frame: its header (wire's bounds), then
			// whether the connection's state accepts its type, then its
			// body, in that order whether it came whole or in pieces. A
			// frame the state forbids is so refused before its body (up to
			// the max frame size) is buffered. (A whole DATA frame the
			// state forbids is refused by fsm's table with the same words.)
			t, ok, err := l.v1.ParseHeader(c.in[c.start:c.end])
			if err == nil && ok {
				err = l.node.Refusal(id, t)
			}
			if err != nil {
				l.malformed(now, id, err)
				return
			}
		}
		f, k, err := l.parse(id, c)
		if err != nil {
			l.malformed(now, id, err)
			return
		}
		if k == 0 {
			if !whole {
				// Only part of a frame (a large message arriving): the
				// peer is heard from all the same (fsm.FrameInProgress).
				l.step(now, fsm.FrameInProgress{Conn: id})
			}
			return
		}
		whole = true
		c.start += k
		if f.Type == wire.Hello {
			f.Features = c.features
		}
		l.frame = f
		l.receiveFrame(now, id, &l.frame)
		l.frame = wire.Frame{} // zero but for Type and Payload, which DATA sets
	}
}

// parse decodes the frame at the start of c's unparsed bytes. A 0.4.1
// message is read according to where the state machine says its connection
// is: the first message is a HELLO, then a priority or a confirm, and once
// established every object is DATA.
func (l *Layer) parse(id fsm.ConnID, c *conn) (wire.Frame, int, error) {
	b := c.in[c.start:c.end]
	if c.proto == protoBinary {
		return l.v1.ParseFrame(b)
	}
	return l.legacyCodec(id).ParseFrame(b)
}

// legacyCodec returns the codec of 0.4.1 connection id's next message,
// according to where the state machine says the connection is: the first
// message is a HELLO, then a priority or a confirm, and once established
// every object is DATA. Before the session a message is at most
// wire.LegacyMaxHandshakeLine bytes, after it the max frame size.
func (l *Layer) legacyCodec(id fsm.ConnID) wire.Legacy {
	codec := wire.Legacy{MaxFrameSize: min(l.maxFrame, wire.LegacyMaxHandshakeLine)}
	switch state, _, _ := l.node.ConnState(id); state {
	case fsm.StateEstablished:
		codec.Phase = wire.LegacyPhaseEstablished
		codec.MaxFrameSize = l.maxFrame
	case fsm.StateJoin, fsm.StateWelcome:
		codec.Phase = wire.LegacyPhaseHandshake
	default:
		codec.Phase = wire.LegacyPhaseHello
	}
	return codec
}

// malformed reports bytes that cannot be parsed; the state machine closes
// the connection, and nothing past them is ever parsed.
func (l *Layer) malformed(now time.Duration, id fsm.ConnID, err error) {
	l.step(now, fsm.Malformed{Conn: id, Err: err})
	if c := l.conns[id]; c != nil { // the state machine did not know it: close it anyway
		l.forget(id, c)
		l.tr.Close(id, err)
	}
}

// space returns c's free input space, after making the buffer fit the frame
// in progress.
func (c *conn) space(l *Layer, id fsm.ConnID) []byte {
	if c.start == c.end {
		c.start, c.end = 0, 0
		if len(c.in) > c.base() && c.lastRead < len(c.in)/16 {
			// Reads have become small next to the buffer: the burst or big
			// frame has passed, give the memory back. (Not after every read
			// that fell short: a stream would reallocate its buffer again
			// and again.)
			c.in = nil
		}
	}
	if c.in == nil {
		c.in = make([]byte, c.base())
	}
	size := len(c.in)
	if need := c.needed(l); need > size {
		// A frame larger than the buffer. Once its start fills the
		// buffer, grow toward its size as its bytes come, to at most
		// chunkSize or twice what arrived: a header alone must not make
		// the node hold the size it announces (13 bytes used to reserve
		// 16 MiB, on every connection of a flood, before a byte of the
		// body arrived). A frame up to chunkSize still gets its room in
		// one step (growing by doubling from the base made a 16-KiB
		// fan-out twice as slow: an idle buffer shrinks back to the base,
		// and every frame then grew it three times); a larger one costs
		// copies of at most twice its size.
		if c.start == 0 && c.end == size {
			size = min(need, max(2*size, chunkSize))
		}
	} else if c.filled && size < chunkSize && c.preamble {
		size = min(2*size, chunkSize) // reads fill it: read more at once
	}
	if c.end == size && c.start == 0 {
		size = c.grow(l, id) // full with one partial message (0.4.1 lines have no length)
	}
	if size != len(c.in) {
		bigger := make([]byte, size)
		c.end = copy(bigger, c.in[c.start:c.end])
		c.in, c.start = bigger, 0
		c.filled = false
	} else if c.start > 0 && (c.end == len(c.in) || len(c.in)-c.start < c.needed(l)) {
		c.end = copy(c.in, c.in[c.start:c.end]) // move the partial frame to the front
		c.start = 0
	}
	return c.in[c.end:]
}

// base is the buffer size c starts with and shrinks back to.
func (c *conn) base() int {
	if c.proto == protoUnknown || (c.proto == protoBinary && !c.preamble) {
		return firstSize
	}
	return baseSize
}

// needed returns the size of the v1 frame in progress once its length is
// known and within the limit (a frame over the limit fails to parse before
// any buffer grows for it); else 0.
func (c *conn) needed(l *Layer) int {
	if c.proto != protoBinary || !c.preamble {
		return 0
	}
	n, ok := wire.FrameLen(c.in[c.start:c.end])
	if !ok || n > l.maxFrame+4 {
		return 0
	}
	return n
}

// grow returns the next size for a buffer that is full with one message
// whose length is unknown: double, up to what the codec can accept (a 0.4.1
// line of its limit plus its CR LF: the max frame size on a session, less
// before it), and always at least one byte more, so a read can progress
// until the codec refuses the line.
func (c *conn) grow(l *Layer, id fsm.ConnID) int {
	n := len(c.in)
	limit := l.maxFrame
	if c.proto == protoLegacy {
		limit = l.legacyCodec(id).MaxFrameSize
	}
	return max(min(2*n, limit+2), n+1)
}
