package fsm_test

import (
	"strings"
	"testing"
	"time"

	"github.com/masterless-go/masterless/fsm"
	"github.com/masterless-go/masterless/wire"
)

// Unit tests of the authentication rule (fsm/auth.go): node "m" accepts
// connections and is shown HELLOs; the adapter's security handshake is
// represented by Accepted.Peer and Dialed.Peer.

func newAuthT(t *testing.T, cfg fsm.Config) *legacyT {
	cfg.ID, cfg.Incarnation, cfg.Seed = "m", 7, 1
	n, err := fsm.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	l := &legacyT{t: t, n: n}
	l.step(fsm.Listening{Info: "tcp://m:1"})
	return l
}

func hello(id string, inc uint64) fsm.FrameReceived {
	return fsm.FrameReceived{Frame: wire.Frame{Type: wire.Hello, ID: id, Incarnation: inc}}
}

func on(c fsm.ConnID, ev fsm.FrameReceived) fsm.FrameReceived {
	ev.Conn = c
	return ev
}

func refused(t *testing.T, got []string, sentinel string) {
	t.Helper()
	all := strings.Join(got, "\n")
	if !strings.Contains(all, "close c") || !strings.Contains(all, sentinel) {
		t.Fatalf("want the connection closed with %q, got:\n%s", sentinel, all)
	}
}

func notRefused(t *testing.T, got []string) {
	t.Helper()
	all := strings.Join(got, "\n")
	if strings.Contains(all, "close c") {
		t.Fatalf("want the HELLO taken, got:\n%s", all)
	}
}

func TestAuthHelloMustNameTheAuthenticatedID(t *testing.T) {
	l := newAuthT(t, fsm.Config{RequireAuth: true})
	l.step(fsm.Accepted{Conn: 1, Peer: "a"})
	refused(t, l.step(on(1, hello("z", 9))), "differs from the id its key")
	l.step(fsm.Accepted{Conn: 2, Peer: "a"})
	notRefused(t, l.step(on(2, hello("a", 9))))
}

func TestAuthRequiredRefusesPlaintext(t *testing.T) {
	l := newAuthT(t, fsm.Config{RequireAuth: true})
	// A v1 plaintext connection is refused as soon as its protocol is known,
	// before this node says anything of itself: a BYE, no HELLO.
	got := l.step(fsm.Accepted{Conn: 1})
	refused(t, got, "not authenticated")
	if all := strings.Join(got, "\n"); strings.Contains(all, "HELLO") {
		t.Fatalf("a HELLO went to an unauthenticated dialer:\n%s", all)
	}
	// A 0.4.1 dialer is refused too unless PlaintextLegacy allows it.
	l.step(fsm.Accepted{Conn: 2, Legacy: true})
	refused(t, l.step(on(2, hello("j", 0))), "not authenticated")

	l = newAuthT(t, fsm.Config{RequireAuth: true, PlaintextLegacy: true})
	l.step(fsm.Accepted{Conn: 1, Legacy: true})
	notRefused(t, l.step(on(1, hello("j", 0))))
	refused(t, l.step(fsm.Accepted{Conn: 2}), "not authenticated") // v1 never in plaintext
}

// An impostor over plaintext 0.4.1 cannot take over an id that has
// authenticated, and the authenticated node replaces an impostor's session.
func TestAuthPlaintextLegacyCannotEvictAuthenticated(t *testing.T) {
	l := newAuthT(t, fsm.Config{RequireAuth: true, PlaintextLegacy: true})
	// "a" (smaller id: m leads) authenticates and gets a session.
	l.step(fsm.Accepted{Conn: 1, Peer: "a"})
	want(t, l.step(on(1, hello("a", 9))), "WELCOME")
	// A plaintext 0.4.1 connection claiming "a" is refused.
	l.step(fsm.Accepted{Conn: 2, Legacy: true})
	refused(t, l.step(on(2, hello("a", 0))), "authenticated before")
	if c, _ := l.n.SessionConn("a"); c != 1 {
		t.Fatalf("session of a moved to c%d", c)
	}

	// An impostor of "b", which never authenticated, gets a 0.4.1 session...
	l.step(fsm.Accepted{Conn: 3, Legacy: true})
	notRefused(t, l.step(on(3, hello("b", 0))))
	l.step(on(3, fsm.FrameReceived{Frame: join(1)}))
	if c, _ := l.n.SessionConn("b"); c != 3 {
		t.Fatalf("impostor has no session (c%d): the setup is wrong", c)
	}
	// ...which the real "b", authenticated, replaces at once.
	l.step(fsm.Accepted{Conn: 4, Peer: "b"})
	want(t, l.step(on(4, hello("b", 5))), "WELCOME", "close c3")
	if c, _ := l.n.SessionConn("b"); c != 4 {
		t.Fatalf("authenticated b did not take the session: c%d", c)
	}
}

// A dialed connection is checked the same way: the acceptor's HELLO must
// name the id its key proved.
func TestAuthDialedChecksTheAcceptor(t *testing.T) {
	l := newAuthT(t, fsm.Config{RequireAuth: true})
	l.step(fsm.Connect{Req: 1, Addr: "tcp://z:1"})
	l.step(fsm.Dialed{Dial: 1, Conn: 5, Peer: "z"})
	refused(t, l.step(on(5, hello("y", 3))), "differs from the id its key")
	l.now += time.Second
}

// Without RequireAuth (no identity configured), plaintext is the protocol as
// before.
func TestAuthOffTakesPlaintext(t *testing.T) {
	l := newAuthT(t, fsm.Config{})
	l.step(fsm.Accepted{Conn: 1})
	notRefused(t, l.step(on(1, hello("a", 9))))
}
