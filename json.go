package masterless

import (
	"encoding/json"
	"fmt"
)

// SendJSON encodes v as JSON and sends it to peer id (SendErr). It returns
// the encoding error (wrapping ErrJSON), or why the send was refused
// (wrapping ErrUnknownPeer, ErrNotConnected, ErrQueueFull,
// ErrPayloadTooLarge or ErrClosed; toward a masterless 0.4.1 peer also
// ErrNotJSONObject, when v does not encode as a JSON object: a slice, a
// string, a number, nil). Toward a 0.4.1 peer it waits as Send does.
func (s *Server) SendJSON(id string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("%w: encoding message for %s: %w", ErrJSON, id, err)
	}
	return s.SendErr(id, b)
}

// SendManyJSON encodes v as JSON once and sends it to every peer in ids. It
// returns how many accepted it, or the encoding error (wrapping ErrJSON).
func (s *Server) SendManyJSON(ids []string, v any) (int, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return 0, fmt.Errorf("%w: encoding message: %w", ErrJSON, err)
	}
	return s.SendMany(ids, b), nil
}

// DecodeJSON decodes a payload sent with SendJSON into v, for use in a
// Message callback. Its error wraps ErrJSON and encoding/json's.
func DecodeJSON(payload []byte, v any) error {
	if err := json.Unmarshal(payload, v); err != nil {
		return fmt.Errorf("%w: decoding message: %w", ErrJSON, err)
	}
	return nil
}
