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
	// toward it without a step, on lease Lease.Gen, and the writer of
	// session Conn should admit them (Admit); Lease.Messages 0 revokes the
	// lease: stage no more, admit what is staged before any other step
	// (lease.go).
	ActLease
)

var actionNames = [...]string{
	ActDial: "dial", ActWrite: "write", ActClose: "close", ActConnected: "connected",
	ActDisconnected: "disconnected", ActMessage: "message", ActConnectDone: "connect-done",
	ActLost: "lost", ActRoom: "room", ActMemberUp: "member-up", ActMemberLeft: "member-left", ActMemberGone: "member-gone",
	ActLease: "lease",
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
}

// String renders the action the way transcripts show it.
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
	case ActLost:
		fmt.Fprintf(&b, " %s %d messages (%v)", a.Peer, len(a.Lost), a.Err)
	case ActRoom:
		fmt.Fprintf(&b, " %s", a.Peer)
	case ActLease:
		fmt.Fprintf(&b, " %s c%d gen=%d msgs=%d cost=%d max=%d", a.Peer, a.Conn, a.Lease.Gen, a.Lease.Messages, a.Lease.Cost, a.Lease.MaxPayload)
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
