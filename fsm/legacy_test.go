package fsm_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/masterless-go/masterless/fsm"
	"github.com/masterless-go/masterless/wire"
)

// Unit tests of the 0.4.1 rules (fsm/legacy.go), one node driven by hand.

type legacyT struct {
	t   *testing.T
	n   *fsm.Node
	now time.Duration
}

func newLegacyT(t *testing.T, id string, legacyDial bool) *legacyT {
	n, err := fsm.New(fsm.Config{ID: id, Incarnation: 7, Seed: 1, LegacyDial: legacyDial})
	if err != nil {
		t.Fatal(err)
	}
	l := &legacyT{t: t, n: n}
	l.step(fsm.Listening{Info: "tcp://" + id + ":1"})
	return l
}

// step feeds ev and returns the actions, rendered.
func (l *legacyT) step(ev fsm.Event) []string {
	l.t.Helper()
	l.now += time.Millisecond
	if err := l.n.Step(l.now, ev); err != nil {
		l.t.Fatalf("step %T: %v", ev, err)
	}
	if err := l.n.CheckTimers(); err != nil {
		l.t.Fatalf("after %T: %v", ev, err)
	}
	var out []string
	for _, a := range l.n.Ready() {
		out = append(out, a.String())
	}
	return out
}

func join(p float64) wire.Frame {
	f := wire.Frame{Type: wire.Join, Keep: true}
	wire.SetLegacyPriority(&f, p)
	return f
}

func want(t *testing.T, got []string, subs ...string) {
	t.Helper()
	all := strings.Join(got, "\n")
	for _, s := range subs {
		if !strings.Contains(all, s) {
			t.Fatalf("want %q in actions:\n%s", s, all)
		}
	}
}

func TestLegacyAcceptorLeads(t *testing.T) {
	l := newLegacyT(t, "a", false)
	if acts := l.step(fsm.Accepted{Conn: 1, Legacy: true}); len(acts) != 0 {
		t.Fatalf("a 0.4.1 acceptor must wait for the dialer's HELLO, got %v", acts)
	}
	want(t, l.step(fsm.FrameReceived{Conn: 1, Frame: wire.Frame{Type: wire.Hello, ID: "b", Info: "tcp://b:1"}}),
		`write c1 HELLO id=a inc=7 info=""`) // inc: only Go nodes send it; 0.4.1 ignores it
	// The acceptor leads although its id is the smaller; a tie-free priority confirms.
	want(t, l.step(fsm.FrameReceived{Conn: 1, Frame: join(0.25)}),
		"write c1 WELCOME", "connected b inc=0", "write c1 KEEP keep=0")
	// Not kept by us; [false] from the peer: discarded.
	want(t, l.step(fsm.FrameReceived{Conn: 1, Frame: wire.Frame{Type: wire.Keep}}), "close c1", "disconnected b")
}

func TestLegacyPriorityZeroRefused(t *testing.T) {
	l := newLegacyT(t, "a", false)
	l.step(fsm.Accepted{Conn: 1, Legacy: true})
	l.step(fsm.FrameReceived{Conn: 1, Frame: wire.Frame{Type: wire.Hello, ID: "b", Info: "tcp://b:1"}})
	acts := l.step(fsm.FrameReceived{Conn: 1, Frame: join(0)})
	want(t, acts, "close c1")
	if strings.Contains(strings.Join(acts, "\n"), "connected") {
		t.Fatalf("priority 0 must not connect: %v", acts)
	}
}

// TestLegacyCrossedDial: a (smaller id) dials b while b's dial to a waits for
// its priority: a sends the smallest priority, confirms b's dial, and its own
// dial's refusal by FIN does not fail Connect.
func TestLegacyCrossedDial(t *testing.T) {
	for _, tc := range []struct {
		id   string
		prio string
	}{{"a", "JOIN closed=1 "}, {"c", "JOIN closed=4607182418800017408 "}} {
		l := newLegacyT(t, tc.id, true)
		want(t, l.step(fsm.Connect{Req: 1, Addr: "tcp://b:1"}), "dial d1 tcp://b:1 0.4.1")
		want(t, l.step(fsm.Dialed{Dial: 1, Conn: 1}), "write c1 HELLO id="+tc.id)
		l.step(fsm.Accepted{Conn: 2, Legacy: true})
		want(t, l.step(fsm.FrameReceived{Conn: 2, Frame: wire.Frame{Type: wire.Hello, ID: "b", Info: "tcp://b:1"}}), "write c2 HELLO")
		// b answers our dial: we are crossed with b's dial, which waits for its priority.
		want(t, l.step(fsm.FrameReceived{Conn: 1, Frame: wire.Frame{Type: wire.Hello, ID: "b"}}), "write c1 "+tc.prio)
		if tc.id == "a" {
			// b's random priority beats the smallest one: b's dial wins at both ends.
			want(t, l.step(fsm.FrameReceived{Conn: 2, Frame: join(0.5)}), "write c2 WELCOME", "connect-done r1 peer=b")
			acts := l.step(fsm.ConnClosed{Conn: 1, Err: errors.New("EOF")})
			if strings.Contains(strings.Join(acts, "\n"), "disconnected") {
				t.Fatalf("losing dial must not disconnect: %v", acts)
			}
		} else {
			// Our 1 beats b's random priority: we refuse b's dial; b confirms ours.
			want(t, l.step(fsm.FrameReceived{Conn: 2, Frame: join(0.5)}), "close c2")
			want(t, l.step(fsm.FrameReceived{Conn: 1, Frame: wire.Frame{Type: wire.Welcome, Sess: 1, Keep: true}}), "connected b", "connect-done r1 peer=b", "write c1 KEEP keep=1")
		}
		if s := l.n.Sessions(); len(s) != 1 || s[0] != "b" {
			t.Fatalf("%s: sessions %v", tc.id, s)
		}
	}
}

func TestLegacySendNeedsJSONObject(t *testing.T) {
	l := newLegacyT(t, "a", false)
	l.step(fsm.Accepted{Conn: 1, Legacy: true})
	l.step(fsm.FrameReceived{Conn: 1, Frame: wire.Frame{Type: wire.Hello, ID: "b", Info: "tcp://b:1"}})
	l.step(fsm.FrameReceived{Conn: 1, Frame: join(1)})
	for _, p := range []string{"raw", "[1]", "", `"s"`, "{bad", "{\"bad\":\"\xff\xfe\"}"} { // the last: not UTF-8
		if err := l.n.Step(l.now, fsm.Send{Peer: "b", Payload: []byte(p)}); !errors.Is(err, fsm.ErrNotJSONObject) {
			t.Fatalf("Send %q: %v, want ErrNotJSONObject", p, err)
		}
	}
	if err := l.n.Step(l.now, fsm.Send{Peer: "b", Payload: []byte(`{"ok":1}`)}); err != nil {
		t.Fatal(err)
	}
}

// Two Go nodes that meet over 0.4.1 (here: M dials Z with LegacyDial) must not
// make a 0.4.1 session, whose acceptor-leads rule would contradict v1's
// id-leader on a crossing v1 connection. Z's HELLO carries an incarnation, so
// M closes the connection as a duplicate and redials Z in v1 at once.
func TestLegacyBetweenGoNodesUpgradesToV1(t *testing.T) {
	l := newLegacyT(t, "M", true)
	want(t, l.step(fsm.Connect{Req: 1, Addr: "tcp://Z:1"}), "dial d1 tcp://Z:1 0.4.1")
	l.step(fsm.Dialed{Dial: 1, Conn: 1})
	got := l.step(fsm.FrameReceived{Conn: 1, Frame: wire.Frame{Type: wire.Hello, ID: "Z", Incarnation: 9}})
	want(t, got, "close c1", "switching to protocol v1")
	for _, a := range got {
		if strings.HasPrefix(a, "connect-done") {
			t.Fatalf("Connect finished on the upgrade itself: %s", a)
		}
	}
	got = l.step(fsm.Tick{})
	want(t, got, "dial d2 tcp://Z:1")
	for _, a := range got {
		if strings.Contains(a, "0.4.1") {
			t.Fatalf("redial still in 0.4.1: %s", a)
		}
	}

	// The acceptor side: a 0.4.1 HELLO with an incarnation is answered with
	// our own (so the dialer learns it too), then closed.
	a := newLegacyT(t, "A", false)
	a.step(fsm.Accepted{Conn: 5, Legacy: true})
	got = a.step(fsm.FrameReceived{Conn: 5, Frame: wire.Frame{Type: wire.Hello, ID: "Q", Incarnation: 3}})
	want(t, got, "write c5 HELLO id=A inc=7", "close c5")
}
