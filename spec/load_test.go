package spec_test

import (
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/masterless-go/masterless/spec"
)

// The checker passes steady progress and catches each way of failing it: a
// pair whose messages stop being handed over (seen by a later check, or by
// the delivery that ends the stall) and a session that ends.
func TestLoadChecker(t *testing.T) {
	ms := time.Millisecond
	c := &spec.LoadChecker{Bound: 100 * ms}
	for i := range 10 {
		now := time.Duration(i) * 50 * ms
		c.Accepted(now, "a", "b")
		c.Accepted(now, "b", "a")
		c.Handed(now+40*ms, "a", "b")
		c.Handed(now+40*ms, "b", "a")
	}
	require.NoError(t, spec.CheckLoadProgress(c, 500*ms))
	require.Zero(t, c.Outstanding())
	stall, _ := c.MaxStall()
	require.Equal(t, 40*ms, stall)

	// Idle pairs do not stall: nothing is outstanding.
	require.NoError(t, spec.CheckLoadProgress(c, 10*time.Second))

	// a>b stops: a later check sees it.
	c.Accepted(10*time.Second, "a", "b")
	require.NoError(t, spec.CheckLoadProgress(c, 10*time.Second+100*ms))
	err := spec.CheckLoadProgress(c, 10*time.Second+101*ms)
	require.ErrorContains(t, err, "steady-under-load: delivery stalled")
	require.ErrorContains(t, err, "a>b")

	// A stall that a delivery ends is caught by the delivery alone.
	d := &spec.LoadChecker{Bound: 100 * ms}
	d.Accepted(0, "a", "b")
	d.Handed(150*ms, "a", "b")
	require.ErrorContains(t, spec.CheckLoadProgress(d, 150*ms), "nothing handed over for 150ms")

	// By receiver: b's application is kept busy by a while c>b waits; a
	// stall of the pair, not of the receiver.
	r := &spec.LoadChecker{Bound: 100 * ms, ByReceiver: true}
	p := &spec.LoadChecker{Bound: 100 * ms}
	for _, x := range []*spec.LoadChecker{r, p} {
		x.Accepted(0, "c", "b")
		for i := range 10 {
			x.Accepted(time.Duration(i)*50*ms, "a", "b")
			x.Handed(time.Duration(i)*50*ms+10*ms, "a", "b")
		}
		x.Handed(490*ms, "c", "b")
	}
	require.NoError(t, spec.CheckLoadProgress(r, 500*ms))
	require.ErrorContains(t, spec.CheckLoadProgress(p, 500*ms), "c>b: nothing handed over for 490ms")

	// Handed before its Accepted was recorded (two goroutines over real
	// sockets): nothing is left outstanding, and a later stall is still
	// seen.
	h := &spec.LoadChecker{Bound: 100 * ms}
	h.Handed(10*ms, "a", "b")
	h.Accepted(20*ms, "a", "b")
	require.Zero(t, h.Outstanding())
	require.NoError(t, spec.CheckLoadProgress(h, time.Second))
	h.Accepted(time.Second, "a", "b")
	require.Equal(t, 1, h.Outstanding())
	require.ErrorContains(t, spec.CheckLoadProgress(h, time.Second+101*ms), "a>b: nothing handed over for 101ms")

	// A session that ends is a violation, whatever the timing.
	e := &spec.LoadChecker{Bound: time.Hour}
	e.SessionEnded(3*time.Second, "a", "b", errors.New("peer silent"))
	require.ErrorContains(t, spec.CheckLoadProgress(e, 3*time.Second), "a's session with b ended at 3s: peer silent")
}
