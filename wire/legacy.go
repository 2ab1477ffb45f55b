package wire

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"unicode/utf8"
)

// LegacyMaxHandshakeLine bounds a 0.4.1 message received before its
// session (the hello, the priority and the confirm): the largest valid one,
// a hello whose id and info are JSON-escaped at six bytes a byte, is under
// 9 KiB. A reader allows the max frame size only once the session exists,
// so that a peer that has proved nothing cannot make it buffer megabytes.
const LegacyMaxHandshakeLine = 16 << 10

// Legacy is the framing of masterless 0.4.1, the npm package
// (spec/LEGACY-0.4.1.md): no preamble, and each message one JSON value
// followed by CR LF.
//
// How an object is read depends on where the connection is in its handshake:
// after it, every JSON object is application data, even one shaped like a
// handshake message. The codec keeps no such state: the caller says where the
// connection is with Phase, from the state machine's view of it, before each
// ParseFrame (package link does so), as h11 picks its reader by state. The
// zero value parses a first message (PhaseHello) with DefaultMaxFrameSize.
//
// Messages map onto frames as follows (section 11.1 of the spec):
//
//	{"id":ID,"info":INFO} or {"id":ID}  HELLO (Incarnation 0; Info "" when absent)
//	  ... ,"inc":N}                      HELLO from a masterless-go node (Incarnation N)
//	{"priority":P}                      JOIN (Keep true; P via LegacyPriority)
//	{"confirm":true}                    WELCOME (Sess 1, Keep true)
//	[true] / [false]                    KEEP
//	true                                PING
//	any JSON object, once established   DATA (Payload is the object's text)
//
// A BYE encodes to nothing: 0.4.1 has no close reason, the FIN that follows
// says it all.
type Legacy struct {
	// MaxFrameSize bounds a received message, in bytes without the CR LF.
	MaxFrameSize int
	// Phase says how the next message is read.
	Phase LegacyPhase
}

// LegacyPhase is where a 0.4.1 connection is in its handshake, which decides
// how a JSON object received on it is read.
type LegacyPhase uint8

const (
	// LegacyPhaseHello: no message arrived yet; the first must be a HELLO.
	LegacyPhaseHello LegacyPhase = iota
	// LegacyPhaseHandshake: after the HELLO; an object is a priority (JOIN) or
	// a confirm (WELCOME).
	LegacyPhaseHandshake
	// LegacyPhaseEstablished: after the confirm; every object is DATA.
	LegacyPhaseEstablished
)

// Priorities the Go side may send in a legacy JOIN.
const (
	// LegacyPriorityMax makes the peer confirm our connection unless it
	// already has a session: what 0.4.1 sends when nothing competes.
	LegacyPriorityMax = 1.0
	// LegacyPriorityMin loses against every priority 0.4.1 draws, except an
	// exact 0.
	LegacyPriorityMin = math.SmallestNonzeroFloat64
)

// legacyMaxLeadingSpace bounds the whitespace DetectLegacy waits through.
const legacyMaxLeadingSpace = 64

var crlf = []byte("\r\n")

// Name implements Codec.
func (Legacy) Name() string { return "0.4.1" }

func (c Legacy) maxFrame() int {
	if c.MaxFrameSize <= 0 {
		return DefaultMaxFrameSize
	}
	return c.MaxFrameSize
}

// AppendPreamble implements Codec: 0.4.1 has no preamble.
func (Legacy) AppendPreamble(dst []byte) []byte { return dst }

// ParsePreamble implements Codec: 0.4.1 has no preamble.
func (Legacy) ParsePreamble([]byte) (int, error) { return 0, nil }

// LegacyPriority returns the 0.4.1 priority a legacy JOIN carries.
func LegacyPriority(f *Frame) float64 { return math.Float64frombits(f.Closed) }

// SetLegacyPriority stores a 0.4.1 priority in a JOIN for a legacy peer. It
// travels in Closed as its IEEE bits, which order like the numbers for the
// valid range [0, 1], so comparing Closed compares priorities. A 0.4.1 JOIN
// has no closed session to carry, and a field of its own would make every
// Frame, which every action of the state machine holds, 8 bytes larger.
func SetLegacyPriority(f *Frame, p float64) {
	if p == 0 {
		p = 0 // no -0
	}
	f.Closed = math.Float64bits(p)
}

// AppendFrame implements Codec. It fails for a frame 0.4.1 cannot carry: an
// id or info that is not valid UTF-8 or out of range, a priority outside
// [0, 1], a payload that is not one JSON object, or a frame type 0.4.1 lacks.
func (Legacy) AppendFrame(dst []byte, f *Frame) ([]byte, error) {
	switch f.Type {
	case Hello:
		if len(f.ID) == 0 || len(f.ID) > MaxIDLen || !utf8.ValidString(f.ID) ||
			len(f.Info) > MaxInfoLen || !utf8.ValidString(f.Info) {
			return dst, fmt.Errorf("%w: 0.4.1 HELLO needs a UTF-8 id of 1 to %d bytes and info of at most %d", ErrMalformedFrame, MaxIDLen, MaxInfoLen)
		}
		dst = append(dst, `{"id":`...)
		dst = appendJSONString(dst, f.ID)
		if f.Info != "" {
			dst = append(dst, `,"info":`...)
			dst = appendJSONString(dst, f.Info)
		}
		if f.Incarnation != 0 {
			// Only masterless-go nodes send "inc" (0.4.1 ignores unknown
			// fields): two Go nodes that meet over 0.4.1 recognise each
			// other by it and move to v1 (fsm/legacy.go, legacyUpgrade).
			dst = append(dst, `,"inc":`...)
			dst = strconv.AppendUint(dst, f.Incarnation, 10)
		}
		dst = append(dst, '}')
	case Join:
		p := LegacyPriority(f)
		if !(p >= 0 && p <= 1) {
			return dst, fmt.Errorf("%w: 0.4.1 priority %v outside [0, 1]", ErrMalformedFrame, p)
		}
		dst = append(dst, `{"priority":`...)
		dst = strconv.AppendFloat(dst, p, 'g', -1, 64)
		dst = append(dst, '}')
	case Welcome:
		dst = append(dst, `{"confirm":true}`...)
	case Keep:
		if f.Keep {
			dst = append(dst, "[true]"...)
		} else {
			dst = append(dst, "[false]"...)
		}
	case Ping:
		dst = append(dst, "true"...)
	case Data:
		if err := ValidLegacyPayload(f.Payload); err != nil {
			return dst, err
		}
		p := bytes.TrimLeft(f.Payload, jsonSpace)
		if bytes.ContainsAny(p, "\r\n") {
			var buf bytes.Buffer
			json.Compact(&buf, p) // valid, so no error; strings hold no raw CR or LF
			dst = append(dst, buf.Bytes()...)
		} else {
			dst = append(dst, bytes.TrimRight(p, jsonSpace)...)
		}
	case Bye:
		return dst, nil
	default:
		return dst, fmt.Errorf("%w: 0.4.1 has no %s", ErrMalformedFrame, f.Type)
	}
	return append(dst, crlf...), nil
}

const jsonSpace = " \t\r\n"

// ValidLegacyPayload reports, with an error wrapping ErrMalformedFrame, a
// payload that 0.4.1 cannot carry: anything but one JSON object (surrounding
// JSON whitespace allowed) in UTF-8. (json.Valid does not check UTF-8, and
// 0.4.1 decodes a line as UTF-8, so invalid bytes in a string reached it as
// U+FFFD: a black-box audit.)
func ValidLegacyPayload(payload []byte) error {
	p := bytes.TrimLeft(payload, jsonSpace)
	if len(p) == 0 || p[0] != '{' || !json.Valid(p) || !utf8.Valid(p) {
		return fmt.Errorf("%w: a 0.4.1 payload must be one JSON object, in UTF-8", ErrMalformedFrame)
	}
	return nil
}

func appendJSONString(dst []byte, s string) []byte {
	b, _ := json.Marshal(s) // a string always marshals
	return append(dst, b...)
}

// ParseFrame implements Codec. A message is everything up to the first CR LF,
// as 0.4.1's reader cuts it. It reports ErrFrameTooLarge as soon as more than
// MaxFrameSize bytes have arrived without a CR LF, so the caller never
// buffers more than MaxFrameSize+2 bytes for one message.
func (c Legacy) ParseFrame(b []byte) (Frame, int, error) {
	limit := c.maxFrame() + len(crlf)
	window := b
	if len(window) > limit {
		window = window[:limit]
	}
	i := bytes.Index(window, crlf)
	if i < 0 {
		if len(b) >= limit {
			return Frame{}, 0, fmt.Errorf("%w: no CR LF within %d bytes", ErrFrameTooLarge, c.maxFrame())
		}
		return Frame{}, 0, nil
	}
	f, err := c.parseValue(bytes.Trim(b[:i], jsonSpace))
	if err != nil {
		return Frame{}, 0, err
	}
	return f, i + len(crlf), nil
}

func (c Legacy) parseValue(v []byte) (Frame, error) {
	bad := func(why string) (Frame, error) {
		const show = 64
		s := v
		if len(s) > show {
			s = s[:show]
		}
		return Frame{}, fmt.Errorf("%w: 0.4.1 message %q: %s", ErrMalformedFrame, s, why)
	}
	if len(v) == 0 {
		return bad("empty line")
	}
	switch v[0] {
	case 't':
		if string(v) == "true" {
			return Frame{Type: Ping}, nil
		}
		return bad("not JSON")
	case '[':
		var k []bool
		if err := json.Unmarshal(v, &k); err != nil || len(k) != 1 {
			return bad("a keep message is [true] or [false]")
		}
		return Frame{Type: Keep, Keep: k[0]}, nil
	case '{':
		if c.Phase == LegacyPhaseEstablished {
			if !json.Valid(v) {
				return bad("not JSON")
			}
			return Frame{Type: Data, Payload: v}, nil
		}
		return c.parseHandshake(v, bad)
	}
	if !json.Valid(v) {
		return bad("not JSON")
	}
	return bad("0.4.1 sends only objects, arrays and true")
}

// parseHandshake classifies an object received before the handshake ended,
// in the order 0.4.1 tests it (lib/masterless.js L546, L631, L778, L861).
func (c Legacy) parseHandshake(v []byte, bad func(string) (Frame, error)) (Frame, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(v, &m); err != nil {
		return bad("not JSON")
	}
	if c.Phase == LegacyPhaseHello {
		id, ok := m["id"]
		if !ok || !jsTruthy(id) {
			return bad("the first message must carry an id")
		}
		f := Frame{Type: Hello}
		if err := json.Unmarshal(id, &f.ID); err != nil || len(f.ID) > MaxIDLen {
			return bad(fmt.Sprintf("the id must be a string of 1 to %d bytes", MaxIDLen))
		}
		if info, ok := m["info"]; ok && string(info) != "null" {
			if err := json.Unmarshal(info, &f.Info); err != nil || len(f.Info) > MaxInfoLen {
				return bad(fmt.Sprintf("info must be a string of at most %d bytes", MaxInfoLen))
			}
		}
		if inc, ok := m["inc"]; ok {
			if err := json.Unmarshal(inc, &f.Incarnation); err != nil {
				return bad("inc must be an unsigned integer")
			}
		}
		return f, nil
	}
	if raw, ok := m["priority"]; ok && len(raw) > 0 && (raw[0] == '-' || raw[0] >= '0' && raw[0] <= '9') {
		p, err := strconv.ParseFloat(string(raw), 64)
		if err != nil || !(p >= 0 && p <= 1) {
			return bad("priority outside [0, 1]")
		}
		f := Frame{Type: Join, Keep: true}
		SetLegacyPriority(&f, p)
		return f, nil
	}
	if confirm, ok := m["confirm"]; ok && jsTruthy(confirm) {
		return Frame{Type: Welcome, Sess: 1, Keep: true}, nil
	}
	return bad("expected a priority or a confirm")
}

// jsTruthy reports whether the JSON value v is truthy in JavaScript.
func jsTruthy(v json.RawMessage) bool {
	switch s := string(v); {
	case s == "false", s == "null", s == `""`:
		return false
	case len(s) > 0 && (s[0] == '-' || s[0] >= '0' && s[0] <= '9'):
		f, err := strconv.ParseFloat(s, 64)
		return err == nil && f != 0
	}
	return true
}

// DetectLegacy tells from the first bytes of an accepted connection which
// protocol the dialer speaks: masterless 0.4.1 starts with '{' (JSON
// whitespace before it is tolerated), v1 with the magic "MLSS". decided is
// false while first holds only whitespace (up to a small bound). Anything
// else is decided as v1, whose codec then rejects it with ErrBadMagic.
//
// An acceptor that serves both protocols must read these bytes before it
// writes its v1 preamble.
func DetectLegacy(first []byte) (legacy, decided bool) {
	for i, b := range first {
		switch b {
		case ' ', '\t', '\r', '\n':
			if i >= legacyMaxLeadingSpace {
				return false, true
			}
		case '{':
			return true, true
		default:
			return false, true
		}
	}
	return false, false
}
