package fsm

import (
	"fmt"
	"strings"

	"github.com/masterless-go/masterless/wire"
)

// ActionKind says what an Action asks for.
type ActionKind uint8

// The actions a Node asks its adapter to carry out, in order.
const (
	// ActDial: open a TCP connection to Addr, then report Dialed or DialFailed
	// for Dial. Legacy: speak masterless 0.4.1 on it instead of v1.
	ActDial ActionKind = iota + 1
	// ActWrite: write Frame on Conn.
	ActWrite
	// ActClose: flush what was written on Conn, then close it. Err is the
	// reason, for logs. No ConnClosed event may follow for Conn.
	ActClose
	// ActConnected: tell the user Peer is connected (incarnation Incarnation,
	// advertised address Addr).
	ActConnected
	// ActDisconnected: tell the user Peer is gone; Err says why (nil when the
	// user asked for it).
	ActDisconnected
	// ActMessage: deliver Frame.Payload from Peer to the user.
	ActMessage
	// ActConnectDone: the Connect request Req finished: Peer on success, else Err.
	ActConnectDone
	// ActLost: the messages in Lost, accepted for Peer (incarnation
	// Incarnation), will never be delivered; Err wraps ErrMessagesLost and
	// says why. The user owns the payloads.
	ActLost
	// ActRoom: Peer's send queue has room again after a Send was refused
	// with ErrQueueFull.
	ActRoom
	// ActMemberUp: discovery learned of member Peer, or of its newer
	// incarnation Incarnation, advertised at Addr (discovery.go).
	ActMemberUp
	// ActMemberLeft: member Peer (incarnation Incarnation) left gracefully;
	// it is not redialed.
	ActMemberLeft
	// ActMemberGone: member Peer was not heard of for the member timeout and
	// is forgotten; Err says so.
	ActMemberGone
	// ActLease: Peer's producers may stage Lease.Messages more messages
	// toward it without a step, and its answers Lease.Answers more, on
	// lease Lease.Gen, and the writer of session Conn should admit them
	// (Admit); a Lease that grants nothing (Lease.Revoked) revokes the
	// lease: stage no more, admit what is staged before any other step
	// (lease.go).
	ActLease
	// ActMessages: deliver the messages in Frame.Payload from Peer
	// (incarnation Incarnation) to the user, in order: whole DATA frames
	// back to back, as wire.AppendData encodes them, each frame's payload one
	// message. It is the ActMessage of each, for consecutive messages of a
	// DataReceived (a part of its Frames): one action, not one per message.
	ActMessages
	// ActWriteData: write Frame.Payload on Conn: whole DATA frames back to
	// back, as wire.AppendData encodes them. It is the ActWrite of each
	// (Frame.Type Data), for consecutive messages of a peer's queue that
	// go out together (an Admit's, those an ACK's credit lets go): one
	// action, and bytes the adapter writes as they are.
	ActWriteData
)

var actionNames = [...]string{
	ActDial: "dial", ActWrite: "write", ActClose: "close", ActConnected: "connected",
	ActDisconnected: "disconnected", ActMessage: "message", ActConnectDone: "connect-done",
	ActLost: "lost", ActRoom: "room", ActMemberUp: "member-up", ActMemberLeft: "member-left", ActMemberGone: "member-gone",
	ActLease: "lease", ActMessages: "messages", ActWriteData: "write-data",
}

// String returns the action kind's name as transcripts show it.
func (k ActionKind) String() string {
	if int(k) < len(actionNames) && actionNames[k] != "" {
		return actionNames[k]
	}
	return fmt.Sprintf("action(%d)", uint8(k))
}

// Action is one output of a Node. It is a tagged union: Kind says which
// fields are meaningful. A plain struct (not an interface) so that producing
// one never allocates.
type Action struct {
	Kind        ActionKind
	Conn        ConnID
	Dial        DialID
	Req         ReqID
	Addr        string
	Peer        string
	Incarnation uint64
	Frame       wire.Frame
	Err         error
	Legacy      bool     // ActDial: the connection speaks masterless 0.4.1
	Lost        [][]byte // ActLost: the payloads, in the order they were sent
	Lease       Lease    // ActLease
	// Messages is, for an ActMessages, how many messages (DATA frames)
	// Frame.Payload holds, so that an adapter need not walk them to count.
	Messages int
	// FrameSize is, for an ActMessages, the length of each of its frames
	// (header included) when they all have the same length, else 0: an
	// adapter can then cut the run at any message by arithmetic, without
	// reading the frames before it (netio's delivery queue cuts runs into
	// turns). The state machine parses every frame of a read anyway.
	FrameSize int
}

// Split appends to dst the actions a stands for and returns the result: for
// an ActMessages the ActMessage of each of its messages, for an
// ActWriteData the ActWrite of each of its frames (their payloads alias
// a's), for any other kind a itself. An adapter may carry out either; tests
// and checkers that look at single messages split.
func (a *Action) Split(dst []Action) []Action {
	var kind ActionKind
	switch a.Kind {
	case ActMessages:
		kind = ActMessage
	case ActWriteData:
		kind = ActWrite
	default:
		return append(dst, *a)
	}
	for rest := a.Frame.Payload; len(rest) > 0; {
		p, r, ok := wire.NextData(rest)
		if !ok {
			panic(fmt.Sprintf("fsm: %s with %d bytes that are not a DATA frame", a.Kind, len(rest)))
		}
		m := Action{Kind: kind, Conn: a.Conn, Peer: a.Peer, Incarnation: a.Incarnation}
		m.Frame.Type, m.Frame.Payload = wire.Data, p
		dst = append(dst, m)
		rest = r
	}
	return dst
}

// joinSplit renders an ActMessages or ActWriteData as the actions it
// stands for (Split), one per line, so that a transcript reads the same
// whichever the node produced.
func joinSplit(a *Action) string {
	parts := a.Split(nil)
	s := make([]string, len(parts))
	for i := range parts {
		s[i] = parts[i].String()
	}
	return strings.Join(s, "\n")
}

// String renders the action the way transcripts show it; an ActMessages or
// ActWriteData as the actions it stands for (Split), one per line.
func (a *Action) String() string {
	var b strings.Builder
	b.WriteString(a.Kind.String())
	switch a.Kind {
	case ActDial:
		fmt.Fprintf(&b, " d%d %s", a.Dial, a.Addr)
		if a.Legacy {
			b.WriteString(" 0.4.1")
		}
	case ActWrite:
		fmt.Fprintf(&b, " c%d %s", a.Conn, a.Frame.String())
	case ActClose:
		fmt.Fprintf(&b, " c%d", a.Conn)
		if a.Err != nil {
			fmt.Fprintf(&b, " (%v)", a.Err)
		}
	case ActConnected:
		fmt.Fprintf(&b, " %s inc=%d", a.Peer, a.Incarnation)
	case ActDisconnected:
		fmt.Fprintf(&b, " %s", a.Peer)
		if a.Err != nil {
			fmt.Fprintf(&b, " (%v)", a.Err)
		}
	case ActMessage:
		fmt.Fprintf(&b, " from=%s %q", a.Peer, a.Frame.Payload)
	case ActMessages, ActWriteData:
		return joinSplit(a)
	case ActLost:
		fmt.Fprintf(&b, " %s %d messages (%v)", a.Peer, len(a.Lost), a.Err)
	case ActRoom:
		fmt.Fprintf(&b, " %s", a.Peer)
	case ActLease:
		fmt.Fprintf(&b, " %s c%d gen=%d msgs=%d cost=%d max=%d", a.Peer, a.Conn, a.Lease.Gen, a.Lease.Messages, a.Lease.Cost, a.Lease.MaxPayload)
		if a.Lease.Answers > 0 {
			fmt.Fprintf(&b, " answers=%d answer-cost=%d", a.Lease.Answers, a.Lease.AnswerCost)
		}
	case ActMemberUp, ActMemberLeft, ActMemberGone:
		fmt.Fprintf(&b, " %s inc=%d %s", a.Peer, a.Incarnation, a.Addr)
	case ActConnectDone:
		fmt.Fprintf(&b, " r%d", a.Req)
		if a.Err != nil {
			fmt.Fprintf(&b, " err=%v", a.Err)
		} else {
			fmt.Fprintf(&b, " peer=%s", a.Peer)
		}
	}
	return b.String()
}
