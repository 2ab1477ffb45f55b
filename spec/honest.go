package spec

import (
	"fmt"

	"github.com/masterless-go/masterless/wire"
)

// NoProtocolErrorBetweenHonest (named no-protocol-error) says that nodes
// which follow the protocol never give one another cause to close with BYE
// `protocol error` (spec/PROTOCOL.md 4: "a malformed frame, a frame not
// allowed in the connection's state or DATA outside a session"): whatever
// the network does to their connections (resets, partitions, silences, full
// socket buffers, crashes and restarts), every frame an honest node sends is
// one its peer's rules allow where it arrives. A protocol error between
// honest nodes is a hole in the rules (an ACK the sender's own bookkeeping
// made look like one that goes back, a frame in a state the table does not
// expect), and it costs the pair a session.
//
// It is called with every BYE a node writes; code is the BYE's code, text
// its reason. It must only be applied where every process is honest: an
// adversary's frames, or an adapter that corrupts the bytes (a negative
// control of the delivery checks), give honest nodes every cause.
func NoProtocolErrorBetweenHonest(node string, conn ConnID, code wire.Code, text string) error {
	if code != wire.CodeProtocol {
		return nil
	}
	return fmt.Errorf("no-protocol-error: %s closed connection g%d with BYE protocol error between honest nodes: %s", node, conn, text)
}
