package masterless

import (
	"encoding/json"
	"fmt"
)

// SendJSON encodes v as JSON and sends it to peer id. It returns the encoding
// error, or why the send was refused (wrapping ErrUnknownPeer,
// ErrNotConnected, ErrQueueFull or ErrClosed).
func (s *Server) SendJSON(id string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("masterless: encoding message for %s: %w", id, err)
	}
	return s.SendErr(id, b)
}

// SendManyJSON encodes v as JSON once and sends it to every peer in ids. It
// returns how many accepted it, or the encoding error.
func (s *Server) SendManyJSON(ids []string, v any) (int, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return 0, fmt.Errorf("masterless: encoding message: %w", err)
	}
	return s.SendMany(ids, b), nil
}

// DecodeJSON decodes a payload sent with SendJSON into v, for use in a
// Message callback.
func DecodeJSON(payload []byte, v any) error {
	if err := json.Unmarshal(payload, v); err != nil {
		return fmt.Errorf("masterless: decoding message: %w", err)
	}
	return nil
}
