package wire

import (
	"fmt"
	"strings"
	"time"
)

// Type is a frame's type byte.
type Type uint8

// Frame types of the protocol (spec/PROTOCOL.md, section 2.2).
const (
	Hello   Type = 0x01 // identity: id, incarnation, info
	Join    Type = 0x02 // follower's claim: closed session, keep flag
	Welcome Type = 0x03 // leader's grant: session number, keep flag
	Keep    Type = 0x04 // keep flag changed
	Ping    Type = 0x05 // heartbeat
	Data    Type = 0x06 // application payload
	Bye     Type = 0x07 // reason for the close that follows
	Ack     Type = 0x08 // messages delivered, and credit for more (v2)
	Resume  Type = 0x09 // the sequence number of the next DATA on this session (v2)
	Members Type = 0x0A // members the sender knows (discovery; only to a peer with wire.FeatureMembers)

	// LastType is the greatest frame type this version defines.
	LastType = Members
)

// String returns the frame type's protocol name, or "type(0xNN)" when unknown.
func (t Type) String() string {
	switch t {
	case Hello:
		return "HELLO"
	case Join:
		return "JOIN"
	case Welcome:
		return "WELCOME"
	case Keep:
		return "KEEP"
	case Ping:
		return "PING"
	case Data:
		return "DATA"
	case Bye:
		return "BYE"
	case Ack:
		return "ACK"
	case Resume:
		return "RESUME"
	case Members:
		return "MEMBERS"
	}
	return fmt.Sprintf("type(0x%02x)", uint8(t))
}

// Code says why a connection is closed; it travels in BYE frames.
type Code uint8

// BYE codes (spec/PROTOCOL.md, section 2.2).
const (
	CodeNormal          Code = 0  // the sender disconnected the peer
	CodeDuplicate       Code = 1  // another connection is the pair's session
	CodeUnwanted        Code = 2  // neither end keeps the pair
	CodeStale           Code = 3  // the connection comes from an older incarnation
	CodeReplaced        Code = 4  // a newer connection or incarnation took over
	CodeSelfConnect     Code = 5  // both ends are the same node
	CodeDuplicateID     Code = 6  // two live processes use the same id
	CodeProtocol        Code = 7  // the receiver broke the protocol
	CodeHandshake       Code = 8  // the handshake did not finish in time
	CodeShutdown        Code = 9  // the sender is closing
	CodePeerTimeout     Code = 10 // the sender heard nothing for the peer timeout
	CodeUnauthenticated Code = 11 // the receiver did not prove the id it claims
	maxKnownCode        Code = CodeUnauthenticated
)

var codeNames = [...]string{
	CodeNormal: "normal", CodeDuplicate: "duplicate", CodeUnwanted: "unwanted",
	CodeStale: "stale incarnation", CodeReplaced: "replaced", CodeSelfConnect: "self-connect",
	CodeDuplicateID: "duplicate id", CodeProtocol: "protocol error",
	CodeHandshake: "handshake timeout", CodeShutdown: "shutdown", CodePeerTimeout: "peer timeout",
	CodeUnauthenticated: "unauthenticated",
}

// String returns the code's name as used in logs and transcripts.
func (c Code) String() string {
	if c <= maxKnownCode {
		return codeNames[c]
	}
	return fmt.Sprintf("unknown(%d)", uint8(c))
}

// Known reports whether c is a code this version defines.
func (c Code) Known() bool { return c <= maxKnownCode }

// Limits on variable-length fields, checked on both encode and decode.
const (
	MaxIDLen   = 255  // bytes in a node id
	MaxInfoLen = 1024 // bytes in a HELLO's advertised address
	MaxTextLen = 1024 // bytes in a BYE's reason text
)

// MaxBody returns the largest body a frame of type t can have, so that a
// reader refuses a frame too long for its type once its 5-byte header is in,
// before buffering its body (spec/PROTOCOL.md 2.2); known is false for a
// type this version does not define. DATA's bound is only the receiver's max
// frame size (returned as -1); MEMBERS's is its entry limit times the largest
// entry.
func MaxBody(t Type) (n int, known bool) {
	switch t {
	case Hello:
		return 1 + MaxIDLen + 8 + 4 + 2 + MaxInfoLen, true
	case Join, Welcome:
		return 9, true
	case Keep:
		return 1, true
	case Ping:
		return 24, true
	case Data:
		return -1, true
	case Bye:
		return 11 + MaxTextLen, true
	case Ack:
		return 17, true
	case Resume:
		return 8, true
	case Members:
		return 2 + MaxMembersPerFrame*(1+8+1+MaxIDLen+2+MaxInfoLen), true
	}
	return 0, false
}

// Frame is one decoded frame. Only the fields of its Type are meaningful.
type Frame struct {
	Type        Type
	ID          string // HELLO
	Incarnation uint64 // HELLO
	Info        string // HELLO
	MaxFrame    uint32 // HELLO: the largest frame the sender accepts (v2); 0 if it does not say
	Features    uint16 // HELLO: the sender's preamble feature bits, copied here by the connection layer (not in HELLO's bytes)
	Closed      uint64 // JOIN: greatest session of this leader incarnation the follower closed; a 0.4.1 JOIN: its priority (LegacyPriority)
	Sess        uint64 // WELCOME: granted session; BYE: winning session for CodeDuplicate
	Keep        bool   // JOIN, WELCOME, KEEP
	Code        Code   // BYE
	Text        string // BYE
	Payload     []byte // DATA
	Delivered   uint64 // ACK: DATA of the peer's stream delivered here, in total
	Credit      uint64 // ACK: payload bytes the peer may send past message Delivered
	Backlog     bool   // ACK: the sender's answers to the receiver back up past its credit: its producers wait (4.1)
	Next        uint64 // RESUME: sequence number of the next DATA
	// PING (v2), for the round-trip time (spec/PROTOCOL.md, 4): Stamp is
	// the sender's clock when it sent the PING, nonzero; Echo is the Stamp
	// of the latest PING it received (0: none) and Held how long it held
	// that Stamp before this PING, in nanoseconds. All three 0: a bare PING.
	Stamp, Echo, Held uint64

	// Members: MEMBERS, its entries (behind a pointer, so that the frames
	// of every other type, DATA above all, stay as small as they were).
	Members *MemberList
}

// MemberList holds the entries of a MEMBERS frame.
type MemberList struct{ Entries []Member }

// MembersFrame returns a MEMBERS frame carrying ms.
func MembersFrame(ms []Member) Frame { return Frame{Type: Members, Members: &MemberList{Entries: ms}} }

// MemberEntries returns the entries of a MEMBERS frame (nil for any other).
func (f *Frame) MemberEntries() []Member {
	if f.Members == nil {
		return nil
	}
	return f.Members.Entries
}

// String renders the frame the way transcripts show it, e.g. "WELCOME sess=3 keep=1".
func (f *Frame) String() string {
	switch f.Type {
	case Hello:
		if f.Features != 0 {
			return fmt.Sprintf("HELLO id=%s inc=%d info=%q max=%d features=%#x", f.ID, f.Incarnation, f.Info, f.MaxFrame, f.Features)
		}
		if f.MaxFrame != 0 {
			return fmt.Sprintf("HELLO id=%s inc=%d info=%q max=%d", f.ID, f.Incarnation, f.Info, f.MaxFrame)
		}
		return fmt.Sprintf("HELLO id=%s inc=%d info=%q", f.ID, f.Incarnation, f.Info)
	case Join:
		return fmt.Sprintf("JOIN closed=%d keep=%d", f.Closed, b2i(f.Keep))
	case Welcome:
		return fmt.Sprintf("WELCOME sess=%d keep=%d", f.Sess, b2i(f.Keep))
	case Keep:
		return fmt.Sprintf("KEEP keep=%d", b2i(f.Keep))
	case Ping:
		if f.Stamp == 0 && f.Echo == 0 && f.Held == 0 {
			return "PING"
		}
		if f.Echo == 0 && f.Held == 0 {
			return fmt.Sprintf("PING stamp=%v", time.Duration(f.Stamp))
		}
		return fmt.Sprintf("PING stamp=%v echo=%v held=%v", time.Duration(f.Stamp), time.Duration(f.Echo), time.Duration(f.Held))
	case Data:
		return fmt.Sprintf("DATA %q", f.Payload)
	case Ack:
		if f.Backlog {
			return fmt.Sprintf("ACK delivered=%d credit=%d backlog", f.Delivered, f.Credit)
		}
		return fmt.Sprintf("ACK delivered=%d credit=%d", f.Delivered, f.Credit)
	case Resume:
		return fmt.Sprintf("RESUME next=%d", f.Next)
	case Members:
		var b strings.Builder
		b.WriteString("MEMBERS")
		for _, m := range f.MemberEntries() {
			fmt.Fprintf(&b, " %s/%d/%s", m.ID, m.Incarnation, m.State)
			if m.Addr != "" {
				fmt.Fprintf(&b, "@%s", m.Addr)
			}
		}
		return b.String()
	case Bye:
		if f.Sess != 0 {
			return fmt.Sprintf("BYE %s sess=%d %q", f.Code, f.Sess, f.Text)
		}
		return fmt.Sprintf("BYE %s %q", f.Code, f.Text)
	}
	return f.Type.String()
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}
