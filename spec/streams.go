package spec

import (
	"fmt"
	"slices"
	"strings"
)

// StreamLedger checks that no accepted message vanishes (spec/PROTOCOL.md,
// 4.1): every message a sender's Send accepted is, once the mesh is quiet,
// either delivered to its destination or handed back to the sender as lost,
// unless the sending process itself ended first. Together with
// DeliveryChecker (never twice, never out of order) it is exactly-once,
// in-order delivery within a pair of incarnations. Message ids are the
// (source, destination, sequence number) of Payload. The zero value is ready.
type StreamLedger struct {
	pending map[msgKey]uint64 // accepted and not yet accounted for: the sender's incarnation
}

type msgKey struct {
	src, dst string
	seq      uint64
}

// Accepted records that src, of incarnation inc, had message seq to dst
// accepted by Send.
func (l *StreamLedger) Accepted(src string, inc uint64, dst string, seq uint64) {
	if l.pending == nil {
		l.pending = map[msgKey]uint64{}
	}
	l.pending[msgKey{src, dst, seq}] = inc
}

// Done records that message seq from src to dst was delivered, or reported
// lost to its sender.
func (l *StreamLedger) Done(src, dst string, seq uint64) {
	delete(l.pending, msgKey{src, dst, seq})
}

// CheckNoneVanished reports the accepted messages neither delivered nor
// reported lost whose sender incarnation is still alive (alive(src, inc)).
func (l *StreamLedger) CheckNoneVanished(alive func(src string, inc uint64) bool) error {
	var gone []string
	for k, inc := range l.pending {
		if alive(k.src, inc) {
			gone = append(gone, fmt.Sprintf("%s>%s#%d", k.src, k.dst, k.seq))
		}
	}
	if len(gone) == 0 {
		return nil
	}
	slices.Sort(gone)
	more := ""
	if len(gone) > 10 {
		gone, more = gone[:10], fmt.Sprintf(" and %d more", len(gone)-10)
	}
	return fmt.Errorf("none-vanished: accepted, never delivered and never reported lost, the sender still alive: %s%s", strings.Join(gone, ", "), more)
}
