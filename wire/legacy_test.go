package wire

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"
)

// Byte sequences captured from masterless 0.4.1 (spec/LEGACY-0.4.1.md, section 9).
const (
	capDialerHello   = "{\"id\":\"aaa\",\"info\":\"tcp://127.0.0.1:37387\"}\r\n"
	capAcceptorHello = "{\"id\":\"bbb\"}\r\n"
	capPriority1     = "{\"priority\":1}\r\n"
	capPriorityRand  = "{\"priority\":0.5150799122708729}\r\n"
	capConfirm       = "{\"confirm\":true}\r\n"
	capDataKeep      = "{\"from\":\"bbb\",\"n\":0}\r\n[false]\r\n"
	capHeartbeat     = "true\r\n"
)

// parseAll parses every whole frame in b.
func parseAll(t *testing.T, c *Legacy, b string) []Frame {
	t.Helper()
	var out []Frame
	buf := []byte(b)
	for len(buf) > 0 {
		f, n, err := c.ParseFrame(buf)
		if err != nil {
			t.Fatalf("ParseFrame(%q): %v", buf, err)
		}
		if n == 0 {
			t.Fatalf("ParseFrame(%q): incomplete", buf)
		}
		out = append(out, f)
		buf = buf[n:]
		// Advance the phase as the state machine would (package link).
		switch f.Type {
		case Hello:
			c.Phase = LegacyPhaseHandshake
		case Welcome:
			c.Phase = LegacyPhaseEstablished
		}
	}
	return out
}

func TestLegacyParseCapturedDialerSide(t *testing.T) {
	// What a Go dialer receives from a 0.4.1 acceptor.
	var c Legacy
	got := parseAll(t, &c, capAcceptorHello+capConfirm+capDataKeep+capHeartbeat+"{\"id\":\"x\",\"confirm\":true}\r\n")
	want := []Frame{
		{Type: Hello, ID: "bbb"},
		{Type: Welcome, Sess: 1, Keep: true},
		{Type: Data, Payload: []byte(`{"from":"bbb","n":0}`)},
		{Type: Keep, Keep: false},
		{Type: Ping},
		// After the handshake a handshake-shaped object is data.
		{Type: Data, Payload: []byte(`{"id":"x","confirm":true}`)},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got  %+v\nwant %+v", got, want)
	}
}

func TestLegacyParseCapturedAcceptorSide(t *testing.T) {
	// What a Go acceptor receives from a 0.4.1 dialer, and what it sends back.
	var c Legacy
	got := parseAll(t, &c, capDialerHello+capPriorityRand)
	if len(got) != 2 || got[0].Type != Hello || got[0].ID != "aaa" || got[0].Info != "tcp://127.0.0.1:37387" {
		t.Fatalf("hello: %+v", got)
	}
	if got[1].Type != Join || LegacyPriority(&got[1]) != 0.5150799122708729 || !got[1].Keep {
		t.Fatalf("join: %+v (priority %v)", got[1], LegacyPriority(&got[1]))
	}
	if c.Phase != LegacyPhaseHandshake {
		t.Fatalf("phase %d before the confirm", c.Phase)
	}
	var out []byte
	for _, f := range []Frame{{Type: Hello, ID: "bbb"}, {Type: Welcome, Sess: 7}, {Type: Keep, Keep: true}} {
		var err error
		if out, err = c.AppendFrame(out, &f); err != nil {
			t.Fatal(err)
		}
	}
	if want := capAcceptorHello + capConfirm + "[true]\r\n"; string(out) != want {
		t.Fatalf("sent %q, want %q", out, want)
	}
	c.Phase = LegacyPhaseEstablished // the acceptor's fsm is established once it confirms
	got = parseAll(t, &c, "{\"priority\":1}\r\n")
	if got[0].Type != Data {
		t.Fatalf("after the confirm a priority-shaped object is data, got %+v", got[0])
	}
}

func TestLegacyAppendMatchesCapture(t *testing.T) {
	var c Legacy
	join := Frame{Type: Join}
	SetLegacyPriority(&join, 1)
	joinRand := Frame{Type: Join}
	SetLegacyPriority(&joinRand, 0.5150799122708729)
	cases := []struct {
		f    Frame
		want string
	}{
		{Frame{Type: Hello, ID: "aaa", Info: "tcp://127.0.0.1:37387"}, capDialerHello},
		// A masterless-go node adds its incarnation, which 0.4.1 ignores.
		{Frame{Type: Hello, ID: "aaa", Info: "tcp://127.0.0.1:37387", Incarnation: 99}, strings.TrimSuffix(capDialerHello, "}\r\n") + ",\"inc\":99}\r\n"},
		{Frame{Type: Hello, ID: "bbb"}, capAcceptorHello},
		{join, capPriority1},
		{joinRand, capPriorityRand},
		{Frame{Type: Keep, Keep: false}, "[false]\r\n"},
		{Frame{Type: Ping}, capHeartbeat},
		{Frame{Type: Data, Payload: []byte(`{"from":"bbb","n":0}`)}, "{\"from\":\"bbb\",\"n\":0}\r\n"},
		{Frame{Type: Data, Payload: []byte(" {\"a\":\r\n [1, 2],\n\"s\":\"x\\r\\ny\"}\n")}, "{\"a\":[1,2],\"s\":\"x\\r\\ny\"}\r\n"},
		{Frame{Type: Bye, Code: CodeDuplicate, Text: "dup"}, ""},
		{Frame{Type: Welcome, Sess: 1}, capConfirm},
	}
	for _, tc := range cases {
		got, err := c.AppendFrame(nil, &tc.f)
		if err != nil || string(got) != tc.want {
			t.Errorf("AppendFrame(%s) = %q, %v; want %q", tc.f.String(), got, err, tc.want)
		}
	}
	min := Frame{Type: Join}
	SetLegacyPriority(&min, LegacyPriorityMin)
	got, _ := c.AppendFrame(nil, &min)
	if string(got) != "{\"priority\":5e-324}\r\n" {
		t.Errorf("min priority encodes as %q", got)
	}
}

func TestLegacyAppendRefuses(t *testing.T) {
	var c Legacy
	badJoin := Frame{Type: Join}
	SetLegacyPriority(&badJoin, 1.5)
	nanJoin := Frame{Type: Join, Closed: math.Float64bits(math.NaN())}
	for _, f := range []Frame{
		{Type: Hello},
		{Type: Hello, ID: "\xff"},
		{Type: Hello, ID: strings.Repeat("x", MaxIDLen+1)},
		{Type: Hello, ID: "a", Info: strings.Repeat("x", MaxInfoLen+1)},
		badJoin, nanJoin,
		{Type: Data, Payload: []byte(`[1]`)},
		{Type: Data, Payload: []byte(`null`)},
		{Type: Data, Payload: []byte(`{"a":`)},
		{Type: Data, Payload: []byte("{\"bad\":\"\xff\xfe\"}")}, // json.Valid, but not UTF-8
		{Type: Data, Payload: []byte("{\"\xc3\":1}")},           // a UTF-8 sequence cut short, in a key
		{Type: Data},
		{Type: Type(0x42)},
	} {
		if out, err := c.AppendFrame([]byte("x"), &f); !errors.Is(err, ErrMalformedFrame) || string(out) != "x" {
			t.Errorf("AppendFrame(%s) = %q, %v; want ErrMalformedFrame and dst unchanged", f.String(), out, err)
		}
	}
}

func TestLegacyParseErrors(t *testing.T) {
	cases := []struct {
		name, pre, in string
	}{
		{"empty line", "", "\r\n"},
		{"spaces only", "", "  \r\n"},
		{"not json", "", "MLSS\x00\x01\x00\x00\r\n"},
		{"first without id", "", "{}\r\n"},
		{"falsy id", "", "{\"id\":\"\"}\r\n"},
		{"zero id", "", "{\"id\":0}\r\n"},
		{"number id", "", "{\"id\":5}\r\n"},
		{"bad info", "", "{\"id\":\"a\",\"info\":5}\r\n"},
		{"null", "", "null\r\n"},
		{"false", "", "false\r\n"},
		{"number", "", "1\r\n"},
		{"string", "", "\"x\"\r\n"},
		{"trueish", "", "truex\r\n"},
		{"keep of two", "", "[true,false]\r\n"},
		{"keep of number", "", "[1]\r\n"},
		{"second hello", capAcceptorHello, "{\"id\":\"b\"}\r\n"},
		{"priority string", capAcceptorHello, "{\"priority\":\"1\"}\r\n"},
		{"priority high", capAcceptorHello, "{\"priority\":2}\r\n"},
		{"priority negative", capAcceptorHello, "{\"priority\":-0.5}\r\n"},
		{"confirm false", capAcceptorHello, "{\"confirm\":false}\r\n"},
		{"confirm zero", capAcceptorHello, "{\"confirm\":0}\r\n"},
		{"bad object", capAcceptorHello + capConfirm, "{\"a\":}\r\n"},
	}
	for _, tc := range cases {
		var c Legacy
		parseAll(t, &c, tc.pre)
		f, n, err := c.ParseFrame([]byte(tc.in))
		if !errors.Is(err, ErrMalformedFrame) || n != 0 {
			t.Errorf("%s: ParseFrame(%q) = %+v, %d, %v; want ErrMalformedFrame", tc.name, tc.in, f, n, err)
		}
	}
}

func TestLegacyParseLenient(t *testing.T) {
	// 0.4.1 tests truthiness and accepts JSON whitespace.
	var c Legacy
	got := parseAll(t, &c, " {\"id\":\"a\",\"info\":null}\r\n{\"priority\":-0}\r\n{\"confirm\":1}\r\n [ true ] \r\n\ttrue\r\n")
	if got[0].ID != "a" || got[0].Info != "" {
		t.Errorf("hello %+v", got[0])
	}
	if got[1].Type != Join || got[1].Closed != 0 {
		t.Errorf("priority -0 gives %+v, want Closed 0", got[1])
	}
	if got[2].Type != Welcome || got[3].Type != Keep || !got[3].Keep || got[4].Type != Ping {
		t.Errorf("got %+v", got[2:])
	}
}

func TestLegacyParsePartialAndSplitCRLF(t *testing.T) {
	var c Legacy
	msg := []byte(capDialerHello)
	for i := 0; i < len(msg); i++ {
		if f, n, err := c.ParseFrame(msg[:i]); n != 0 || err != nil {
			t.Fatalf("prefix %q: %+v, %d, %v; want incomplete", msg[:i], f, n, err)
		}
	}
	if _, n, err := c.ParseFrame(msg); n != len(msg) || err != nil {
		t.Fatalf("whole: %d, %v", n, err)
	}
	// A lone CR or LF does not end a message.
	var d Legacy
	if _, n, err := d.ParseFrame([]byte("{\"id\":\"a\"}\r")); n != 0 || err != nil {
		t.Fatalf("CR alone: %d, %v", n, err)
	}
	if _, n, err := d.ParseFrame([]byte("{\"id\":\"a\"}\n")); n != 0 || err != nil {
		t.Fatalf("LF alone: %d, %v", n, err)
	}
}

func TestLegacyFrameSizeLimit(t *testing.T) {
	c := Legacy{MaxFrameSize: 16}
	exact := `{"id":"` + strings.Repeat("a", 16-9) + `"}`
	if len(exact) != 16 {
		t.Fatal(len(exact))
	}
	if f, n, err := c.ParseFrame([]byte(exact + "\r\n")); err != nil || n != 18 || f.ID != strings.Repeat("a", 7) {
		t.Fatalf("16-byte message: %+v, %d, %v", f, n, err)
	}
	// 17 bytes and no CR LF yet: undecided until byte 18 arrives.
	long := []byte(exact + "x")
	if _, n, err := c.ParseFrame(long); n != 0 || err != nil {
		t.Fatalf("17 bytes: %d, %v; want incomplete", n, err)
	}
	for _, tail := range []string{"x", "\r", "\r\n"} {
		if _, _, err := c.ParseFrame(append(long, tail...)); !errors.Is(err, ErrFrameTooLarge) {
			t.Errorf("17-byte message + %q: %v; want ErrFrameTooLarge", tail, err)
		}
	}
	// The limit applies to the first message, not to what follows it.
	var d Legacy
	d.MaxFrameSize = 16
	buf := append([]byte(exact+"\r\n"), bytes.Repeat([]byte("y"), 100)...)
	if _, n, err := d.ParseFrame(buf); n != 18 || err != nil {
		t.Fatalf("message followed by junk: %d, %v", n, err)
	}
}

func TestDetectLegacy(t *testing.T) {
	cases := []struct {
		in              string
		legacy, decided bool
	}{
		{"", false, false},
		{" ", false, false},
		{"\r\n\t ", false, false},
		{"{", true, true},
		{"{\"id\"", true, true},
		{"  \r\n{", true, true},
		{"M", false, true},
		{"MLSS\x00\x01\x00\x00", false, true},
		{"GET / HTTP/1.1\r\n", false, true},
		{"\x00", false, true},
		{"[true]", false, true},
		{strings.Repeat(" ", legacyMaxLeadingSpace) + "{", true, true},
		{strings.Repeat(" ", legacyMaxLeadingSpace+1), false, true},
	}
	for _, tc := range cases {
		legacy, decided := DetectLegacy([]byte(tc.in))
		if legacy != tc.legacy || decided != tc.decided {
			t.Errorf("DetectLegacy(%q) = %v, %v; want %v, %v", tc.in, legacy, decided, tc.legacy, tc.decided)
		}
	}
	var v1 Binary
	legacy, decided := DetectLegacy(v1.AppendPreamble(nil))
	if legacy || !decided {
		t.Errorf("v1 preamble detected as legacy=%v decided=%v", legacy, decided)
	}
}

func TestLegacyImplementsCodec(t *testing.T) {
	var c Codec = Legacy{}
	if c.Name() != "0.4.1" || len(c.AppendPreamble(nil)) != 0 {
		t.Fatal("preamble")
	}
	if n, err := c.ParsePreamble([]byte("{")); n != 0 || err != nil {
		t.Fatal("ParsePreamble")
	}
}

// FuzzLegacyParse feeds arbitrary bytes to a connection's codec, as a peer
// would, in each handshake phase: it must never panic, never claim more bytes
// than it got, respect the size limit, and every frame it returns must encode
// back to bytes that parse to the same frame.
func FuzzLegacyParse(f *testing.F) {
	for _, s := range []string{
		capDialerHello + capPriorityRand,
		capAcceptorHello + capConfirm + capDataKeep + capHeartbeat,
		"{\"id\":\"a\",\"info\":null}\r\n{\"priority\":5e-324}\r\n",
		"{}\r\n", "null\r\n", "\r\n", "[true]\r\n", "{\"confirm\":1}\r\n",
		"MLSS\x00\x01\x00\x00\x00\x00\x00\x01\x05",
		"{\"a\":\"\\u0000\\r\\n\",\"b\":[1,{\"c\":null}]}\r\n",
	} {
		f.Add([]byte(s), uint8(0))
		f.Add([]byte(s), uint8(1))
		f.Add([]byte(s), uint8(2))
	}
	f.Fuzz(func(t *testing.T, data []byte, phase uint8) {
		c := Legacy{MaxFrameSize: 256}
		c.Phase = LegacyPhase(phase % 3)
		buf := data
		for len(buf) > 0 {
			fr, n, err := c.ParseFrame(buf)
			if err != nil {
				if n != 0 {
					t.Fatalf("error %v with n=%d", err, n)
				}
				if errors.Is(err, ErrFrameTooLarge) && bytes.Contains(buf[:min(len(buf), 258)], crlf) {
					t.Fatalf("too large although a CR LF is within the limit: %q", buf)
				}
				return
			}
			if n == 0 {
				if len(buf) >= 258 {
					t.Fatalf("incomplete with %d bytes buffered, limit 256", len(buf))
				}
				return
			}
			if n > len(buf) || n < 2 || string(buf[n-2:n]) != "\r\n" {
				t.Fatalf("n=%d for %q", n, buf)
			}
			// Re-encode with a codec in the same phase and parse again.
			var enc Legacy
			dec := Legacy{Phase: c.Phase}
			out, err := enc.AppendFrame(nil, &fr)
			if err != nil {
				if fr.Type == Hello && !isUTF8(fr.ID, fr.Info) {
					buf = buf[n:]
					continue // JSON can carry what UTF-8 cannot; 0.4.1 ids are JS strings
				}
				if fr.Type == Data && !utf8.Valid(fr.Payload) {
					// Received as it came (a peer's bytes are its own), but
					// never sent: a 0.4.1 node would read U+FFFD in their
					// place (ValidLegacyPayload).
					buf = buf[n:]
					continue
				}
				t.Fatalf("re-encoding %s: %v", fr.String(), err)
			}
			back, m, err := dec.ParseFrame(out)
			if err != nil || m != len(out) {
				t.Fatalf("re-parsing %q (from %s): %v, %d", out, fr.String(), err, m)
			}
			if fr.Type == Data {
				// Compare as compact JSON: the re-encoding may drop whitespace.
				if !bytes.Equal(compactJSON(t, back.Payload), compactJSON(t, fr.Payload)) {
					t.Fatalf("payload %q became %q", fr.Payload, back.Payload)
				}
				back.Payload, fr.Payload = nil, nil
			}
			if !reflect.DeepEqual(back, fr) {
				t.Fatalf("frame %+v became %+v via %q", fr, back, out)
			}
			buf = buf[n:]
		}
	})
}

func isUTF8(ss ...string) bool {
	for _, s := range ss {
		if !utf8.ValidString(s) {
			return false
		}
	}
	return true
}

func compactJSON(t *testing.T, b []byte) []byte {
	var buf bytes.Buffer
	if err := json.Compact(&buf, b); err != nil {
		t.Fatalf("payload %q is not JSON: %v", b, err)
	}
	return buf.Bytes()
}

func TestLegacyHelloIncarnation(t *testing.T) {
	var c Legacy
	f, _, err := c.ParseFrame([]byte("{\"id\":\"go-node\",\"inc\":18446744073709551615}\r\n"))
	if err != nil || f.Type != Hello || f.Incarnation != 1<<64-1 {
		t.Fatalf("got %s, %v; want HELLO with the full 64-bit incarnation", f.String(), err)
	}
	var c2 Legacy
	if _, _, err := c2.ParseFrame([]byte("{\"id\":\"x\",\"inc\":\"soon\"}\r\n")); !errors.Is(err, ErrMalformedFrame) {
		t.Fatalf("a non-numeric inc: got %v, want ErrMalformedFrame", err)
	}
}
