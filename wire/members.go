package wire

import (
	"encoding/binary"
	"fmt"
)

// Discovery (spec/PROTOCOL.md, section 8): the MEMBERS frame and the
// preamble's feature bit that says a node sends and accepts it.

// FeatureMembers is the preamble feature bit (the reserved field, offset 6)
// of a node that runs discovery: it sends and accepts MEMBERS frames. A node
// sends MEMBERS only on a connection whose peer set the bit in its preamble;
// a v2 node without discovery ignores the bit, never sends MEMBERS and is
// never sent one, so the two still share sessions.
const FeatureMembers uint16 = 1 << 0

// Limits of a MEMBERS frame.
const (
	// MaxMembersPerFrame bounds the entries of one MEMBERS frame; a longer
	// view is sent as several frames.
	MaxMembersPerFrame = 256
	// minMemberSize is the smallest encoded entry: state, incarnation, a
	// one-byte id and an empty address.
	minMemberSize = 1 + 8 + 1 + 1 + 2
)

// MemberState is what a MEMBERS entry says of a member.
type MemberState uint8

// Member states.
const (
	MemberAlive MemberState = 0 // the sender has a session with it (or it is the sender)
	MemberLeft  MemberState = 1 // it closed gracefully: do not redial this incarnation
)

// String names the state as transcripts show it.
func (s MemberState) String() string {
	switch s {
	case MemberAlive:
		return "alive"
	case MemberLeft:
		return "left"
	}
	return fmt.Sprintf("state(%d)", uint8(s))
}

// Member is one entry of a MEMBERS frame: a node, the incarnation the entry
// speaks of, where it can be dialed, and whether it is alive or left.
type Member struct {
	ID          string
	Incarnation uint64
	Addr        string // its advertised tcp://host:port (may be empty)
	State       MemberState
}

// MembersSize is the encoded size of a MEMBERS frame carrying ms (header
// included), so a sender can split a view below the peer's frame limit.
func MembersSize(ms []Member) int {
	size := HeaderSize + 2
	for i := range ms {
		size += memberSize(&ms[i])
	}
	return size
}

func memberSize(m *Member) int { return 1 + 8 + 1 + len(m.ID) + 2 + len(m.Addr) }

func appendMembers(dst []byte, f *Frame) ([]byte, error) {
	ms := f.MemberEntries()
	if len(ms) == 0 || len(ms) > MaxMembersPerFrame {
		return dst, fmt.Errorf("%w: MEMBERS with %d entries (1 to %d)", ErrMalformedFrame, len(ms), MaxMembersPerFrame)
	}
	for i := range ms {
		m := &ms[i]
		if len(m.ID) == 0 || len(m.ID) > MaxIDLen || len(m.Addr) > MaxInfoLen || m.State > MemberLeft {
			return dst, fmt.Errorf("%w: MEMBERS entry %d: id length %d, address length %d, state %d", ErrMalformedFrame, i, len(m.ID), len(m.Addr), m.State)
		}
	}
	dst = appendHeader(dst, Members, MembersSize(ms)-HeaderSize)
	dst = binary.BigEndian.AppendUint16(dst, uint16(len(ms)))
	for i := range ms {
		m := &ms[i]
		dst = append(dst, byte(m.State))
		dst = binary.BigEndian.AppendUint64(dst, m.Incarnation)
		dst = append(dst, byte(len(m.ID)))
		dst = append(dst, m.ID...)
		dst = binary.BigEndian.AppendUint16(dst, uint16(len(m.Addr)))
		dst = append(dst, m.Addr...)
	}
	return dst, nil
}

// parseMembers decodes a MEMBERS body. The count is checked against the
// body's length before anything is allocated.
func parseMembers(body []byte) ([]Member, error) {
	bad := func(why string) ([]Member, error) {
		return nil, fmt.Errorf("%w: MEMBERS: %s (%d body bytes)", ErrMalformedFrame, why, len(body))
	}
	if len(body) < 2 {
		return bad("missing count")
	}
	count := int(binary.BigEndian.Uint16(body))
	if count == 0 || count > MaxMembersPerFrame {
		return bad(fmt.Sprintf("%d entries (1 to %d)", count, MaxMembersPerFrame))
	}
	if count*minMemberSize > len(body)-2 {
		return bad(fmt.Sprintf("%d entries cannot fit", count))
	}
	ms := make([]Member, count)
	rest := body[2:]
	for i := range ms {
		if len(rest) < 1+8+1 {
			return bad("truncated entry")
		}
		state := MemberState(rest[0])
		if state > MemberLeft {
			return bad(fmt.Sprintf("unknown state %d", state))
		}
		inc := binary.BigEndian.Uint64(rest[1:])
		idLen := int(rest[9])
		rest = rest[10:]
		if idLen == 0 {
			return bad("empty id")
		}
		if len(rest) < idLen+2 {
			return bad("truncated entry")
		}
		id := string(rest[:idLen])
		addrLen := int(binary.BigEndian.Uint16(rest[idLen:]))
		rest = rest[idLen+2:]
		if addrLen > MaxInfoLen {
			return bad("address too long")
		}
		if len(rest) < addrLen {
			return bad("truncated entry")
		}
		ms[i] = Member{ID: id, Incarnation: inc, Addr: string(rest[:addrLen]), State: state}
		rest = rest[addrLen:]
	}
	if len(rest) != 0 {
		return bad("trailing bytes")
	}
	return ms, nil
}

// PreambleFeatures returns the feature bits of a preamble that
// Binary.ParsePreamble accepted (its reserved field; 0 from a node that sets
// none).
func PreambleFeatures(b []byte) uint16 {
	if len(b) < PreambleSize {
		return 0
	}
	return binary.BigEndian.Uint16(b[6:8])
}
