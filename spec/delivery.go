package spec

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Delivery is one message handed to a user (an fsm ActMessage), with what
// the payload says about it. Payloads made by [Payload] carry their source,
// destination and a per-(source, destination) sequence number.
type Delivery struct {
	Conn     ConnID // the connection it arrived on
	Receiver string // the node whose user got it
	Sender   string // the peer the receiving fsm said it came from
	Src, Dst string // from the payload
	Seq      uint64 // from the payload
}

// Payload returns the payload of message seq from src to dst:
// {"m":"src>dst#seq"}, a JSON object, so that it can also travel to a peer
// that speaks masterless 0.4.1 (which carries only JSON objects). Ids must
// not contain '"' or '\\'.
func Payload(src, dst string, seq uint64) []byte {
	return AppendPaddedPayload(make([]byte, 0, len(src)+len(dst)+20), src, dst, seq, 0)
}

// PaddedPayload is [Payload] padded with spaces before its closing brace to
// size bytes (still a JSON object), for load runs with large messages.
func PaddedPayload(src, dst string, seq uint64, size int) []byte {
	return AppendPaddedPayload(nil, src, dst, seq, size)
}

// AppendPaddedPayload appends [PaddedPayload] to b.
func AppendPaddedPayload(b []byte, src, dst string, seq uint64, size int) []byte {
	return AppendManyPayload(b, src, []string{dst}, []uint64{seq}, size)
}

var spaces = bytes.Repeat([]byte{' '}, 4096)

// AppendManyPayload appends the payload of one SendMany from src: message
// seqs[i] of the pair (src, dsts[i]) for each i, in one payload that every
// destination gets alike ({"m":"src>d1#s1,d2#s2"}), padded as
// [PaddedPayload] to size bytes. [ParsePayloadFor] reads a destination's
// own number from it. Ids must not contain ',', '>', '#', '"' or '\\'.
func AppendManyPayload(b []byte, src string, dsts []string, seqs []uint64, size int) []byte {
	start := len(b)
	b = append(b, `{"m":"`...)
	b = append(b, src...)
	b = append(b, '>')
	for i, d := range dsts {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, d...)
		b = append(b, '#')
		b = strconv.AppendUint(b, seqs[i], 10)
	}
	b = append(b, '"')
	for len(b)-start < size-1 {
		b = append(b, spaces[:min(len(spaces), size-1-(len(b)-start))]...)
	}
	return append(b, '}')
}

// ParsePayload reverses [Payload] and [PaddedPayload]. It reads the padding
// of the latter no further than its first and last bytes. A payload of
// [AppendManyPayload] reads as its first destination's message.
func ParsePayload(p []byte) (src, dst string, seq uint64, err error) {
	return ParsePayloadFor(p, "")
}

// ParsePayloadFor is [ParsePayload] for a payload that reached node at (or
// was handed back as lost toward it): of a payload that names several
// destinations ([AppendManyPayload]), it returns at's message, or the first
// destination's when at is not among them, so that a delivery check sees a
// message delivered where it was not sent.
func ParsePayloadFor(p []byte, at string) (src, dst string, seq uint64, err error) {
	rest, okPrefix := bytes.CutPrefix(p, []byte(`{"m":"`))
	end := bytes.IndexByte(rest, '"')
	okSuffix := end >= 0 && len(p) > 0 && p[len(p)-1] == '}' &&
		(end+1 == len(rest)-1 || (end+1 < len(rest)-1 && rest[end+1] == ' '))
	if !okPrefix || !okSuffix {
		return "", "", 0, fmt.Errorf("payload %q is not {\"m\":\"src>dst#seq\"}", p[:min(len(p), 100)])
	}
	s := string(rest[:end])
	gt := strings.IndexByte(s, '>')
	if gt < 0 {
		return "", "", 0, fmt.Errorf("payload %q is not src>dst#seq", p)
	}
	src = s[:gt]
	for i, one := range strings.Split(s[gt+1:], ",") {
		hash := strings.LastIndexByte(one, '#')
		if hash < 0 {
			return "", "", 0, fmt.Errorf("payload %q is not src>dst#seq", p)
		}
		n, perr := strconv.ParseUint(one[hash+1:], 10, 64)
		if perr != nil {
			return "", "", 0, fmt.Errorf("payload %q: bad sequence number: %w", p, perr)
		}
		if i == 0 || (one[:hash] == at && dst != at) {
			dst, seq = one[:hash], n
		}
	}
	return src, dst, seq, nil
}

// DeliveryChecker checks deliveries one at a time, remembering the last
// sequence number seen per connection and direction and per pair:
//
//   - a message is delivered only at its destination, and the receiving fsm
//     names its real source;
//   - on a connection, no message is delivered twice or out of order;
//   - across the successive sessions of a pair neither (DATA flows only on
//     the session, and a replaced session is closed before its successor
//     carries anything, PROTOCOL.md 3.5), so a message never overtakes an
//     earlier one or repeats.
//
// The zero value is ready to use.
type DeliveryChecker struct {
	perConn map[connDir]uint64
	perPair map[[2]string]pairLast
	count   int
}

type connDir struct {
	conn ConnID
	src  string
}

type pairLast struct {
	seq  uint64
	conn ConnID
}

// Observe checks one delivery against those seen before.
func (c *DeliveryChecker) Observe(d Delivery) error {
	if c.perConn == nil {
		c.perConn = map[connDir]uint64{}
		c.perPair = map[[2]string]pairLast{}
	}
	c.count++
	var errs []error
	if d.Dst != d.Receiver {
		errs = append(errs, fmt.Errorf("delivery: message %s>%s#%d delivered to %s on g%d, not its destination", d.Src, d.Dst, d.Seq, d.Receiver, d.Conn))
	}
	if d.Src != d.Sender {
		errs = append(errs, fmt.Errorf("delivery: message %s>%s#%d reported by %s as coming from %s (g%d)", d.Src, d.Dst, d.Seq, d.Receiver, d.Sender, d.Conn))
	}
	k := connDir{d.Conn, d.Src}
	if last, ok := c.perConn[k]; ok && d.Seq <= last {
		what := "out of order"
		if d.Seq == last {
			what = "twice"
		}
		errs = append(errs, fmt.Errorf("delivery: on g%d message %s>%s#%d delivered %s (last was #%d)", d.Conn, d.Src, d.Dst, d.Seq, what, last))
	}
	c.perConn[k] = d.Seq
	pk := [2]string{d.Src, d.Dst}
	if last, ok := c.perPair[pk]; ok && d.Seq <= last.seq && last.conn != d.Conn {
		errs = append(errs, fmt.Errorf("delivery: message %s>%s#%d delivered on g%d after #%d was delivered on g%d (repeated or reordered across sessions)", d.Src, d.Dst, d.Seq, d.Conn, last.seq, last.conn))
	}
	if last, ok := c.perPair[pk]; !ok || d.Seq > last.seq {
		c.perPair[pk] = pairLast{d.Seq, d.Conn}
	}
	return errors.Join(errs...)
}

// Count returns how many deliveries were observed.
func (c *DeliveryChecker) Count() int { return c.count }

// CheckDeliveries runs a fresh [DeliveryChecker] over ds in order.
func CheckDeliveries(ds []Delivery) error {
	var c DeliveryChecker
	var errs []error
	for _, d := range ds {
		if err := c.Observe(d); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
