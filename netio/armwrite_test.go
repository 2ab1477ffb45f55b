package netio

import (
	"crypto/tls"
	"net"
	"testing"
	"time"
)

// TestArmWrite: the writer keeps the write deadline it set while that one is
// no later than the one wanted and at least half a slice away, on a plain
// socket once detection is over; otherwise it sets the one wanted.
func TestArmWrite(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	const slice = 100 * time.Millisecond
	t0 := time.Now()
	at := func(d time.Duration) time.Time { return t0.Add(d) }

	c := &conn{nc: a}
	c.armWrite(t0, at(slice), slice)
	if !c.writeBy.IsZero() {
		t.Fatalf("not steady (detection may still clear deadlines): kept %v", c.writeBy)
	}
	c.steady.Store(true)
	c.armWrite(t0, at(slice), slice)
	if !c.writeBy.Equal(at(slice)) {
		t.Fatalf("steady: writeBy %v, want the deadline set", c.writeBy)
	}
	for _, tc := range []struct {
		name    string
		now, by time.Duration
		want    time.Duration // writeBy after
	}{
		{"a quarter slice later: kept", slice / 4, slice/4 + slice, slice},
		{"wanted earlier than the one set (progress is old, or Close): set", slice / 4, slice / 2, slice / 2},
		{"less than half a slice left: set", 3 * slice / 4, 3*slice/4 + slice, 3*slice/4 + slice},
	} {
		c.armWrite(at(tc.now), at(tc.by), slice)
		if !c.writeBy.Equal(at(tc.want)) {
			t.Fatalf("%s: writeBy %v after t0, want %v", tc.name, c.writeBy.Sub(t0), tc.want)
		}
	}
	// Over TLS every write sets its own: there a deadline's expiry fails
	// the connection.
	c.sc = tls.Client(a, &tls.Config{})
	before := c.writeBy
	c.armWrite(at(slice), at(2*slice), slice)
	if !c.writeBy.Equal(at(2 * slice)) {
		t.Fatalf("TLS: writeBy %v after t0, want %v (was %v)", c.writeBy.Sub(t0), 2*slice, before.Sub(t0))
	}
}
