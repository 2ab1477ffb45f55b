package wire

import (
	"bytes"
	"encoding/binary"
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func sampleFrames() []Frame {
	return []Frame{
		{Type: Hello, ID: "node-a", Incarnation: 1<<63 + 5, Info: "tcp://127.0.0.1:4000", MaxFrame: 16 << 20},
		{Type: Hello, ID: string(bytes.Repeat([]byte{'x'}, MaxIDLen)), Incarnation: 0, Info: ""},
		{Type: Join, Closed: 7, Keep: true},
		{Type: Join, Closed: 0, Keep: false},
		{Type: Welcome, Sess: 1, Keep: true},
		{Type: Keep, Keep: true},
		{Type: Keep, Keep: false},
		{Type: Ping},
		{Type: Ping, Stamp: 1<<40 + 7, Echo: 1 << 39, Held: 500},
		{Type: Ping, Stamp: 1},
		{Type: Data, Payload: []byte("hello")},
		{Type: Data, Payload: []byte{}},
		{Type: Bye, Code: CodeDuplicate, Sess: 3, Text: "duplicate"},
		{Type: Bye, Code: CodeShutdown},
		{Type: Ack, Delivered: 1<<40 + 3, Credit: 1 << 62},
		{Type: Ack},
		{Type: Ack, Delivered: 5, Credit: 1 << 20, Backlog: true},
		{Type: Resume, Next: 1},
		{Type: Resume, Next: 1<<64 - 1},
		MembersFrame([]Member{{ID: "a", Incarnation: 7, Addr: "tcp://127.0.0.1:4000"}}),
		MembersFrame([]Member{{ID: "b", Incarnation: 1 << 60, State: MemberLeft}, {ID: "c", Incarnation: 2, Addr: "tcp://c:1"}}),
	}
}

func TestRoundTripEveryFrameType(t *testing.T) {
	var c Binary
	for _, f := range sampleFrames() {
		b, err := c.AppendFrame(nil, &f)
		require.NoError(t, err, f.String())
		got, n, err := c.ParseFrame(b)
		require.NoError(t, err, f.String())
		require.Equal(t, len(b), n)
		if f.Type == Data && len(f.Payload) == 0 {
			require.Empty(t, got.Payload)
			continue
		}
		require.Equal(t, f, got)
	}
}

func TestParseWaitsForWholeFrame(t *testing.T) {
	var c Binary
	b, err := c.AppendFrame(nil, &Frame{Type: Hello, ID: "a", Incarnation: 9, Info: "tcp://x:1"})
	require.NoError(t, err)
	for i := range len(b) {
		f, n, err := c.ParseFrame(b[:i])
		require.NoError(t, err, "prefix of %d bytes", i)
		require.Zero(t, n)
		require.Zero(t, f.Type)
	}
}

func TestOversizedLengthRejectedBeforeBody(t *testing.T) {
	c := Binary{MaxFrameSize: 1024}
	hdr := binary.BigEndian.AppendUint32(nil, 1025)
	_, _, err := c.ParseFrame(hdr) // only the prefix: nothing to allocate yet
	require.ErrorIs(t, err, ErrFrameTooLarge)
	hdr = binary.BigEndian.AppendUint32(nil, 0xFFFFFFFF)
	_, _, err = Binary{}.ParseFrame(hdr)
	require.ErrorIs(t, err, ErrFrameTooLarge)
}

// TestTypeBoundCheckedAtHeader: a frame of unknown type, or one longer
// than its type allows, is refused from its 5-byte header, before its body
// arrives (a black-box audit: a HELLO header announcing 16 MiB made the
// reader buffer megabytes before the peer had proved anything). Every
// frame a node can encode stays within its type's bound.
func TestTypeBoundCheckedAtHeader(t *testing.T) {
	c := Binary{} // the default max frame size, 16 MiB
	header := func(ty Type, body int) []byte {
		return append(binary.BigEndian.AppendUint32(nil, uint32(1+body)), byte(ty))
	}
	for ty := Type(0); ty <= LastType+1; ty++ {
		maxBody, known := MaxBody(ty)
		_, n, err := c.ParseFrame(header(ty, 1<<20))
		require.Zero(t, n)
		switch {
		case !known:
			require.ErrorIs(t, err, ErrMalformedFrame, "%s", ty)
		case maxBody < 0: // DATA: bounded by the max frame size only
			require.NoError(t, err, "%s", ty)
		default:
			require.ErrorIs(t, err, ErrMalformedFrame, "%s", ty)
			_, _, err = c.ParseFrame(header(ty, maxBody)) // at the bound: wait for the body
			require.NoError(t, err, "%s", ty)
		}
	}
	long := strings.Repeat("x", MaxIDLen)
	info := strings.Repeat("i", MaxInfoLen)
	text := strings.Repeat("t", MaxTextLen)
	largest := []Frame{
		{Type: Hello, ID: long, Incarnation: 1, MaxFrame: 1, Info: info},
		{Type: Bye, Code: CodeProtocol, Sess: 1, Text: text},
		{Type: Ping, Stamp: 1, Echo: 2, Held: 3},
		{Type: Ack, Delivered: 1, Credit: 2, Backlog: true},
	}
	ms := make([]Member, MaxMembersPerFrame)
	for i := range ms {
		ms[i] = Member{ID: long, Incarnation: 1, Addr: info}
	}
	largest = append(largest, Frame{Type: Members, Members: &MemberList{Entries: ms}})
	for _, f := range largest {
		b, err := c.AppendFrame(nil, &f)
		require.NoError(t, err, f.Type.String())
		maxBody, _ := MaxBody(f.Type)
		require.Equal(t, maxBody, len(b)-HeaderSize, "%s: the largest encodable body is the bound", f.Type)
		_, n, err := c.ParseFrame(b)
		require.NoError(t, err, f.Type.String())
		require.Equal(t, len(b), n)
	}
}

func TestMalformedFrames(t *testing.T) {
	frame := func(t Type, body ...byte) []byte {
		return append(binary.BigEndian.AppendUint32(nil, uint32(1+len(body))), append([]byte{byte(t)}, body...)...)
	}
	cases := map[string][]byte{
		"zero length":        {0, 0, 0, 0},
		"unknown type":       frame(0x7f),
		"type zero":          frame(0),
		"hello empty id":     frame(Hello, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0),
		"hello truncated":    frame(Hello, 5, 'a'),
		"hello info too big": frame(Hello, append([]byte{1, 'a', 0, 0, 0, 0, 0, 0, 0, 1}, 0xff, 0xff)...),
		"hello trailing":     frame(Hello, 1, 'a', 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 'z'),
		"join short":         frame(Join, 1, 2),
		"join bad keep":      frame(Join, 0, 0, 0, 0, 0, 0, 0, 1, 2),
		"welcome sess 0":     frame(Welcome, 0, 0, 0, 0, 0, 0, 0, 0, 1),
		"keep bad flag":      frame(Keep, 7),
		"ping with body":     frame(Ping, 1),
		"ping stamp 0":       frame(Ping, make([]byte, 24)...),
		"ping short stamp":   frame(Ping, make([]byte, 16)...),
		"bye truncated":      frame(Bye, 1),
		"ack without flags":  frame(Ack, make([]byte, 16)...),
		"ack unknown flag":   frame(Ack, append(make([]byte, 16), 2)...),
		"bye text mismatch":  frame(Bye, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 9, 'a'),
		"members empty":      frame(Members),
		"members count 0":    frame(Members, 0, 0),
		"members too many":   frame(Members, 0x01, 0x01),
		"members cannot fit": frame(Members, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 'a', 0, 0),
		"members bad state":  frame(Members, 0, 1, 2, 0, 0, 0, 0, 0, 0, 0, 1, 1, 'a', 0, 0),
		"members empty id":   frame(Members, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0),
		"members addr long":  frame(Members, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 'a', 0xff, 0xff),
		"members addr short": frame(Members, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 'a', 0, 3, 'x'),
		"members trailing":   frame(Members, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 'a', 0, 0, 'z'),
	}
	for name, b := range cases {
		_, _, err := Binary{}.ParseFrame(b)
		require.ErrorIs(t, err, ErrMalformedFrame, name)
	}
}

func TestPreamble(t *testing.T) {
	var c Binary
	p := c.AppendPreamble(nil)
	require.Len(t, p, PreambleSize)
	n, err := c.ParsePreamble(p)
	require.NoError(t, err)
	require.Equal(t, PreambleSize, n)

	n, err = c.ParsePreamble(p[:5])
	require.NoError(t, err)
	require.Zero(t, n, "undecided until 8 bytes")

	_, err = c.ParsePreamble([]byte("GET / HTTP/1.1"))
	require.ErrorIs(t, err, ErrBadMagic)
	_, err = c.ParsePreamble([]byte{'M', 'X'})
	require.ErrorIs(t, err, ErrBadMagic, "fails on the first wrong byte")

	for _, v := range []byte{1, 3} { // v1 peers have no flow control: refused
		_, err = c.ParsePreamble(append([]byte("MLSS"), 0, v, 0, 0))
		require.ErrorIs(t, err, ErrVersionMismatch)
		require.False(t, errors.Is(err, ErrBadMagic))
	}
}

// A preamble's reserved field carries feature bits; a reader that knows
// none (Features 0) still accepts it, as a v2 node without discovery does.
func TestPreambleFeatures(t *testing.T) {
	p := Binary{Features: FeatureMembers}.AppendPreamble(nil)
	require.Len(t, p, PreambleSize)
	n, err := Binary{}.ParsePreamble(p)
	require.NoError(t, err)
	require.Equal(t, PreambleSize, n)
	require.Equal(t, FeatureMembers, PreambleFeatures(p))
	require.Zero(t, PreambleFeatures(Binary{}.AppendPreamble(nil)))
	require.Zero(t, PreambleFeatures(p[:7]), "too short to say")
}

// MembersSize is exactly what AppendFrame writes, so a sender can split a
// view below a frame limit.
func TestMembersSize(t *testing.T) {
	ms := []Member{{ID: "node-1", Incarnation: 3, Addr: "tcp://h:1"}, {ID: "x", State: MemberLeft}}
	b, err := Binary{}.AppendFrame(nil, ptr(MembersFrame(ms)))
	require.NoError(t, err)
	require.Equal(t, len(b), MembersSize(ms))
}

func TestEncodeRefusesBadFields(t *testing.T) {
	_, err := Binary{}.AppendFrame(nil, &Frame{Type: Hello, ID: ""})
	require.ErrorIs(t, err, ErrMalformedFrame)
	_, err = Binary{}.AppendFrame(nil, &Frame{Type: Welcome})
	require.ErrorIs(t, err, ErrMalformedFrame)
	_, err = Binary{}.AppendFrame(nil, &Frame{Type: 99})
	require.ErrorIs(t, err, ErrMalformedFrame)
	_, err = Binary{}.AppendFrame(nil, &Frame{Type: Members})
	require.ErrorIs(t, err, ErrMalformedFrame, "no entries")
	_, err = Binary{}.AppendFrame(nil, ptr(MembersFrame(make([]Member, MaxMembersPerFrame+1))))
	require.ErrorIs(t, err, ErrMalformedFrame, "too many entries")
	_, err = Binary{}.AppendFrame(nil, ptr(MembersFrame([]Member{{ID: "a", State: 9}})))
	require.ErrorIs(t, err, ErrMalformedFrame, "unknown state")
}

// FuzzParseFrame: no input panics; whatever parses re-encodes to the same bytes.
func FuzzParseFrame(f *testing.F) {
	var c Binary
	for _, fr := range sampleFrames() {
		b, _ := c.AppendFrame(nil, &fr)
		f.Add(b)
	}
	f.Add([]byte{0, 0, 0, 0})
	f.Add([]byte{0, 0, 0, 0, byte(Data)})
	f.Add([]byte{0, 0, 0, 3, byte(Data), 'x'})
	f.Add([]byte{0, 1, 0, 1, byte(Data), 'x'})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 1})
	f.Fuzz(func(t *testing.T, b []byte) {
		codec := Binary{MaxFrameSize: 1 << 16}
		fr, n, err := codec.ParseFrame(b)
		// ParseData takes exactly the whole DATA frames ParseFrame parses.
		p, k, ok := codec.ParseData(b)
		whole := err == nil && n > 0 && fr.Type == Data
		if ok != whole || ok && (k != n || !bytes.Equal(p, fr.Payload) || len(p) > 0 && &p[0] != &b[5]) {
			t.Fatalf("ParseData gave %q, %d, %t; ParseFrame %s, %d, %v", p, k, ok, fr.String(), n, err)
		}
		if err != nil || n == 0 {
			return
		}
		again, err := codec.AppendFrame(nil, &fr)
		if err != nil {
			t.Fatalf("parsed %s but cannot re-encode: %v", fr.String(), err)
		}
		if !bytes.Equal(again, b[:n]) {
			t.Fatalf("re-encoding %s gave % x, want % x", fr.String(), again, b[:n])
		}
	})
}

// FuzzParsePreamble: no input panics, and only the exact v1 preamble passes.
func FuzzParsePreamble(f *testing.F) {
	f.Add(Binary{}.AppendPreamble(nil))
	f.Add([]byte("MLSS\x00\x02\x00\x00"))
	f.Add([]byte(`{"id":"x"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		n, err := Binary{}.ParsePreamble(b)
		if err == nil && n == PreambleSize && !bytes.Equal(b[:4], []byte("MLSS")) {
			t.Fatalf("accepted % x", b[:n])
		}
	})
}

func ptr(f Frame) *Frame { return &f }

// IsDataRun holds for whole DATA frames of the size given, and for nothing
// else: frames of other lengths that add up to a multiple of it, another
// type, a frame cut short, a size below a header.
func TestIsDataRun(t *testing.T) {
	var same, mixed []byte
	for range 3 {
		same = AppendData(same, []byte("ab"))
	}
	for _, p := range []string{"a", "a", "ab", ""} { // 6, 6, 7, 5 bytes
		mixed = AppendData(mixed, []byte(p))
	}
	ping := appendHeader(nil, Ping, 0) // a frame with no body
	cases := []struct {
		name   string
		frames []byte
		size   int
		want   bool
	}{
		{"same", same, DataFrameSize(2), true},
		{"one", same[:DataFrameSize(2)], DataFrameSize(2), true},
		{"other size", same, DataFrameSize(1), false},
		{"mixed, first and length agree", mixed, DataFrameSize(1), false},
		{"cut short", same[:len(same)-1], DataFrameSize(2), false},
		{"empty", nil, DataFrameSize(2), false},
		{"below a header", same, HeaderSize - 1, false},
		{"not DATA", ping, len(ping), false},
	}
	for _, c := range cases {
		if got := IsDataRun(c.frames, c.size); got != c.want {
			t.Errorf("%s: IsDataRun = %v, want %v", c.name, got, c.want)
		}
	}
}
