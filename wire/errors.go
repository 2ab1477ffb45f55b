package wire

import "errors"

// Errors reported for bytes a peer sent. Each closes that connection only.
var (
	// ErrBadMagic: the first bytes are not a masterless v1 preamble. The peer is
	// not a masterless node, or speaks another protocol on this port.
	ErrBadMagic = errors.New("masterless: peer did not send the masterless preamble (is it a masterless node?)")
	// ErrVersionMismatch: the peer speaks another version of the protocol.
	// Upgrade one side so both speak the same version.
	ErrVersionMismatch = errors.New("masterless: peer speaks another protocol version; run the same masterless version on both nodes")
	// ErrFrameTooLarge: a frame's length prefix exceeds the receiver's limit.
	// Raise the limit with the max frame size option, or send smaller payloads.
	ErrFrameTooLarge = errors.New("masterless: frame larger than the max frame size")
	// ErrMalformedFrame: a frame is too short, too long, of unknown type, or
	// carries an out-of-range field.
	ErrMalformedFrame = errors.New("masterless: malformed frame")
)
