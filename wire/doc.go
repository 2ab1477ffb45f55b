// Package wire encodes and decodes the frames of the masterless protocol.
//
// It knows bytes, not rules: which frame may be sent when, and what a frame
// means for the connection, is decided by package fsm. Keeping the codec apart
// lets a second framing (masterless 0.4.1's JSON lines, say) be added behind
// the same [Codec] interface without touching the rules.
//
// The layout is specified in spec/PROTOCOL.md. Parsing never panics on any
// input, checks every length against a limit before it allocates, and reports
// a peer's mistake as an error wrapping [ErrMalformedFrame], [ErrFrameTooLarge],
// [ErrBadMagic] or [ErrVersionMismatch].
package wire
