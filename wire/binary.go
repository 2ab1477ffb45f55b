package wire

import (
	"encoding/binary"
	"fmt"
)

// Preamble layout (spec/PROTOCOL.md, section 2.1).
const (
	Version      = 2 // the protocol version this package speaks (spec/PROTOCOL.md, 1)
	PreambleSize = 8 // bytes before the first frame
	HeaderSize   = 5 // bytes of a frame's header: length u32 + type u8

	// DefaultMaxFrameSize is the frame size limit when none is configured.
	DefaultMaxFrameSize = 16 << 20
)

var magic = [4]byte{'M', 'L', 'S', 'S'}

// Codec turns frames into bytes and back for one framing. Implementations
// must never panic on any input and must check lengths before allocating.
type Codec interface {
	// Name identifies the framing in logs, e.g. "binary".
	Name() string
	// AppendPreamble appends what a connection starts with.
	AppendPreamble(dst []byte) []byte
	// ParsePreamble checks the peer's preamble at the start of b. It returns
	// n == 0 and a nil error when b is too short to decide.
	ParsePreamble(b []byte) (n int, err error)
	// AppendFrame appends the encoding of f.
	AppendFrame(dst []byte, f *Frame) ([]byte, error)
	// ParseFrame decodes the frame at the start of b. It returns n == 0 and a
	// nil error when b holds only part of a frame. Payloads alias b.
	ParseFrame(b []byte) (f Frame, n int, err error)
}

// Binary is the binary framing of masterless-go's protocol (version 2,
// spec/PROTOCOL.md section 2; the layout is version 1's, with two more frame
// types and a field in HELLO). The zero value uses
// DefaultMaxFrameSize.
type Binary struct {
	// MaxFrameSize bounds the length prefix of a received frame, in bytes.
	MaxFrameSize int
	// Features are the bits AppendPreamble writes in the preamble's reserved
	// field (FeatureMembers); 0 writes the plain v2 preamble.
	Features uint16
}

// Name implements Codec.
func (Binary) Name() string { return "binary" }

func (c Binary) maxFrame() int {
	if c.MaxFrameSize <= 0 {
		return DefaultMaxFrameSize
	}
	return c.MaxFrameSize
}

// AppendPreamble implements Codec.
func (c Binary) AppendPreamble(dst []byte) []byte {
	dst = append(dst, magic[:]...)
	dst = binary.BigEndian.AppendUint16(dst, Version)
	return binary.BigEndian.AppendUint16(dst, c.Features) // reserved: feature bits, ignored by readers that know none
}

// ParsePreamble implements Codec.
func (Binary) ParsePreamble(b []byte) (int, error) {
	// Reject a wrong magic as soon as the first differing byte arrives.
	for i := 0; i < len(b) && i < len(magic); i++ {
		if b[i] != magic[i] {
			return 0, fmt.Errorf("%w: got % x", ErrBadMagic, b[:i+1])
		}
	}
	if len(b) < PreambleSize {
		return 0, nil
	}
	if v := binary.BigEndian.Uint16(b[4:6]); v != Version {
		return 0, fmt.Errorf("%w: peer speaks v%d, this node v%d", ErrVersionMismatch, v, Version)
	}
	return PreambleSize, nil
}

// AppendFrame implements Codec. It fails only for a frame this node must not
// send (an out-of-range field), which is a bug in the caller.
func (Binary) AppendFrame(dst []byte, f *Frame) ([]byte, error) {
	switch f.Type {
	case Hello:
		if len(f.ID) == 0 || len(f.ID) > MaxIDLen || len(f.Info) > MaxInfoLen {
			return dst, fmt.Errorf("%w: HELLO id length %d, info length %d", ErrMalformedFrame, len(f.ID), len(f.Info))
		}
		dst = appendHeader(dst, Hello, 1+len(f.ID)+8+4+2+len(f.Info))
		dst = append(dst, byte(len(f.ID)))
		dst = append(dst, f.ID...)
		dst = binary.BigEndian.AppendUint64(dst, f.Incarnation)
		dst = binary.BigEndian.AppendUint32(dst, f.MaxFrame)
		dst = binary.BigEndian.AppendUint16(dst, uint16(len(f.Info)))
		return append(dst, f.Info...), nil
	case Join:
		dst = appendHeader(dst, Join, 9)
		dst = binary.BigEndian.AppendUint64(dst, f.Closed)
		return append(dst, byte(b2i(f.Keep))), nil
	case Welcome:
		if f.Sess == 0 {
			return dst, fmt.Errorf("%w: WELCOME with session 0", ErrMalformedFrame)
		}
		dst = appendHeader(dst, Welcome, 9)
		dst = binary.BigEndian.AppendUint64(dst, f.Sess)
		return append(dst, byte(b2i(f.Keep))), nil
	case Keep:
		dst = appendHeader(dst, Keep, 1)
		return append(dst, byte(b2i(f.Keep))), nil
	case Ping:
		if f.Stamp == 0 && f.Echo == 0 && f.Held == 0 {
			return appendHeader(dst, Ping, 0), nil
		}
		dst = appendHeader(dst, Ping, 24)
		dst = binary.BigEndian.AppendUint64(dst, f.Stamp)
		dst = binary.BigEndian.AppendUint64(dst, f.Echo)
		return binary.BigEndian.AppendUint64(dst, f.Held), nil
	case Data:
		return AppendData(dst, f.Payload), nil
	case Ack:
		dst = appendHeader(dst, Ack, 17)
		dst = binary.BigEndian.AppendUint64(dst, f.Delivered)
		dst = binary.BigEndian.AppendUint64(dst, f.Credit)
		return append(dst, byte(b2i(f.Backlog))), nil
	case Resume:
		if f.Next == 0 {
			return dst, fmt.Errorf("%w: RESUME with sequence number 0", ErrMalformedFrame)
		}
		dst = appendHeader(dst, Resume, 8)
		return binary.BigEndian.AppendUint64(dst, f.Next), nil
	case Members:
		return appendMembers(dst, f)
	case Bye:
		text := f.Text
		if len(text) > MaxTextLen {
			text = text[:MaxTextLen]
		}
		dst = appendHeader(dst, Bye, 1+8+2+len(text))
		dst = append(dst, byte(f.Code))
		dst = binary.BigEndian.AppendUint64(dst, f.Sess)
		dst = binary.BigEndian.AppendUint16(dst, uint16(len(text)))
		return append(dst, text...), nil
	}
	return dst, fmt.Errorf("%w: cannot encode %s", ErrMalformedFrame, f.Type)
}

// AppendData appends a DATA frame carrying payload: the hot path, no checks.
func AppendData(dst, payload []byte) []byte {
	dst = appendHeader(dst, Data, len(payload))
	return append(dst, payload...)
}

// AppendDataHeader appends the header of a DATA frame carrying n payload
// bytes: with the payload after it, the same bytes as AppendData, without
// copying the payload.
func AppendDataHeader(dst []byte, n int) []byte { return appendHeader(dst, Data, n) }

// NextData splits the DATA frame at the start of b, as AppendData wrote
// it, from what follows: its payload (aliasing b) and the rest. ok is false
// when b does not start with a whole DATA frame. It checks no size limit:
// it reads frames this node encoded itself (fsm.Admit), not a peer's.
func NextData(b []byte) (payload, rest []byte, ok bool) {
	if len(b) < HeaderSize || Type(b[4]) != Data {
		return nil, b, false
	}
	n := int(binary.BigEndian.Uint32(b)) - 1
	if n < 0 || n > len(b)-HeaderSize {
		return nil, b, false
	}
	end := HeaderSize + n
	return b[HeaderSize:end:end], b[end:], true
}

// IsDataRun reports whether frames is whole DATA frames of size bytes each
// (header included), back to back: a run whose length someone else found
// (fsm.DataReceived.FrameSize) is checked by one load and two comparisons
// a frame, without parsing it.
func IsDataRun(frames []byte, size int) bool {
	if size < HeaderSize || len(frames) == 0 || len(frames)%size != 0 {
		return false
	}
	length := uint32(size - HeaderSize + 1) // the length word counts the type byte and the payload
	for at := 0; at+HeaderSize <= len(frames); at += size {
		if binary.BigEndian.Uint32(frames[at:]) != length || Type(frames[at+4]) != Data {
			return false
		}
	}
	return true
}

// DataRunFrameSize returns the length of each of the DATA frames back to
// back in frames (header included) when they all have the same length,
// else 0 (also when frames holds none, or bytes that are not whole DATA
// frames): what fsm.Action.FrameSize says of a run of received messages,
// as its checkers compute it.
func DataRunFrameSize(frames []byte) int {
	size := -1
	for len(frames) > 0 {
		_, rest, ok := NextData(frames)
		if !ok {
			return 0
		}
		if fl := len(frames) - len(rest); size < 0 {
			size = fl
		} else if fl != size {
			return 0
		}
		frames = rest
	}
	return max(size, 0)
}

// DataFrameSize is the encoded size of a DATA frame with n payload bytes.
func DataFrameSize(n int) int { return HeaderSize + n }

func appendHeader(dst []byte, t Type, bodyLen int) []byte {
	dst = binary.BigEndian.AppendUint32(dst, uint32(1+bodyLen))
	return append(dst, byte(t))
}

// ParseHeader checks the header at the start of b: the length against the
// max frame size, then, once the type byte is in, the type and the bound on
// its body (MaxBody). It returns the type with ok once the header is in and
// checks out, so a reader can refuse a frame, or size its buffer, before
// the body arrives; ok is false while the header is incomplete.
func (c Binary) ParseHeader(b []byte) (t Type, ok bool, err error) {
	if len(b) < 4 {
		return 0, false, nil
	}
	length := binary.BigEndian.Uint32(b)
	if length == 0 {
		return 0, false, fmt.Errorf("%w: zero length", ErrMalformedFrame)
	}
	if uint64(length) > uint64(c.maxFrame()) {
		return 0, false, fmt.Errorf("%w: %d bytes announced, limit %d", ErrFrameTooLarge, length, c.maxFrame())
	}
	if len(b) < HeaderSize {
		return 0, false, nil
	}
	// The type and its bound are checked at the header, not once the body
	// is in: a peer that announces a long HELLO or a frame of no known type
	// would otherwise have its reader buffer up to the max frame size for
	// nothing.
	t = Type(b[4])
	maxBody, known := MaxBody(t)
	if !known {
		return 0, false, fmt.Errorf("%w: unknown frame type 0x%02x", ErrMalformedFrame, uint8(t))
	}
	if maxBody >= 0 && int(length)-1 > maxBody {
		return 0, false, fmt.Errorf("%w: %s: %d body bytes announced, at most %d", ErrMalformedFrame, t, length-1, maxBody)
	}
	return t, true, nil
}

// ParseFrame implements Codec.
func (c Binary) ParseFrame(b []byte) (Frame, int, error) {
	t, ok, err := c.ParseHeader(b)
	if !ok {
		return Frame{}, 0, err
	}
	total := 4 + int(binary.BigEndian.Uint32(b))
	if len(b) < total {
		return Frame{}, 0, nil
	}
	f, err := parseBody(t, b[HeaderSize:total])
	if err != nil {
		return Frame{}, 0, err
	}
	return f, total, nil
}

// ParseData is ParseFrame for the frame most often parsed, a DATA frame:
// when b starts with a whole DATA frame within the size limit, it returns
// its payload (as ParseFrame would: a slice of b) and its encoded length,
// with ok; otherwise ok is false and the caller uses ParseFrame, which
// reports what is wrong or missing. It builds no Frame.
func (c Binary) ParseData(b []byte) (payload []byte, n int, ok bool) {
	if len(b) < HeaderSize || Type(b[4]) != Data {
		return nil, 0, false
	}
	length := binary.BigEndian.Uint32(b)
	if length == 0 || uint64(length) > uint64(c.maxFrame()) {
		return nil, 0, false
	}
	total := 4 + int(length)
	if len(b) < total {
		return nil, 0, false
	}
	return b[HeaderSize:total], total, true
}

// FrameLen reports the total encoded length of the frame starting at b, once
// its length prefix is complete, so a reader can size its buffer. ok is false
// while fewer than 4 bytes are available.
func FrameLen(b []byte) (n int, ok bool) {
	if len(b) < 4 {
		return 0, false
	}
	return 4 + int(binary.BigEndian.Uint32(b)), true
}

func parseBody(t Type, body []byte) (Frame, error) {
	f := Frame{Type: t}
	bad := func(why string) (Frame, error) {
		return Frame{}, fmt.Errorf("%w: %s: %s (%d body bytes)", ErrMalformedFrame, t, why, len(body))
	}
	switch t {
	case Hello:
		if len(body) < 1 {
			return bad("missing id length")
		}
		idLen := int(body[0])
		if idLen == 0 {
			return bad("empty id")
		}
		if len(body) < 1+idLen+8+4+2 {
			return bad("truncated")
		}
		f.ID = string(body[1 : 1+idLen])
		rest := body[1+idLen:]
		f.Incarnation = binary.BigEndian.Uint64(rest)
		f.MaxFrame = binary.BigEndian.Uint32(rest[8:])
		infoLen := int(binary.BigEndian.Uint16(rest[12:]))
		if infoLen > MaxInfoLen {
			return bad("info too long")
		}
		if len(rest) != 14+infoLen {
			return bad("length does not match fields")
		}
		f.Info = string(rest[14:])
	case Join, Welcome:
		if len(body) != 9 || body[8] > 1 {
			return bad("want 8-byte number and keep flag 0 or 1")
		}
		n := binary.BigEndian.Uint64(body)
		if t == Join {
			f.Closed = n
		} else {
			if n == 0 {
				return bad("session 0")
			}
			f.Sess = n
		}
		f.Keep = body[8] == 1
	case Keep:
		if len(body) != 1 || body[0] > 1 {
			return bad("want keep flag 0 or 1")
		}
		f.Keep = body[0] == 1
	case Ping:
		switch len(body) {
		case 0:
		case 24:
			f.Stamp = binary.BigEndian.Uint64(body)
			f.Echo = binary.BigEndian.Uint64(body[8:])
			f.Held = binary.BigEndian.Uint64(body[16:])
			if f.Stamp == 0 {
				return bad("PING stamp 0")
			}
		default:
			return bad("want an empty PING or stamp, echo and held (24 bytes)")
		}
	case Data:
		f.Payload = body
	case Ack:
		if len(body) != 17 || body[16] > 1 {
			return bad("want two 8-byte numbers and a flags byte 0 or 1")
		}
		f.Delivered = binary.BigEndian.Uint64(body)
		f.Credit = binary.BigEndian.Uint64(body[8:])
		f.Backlog = body[16] == 1
	case Resume:
		if len(body) != 8 {
			return bad("want an 8-byte sequence number")
		}
		if f.Next = binary.BigEndian.Uint64(body); f.Next == 0 {
			return bad("sequence number 0")
		}
	case Members:
		ms, err := parseMembers(body)
		if err != nil {
			return Frame{}, err
		}
		f.Members = &MemberList{Entries: ms}
	case Bye:
		if len(body) < 11 {
			return bad("truncated")
		}
		f.Code = Code(body[0])
		f.Sess = binary.BigEndian.Uint64(body[1:])
		textLen := int(binary.BigEndian.Uint16(body[9:]))
		if textLen > MaxTextLen || len(body) != 11+textLen {
			return bad("text length does not match")
		}
		f.Text = string(body[11:])
	default:
		return Frame{}, fmt.Errorf("%w: unknown frame type 0x%02x", ErrMalformedFrame, uint8(t))
	}
	return f, nil
}
