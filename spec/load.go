package spec

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// LoadChecker records what the invariant steady-under-load looks at
// (spec/PROTOCOL.md 4.1, "Why no wait can form a cycle"): under continuous
// two-way load, without faults,
//
//   - no session ends: neither end closes it (the peer timeout, a write that
//     cannot drain, a protocol error) nor hears it closed;
//   - delivery never stalls for longer than Bound: for every (source,
//     destination) pair with messages accepted by Send and not yet handed to
//     the destination's application, the time since the pair's last message
//     was handed over, or since it had none outstanding, stays within Bound.
//     With ByReceiver, the same for every destination over all its sources:
//     its application is never kept waiting while messages are due to it.
//     (The delivery queue takes turns among the sources, link.Turns: a
//     pair's messages in it wait for at most a turn's worth of each other
//     source's, not for what the others queued before them.)
//
// "Handed over" is the application's callback being called with the message
// (not its arrival in the delivery queue): a dispatcher stuck in a Send is a
// stall. The simulator's load sweep feeds it with virtual time, the echo
// storms over TCP with the wall clock; [CheckLoadProgress] is the check. The
// zero value with Bound set is ready.
type LoadChecker struct {
	// Bound is the longest a pair with messages outstanding may go without
	// one handed over.
	Bound time.Duration
	// ByReceiver checks per destination rather than per pair.
	ByReceiver bool

	pairs    map[[2]string]*loadPair
	ended    []string
	stalls   []string
	maxStall time.Duration
	worst    string
}

type loadPair struct {
	outstanding int
	early       int           // handed over before their Accepted was recorded
	since       time.Duration // the last message handed over, or the first outstanding
}

func (c *LoadChecker) pair(src, dst string) *loadPair {
	if c.ByReceiver {
		src = "*"
	}
	if c.pairs == nil {
		c.pairs = map[[2]string]*loadPair{}
	}
	k := [2]string{src, dst}
	p := c.pairs[k]
	if p == nil {
		p = &loadPair{}
		c.pairs[k] = p
	}
	return p
}

// Accepted records that Send accepted a message from src to dst at now.
// Over real sockets the message may be handed over before the goroutine
// that sent it records this (Handed came first): then it is not counted.
func (c *LoadChecker) Accepted(now time.Duration, src, dst string) {
	p := c.pair(src, dst)
	if p.early > 0 {
		p.early--
		return
	}
	if p.outstanding == 0 {
		p.since = now
	}
	p.outstanding++
}

// Handed records that dst's application was handed a message from src at
// now. A stall longer than Bound that it ends is recorded as a violation.
func (c *LoadChecker) Handed(now time.Duration, src, dst string) {
	p := c.pair(src, dst)
	if c.ByReceiver {
		src = "*"
	}
	c.observe(now, src, dst, p)
	p.since = now
	if p.outstanding > 0 {
		p.outstanding--
	} else {
		p.early++ // its Accepted is still to come
	}
}

// observe notes the stall of pair src>dst as of now.
func (c *LoadChecker) observe(now time.Duration, src, dst string, p *loadPair) {
	if p.outstanding == 0 {
		return
	}
	stall := now - p.since
	if stall > c.maxStall {
		c.maxStall, c.worst = stall, fmt.Sprintf("%s>%s at %v", src, dst, now)
	}
	if stall > c.Bound && len(c.stalls) < 10 {
		c.stalls = append(c.stalls, fmt.Sprintf("%s>%s: nothing handed over for %v (since %v, %d outstanding)", src, dst, stall, p.since, p.outstanding))
	}
}

// SessionEnded records that node's session with peer ended at now, and why
// (nil: the node did not say).
func (c *LoadChecker) SessionEnded(now time.Duration, node, peer string, why error) {
	if len(c.ended) < 10 {
		c.ended = append(c.ended, fmt.Sprintf("%s's session with %s ended at %v: %v", node, peer, now, why))
	}
}

// Outstanding returns how many accepted messages were not yet handed over.
func (c *LoadChecker) Outstanding() int {
	n := 0
	for _, p := range c.pairs {
		n += p.outstanding
	}
	return n
}

// MaxStall returns the longest stall seen so far and where.
func (c *LoadChecker) MaxStall() (time.Duration, string) { return c.maxStall, c.worst }

// CheckLoadProgress is the invariant steady-under-load (see [LoadChecker])
// as of now: no session ended, and no pair has stalled for longer than
// c.Bound, up to now.
func CheckLoadProgress(c *LoadChecker, now time.Duration) error {
	keys := make([][2]string, 0, len(c.pairs))
	for k := range c.pairs {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b [2]string) int { return strings.Compare(a[0]+">"+a[1], b[0]+">"+b[1]) })
	for _, k := range keys {
		c.observe(now, k[0], k[1], c.pairs[k])
	}
	var errs []error
	if len(c.ended) > 0 {
		errs = append(errs, fmt.Errorf("steady-under-load: a session ended under load without faults: %s", strings.Join(c.ended, "; ")))
	}
	if len(c.stalls) > 0 {
		errs = append(errs, fmt.Errorf("steady-under-load: delivery stalled for longer than %v: %s", c.Bound, strings.Join(c.stalls, "; ")))
	}
	return errors.Join(errs...)
}
