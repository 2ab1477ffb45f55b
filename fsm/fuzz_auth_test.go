package fsm_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/masterless-go/masterless/fsm"
	"github.com/masterless-go/masterless/spec"
	"github.com/masterless-go/masterless/wire"
)

// FuzzAuthFrames feeds arbitrary frame sequences, after the security
// handshake, to a node that requires authentication (spec/PROTOCOL.md,
// section 7), on connections authenticated as various ids and on plaintext
// ones, interleaved with new connections and timer ticks. The node may close
// connections but must never panic, must keep spec.CheckLocal, and must never
// hold a connection or a session for an id other than the one its connection
// authenticated (authFramesCheck).
//
// The input is: flags (bit 0: PlaintextLegacy), then repeated records of one
// selector byte and one v1 frame. A selector with the top bit set first opens
// a new connection: accepted or (bit 6) dialed, authenticated as one of
// authIDs (bits 0-2; "" is plaintext), 0.4.1 if plaintext and bit 3; the
// frame then goes to it. Otherwise the frame goes to the connection opened
// selector-th last (mod the number opened): 0 is the latest.
func FuzzAuthFrames(f *testing.F) {
	var c wire.Binary
	rec := func(sel byte, fr wire.Frame) []byte {
		b, err := c.AppendFrame([]byte{sel}, &fr)
		if err != nil {
			f.Fatal(err)
		}
		return b
	}
	cat := func(parts ...[]byte) []byte {
		var b []byte
		for _, p := range parts {
			b = append(b, p...)
		}
		return b
	}
	hello := func(id string, inc uint64) wire.Frame { return wire.Frame{Type: wire.Hello, ID: id, Incarnation: inc} }
	// A plaintext connection forging A with a newer incarnation, then the
	// grant it would need.
	f.Add(uint8(0), cat(rec(0x80|4, hello("A", 9)), rec(0, wire.Frame{Type: wire.Join, Keep: true})))
	// An insider authenticated as B forging Z, then a WELCOME.
	f.Add(uint8(0), cat(rec(0x80|1, hello("Z", 9)), rec(0, wire.Frame{Type: wire.Welcome, Sess: 7, Keep: true})))
	// B authenticated as itself: a session; then a replay of A's HELLO on it.
	f.Add(uint8(0), cat(rec(0x80|1, hello("B", 1)), rec(0, wire.Frame{Type: wire.Join, Keep: true}), rec(0, hello("A", 1))))
	// The dial to Z answered by Z, then a plaintext 0.4.1 impostor of Z and
	// of C under PlaintextLegacy.
	f.Add(uint8(1), cat(rec(0, hello("Z", 3)), rec(0, wire.Frame{Type: wire.Welcome, Sess: 1}),
		rec(0x80|8|4, hello("Z", 0)), rec(0x80|8|4, hello("C", 0)), rec(0, join(1))))
	// Replayed session frames on a connection that never said HELLO.
	f.Add(uint8(0), cat(rec(0x80|0, wire.Frame{Type: wire.Resume, Next: 1}), rec(0, wire.Frame{Type: wire.Ack, Credit: 1 << 20}),
		rec(0, wire.Frame{Type: wire.Data, Payload: []byte("x")}), rec(1, wire.Frame{Type: wire.Bye, Code: wire.CodeReplaced})))
	// Dialed connections authenticated as B and as M whose acceptors claim M.
	f.Add(uint8(0), cat(rec(0x80|0x40|1, hello("M", 2)), rec(0x80|0x40|3, hello("M", 1))))
	f.Fuzz(func(t *testing.T, flags uint8, b []byte) {
		if _, err := authFrames(flags, b, fsm.Config{}); err != nil {
			t.Fatal(err)
		}
	})
}

// authIDs are the ids a fuzzed connection can be authenticated as: "" is
// plaintext, M is the node's own id, A and B are smaller than M (M leads), Z
// greater.
var authIDs = [8]string{"A", "B", "Z", "M", "", "A", "Z", ""}

// authConn is what the test knows of a connection: what its security
// handshake proved, and whether it speaks 0.4.1.
type authConn struct {
	auth   string
	legacy bool
}

// authReach counts, over the steps of one input, those after which node M
// held a session over an authenticated connection and over a plaintext
// 0.4.1 one: what the inputs reach, for the tests of the seeds.
type authReach struct{ authSessions, legacySessions int }

// authFrames runs one fuzz input against node M (cfg adds to its
// configuration, for the negative controls) and returns the first broken
// rule, or nil.
func authFrames(flags uint8, b []byte, cfg fsm.Config) (reach authReach, err error) {
	cfg.ID, cfg.Incarnation, cfg.Seed = "M", 5, 1
	cfg.RequireAuth, cfg.PlaintextLegacy = true, flags&1 != 0
	n, err := fsm.New(cfg)
	if err != nil {
		return reach, err
	}
	now := time.Duration(0)
	conns := map[fsm.ConnID]authConn{}
	var order []fsm.ConnID
	var dials fsm.DialID
	step := func(ev fsm.Event) error {
		_ = n.Step(now, ev) // refusals are fine; panics are not
		n.Ready()
		if err := n.CheckTimers(); err != nil {
			return fmt.Errorf("after %#v: %w", ev, err)
		}
		s := spec.FromFSM(n, func(c fsm.ConnID) spec.ConnID { return spec.ConnID(c) })
		if err := spec.CheckLocal(&s); err != nil {
			return fmt.Errorf("after %#v: %w", ev, err)
		}
		if err := authFramesCheck(n, conns, cfg.PlaintextLegacy); err != nil {
			return fmt.Errorf("after %#v: %w", ev, err)
		}
		for _, p := range n.Peers() {
			if a, ok := conns[p.SessionConn]; ok && a.auth != "" {
				reach.authSessions++
			} else if ok && a.legacy {
				reach.legacySessions++
			}
		}
		return nil
	}
	open := func(sel byte) error {
		id := fsm.ConnID(len(order) + 1)
		a := authConn{auth: authIDs[sel&7]}
		a.legacy = a.auth == "" && sel&8 != 0
		conns[id] = a
		order = append(order, id)
		if sel&0x40 != 0 { // dialed
			dials++
			if err := step(fsm.Connect{Req: fsm.ReqID(dials), Addr: fmt.Sprintf("tcp://peer%d:1", dials)}); err != nil {
				return err
			}
			a.legacy = false // the node dials in v1
			conns[id] = a
			return step(fsm.Dialed{Dial: dials, Conn: id, Peer: a.auth})
		}
		return step(fsm.Accepted{Conn: id, Legacy: a.legacy, Peer: a.auth})
	}
	if err := step(fsm.Listening{Info: "tcp://M:1"}); err != nil {
		return reach, err
	}
	// c1: a dial to Z, authenticated as Z, waiting for Z's HELLO.
	if err := open(0x40 | 2); err != nil {
		return reach, err
	}
	var codec wire.Binary
	for len(b) > 1 {
		sel := b[0]
		fr, used, perr := codec.ParseFrame(b[1:])
		if perr != nil || used == 0 {
			return reach, nil // the rest is not a frame: a real link would close the connection
		}
		b = b[1+used:]
		if sel&0x80 != 0 {
			if err := open(sel); err != nil {
				return reach, err
			}
		}
		id := order[len(order)-1]
		if sel&0x80 == 0 {
			id = order[len(order)-1-int(sel)%len(order)]
		}
		if conns[id].legacy {
			if !legacyShaped(&fr) {
				continue // the 0.4.1 codec never yields it
			}
		}
		if err := step(fsm.FrameReceived{Conn: id, Frame: fr}); err != nil {
			return reach, err
		}
		now += 300 * time.Millisecond
		if err := step(fsm.Tick{}); err != nil {
			return reach, err
		}
	}
	now += time.Minute
	return reach, step(fsm.Tick{})
}

// legacyShaped makes f a frame the 0.4.1 codec can yield, or reports that
// it cannot be one.
func legacyShaped(f *wire.Frame) bool {
	switch f.Type {
	case wire.Join:
		wire.SetLegacyPriority(f, float64((f.Closed+1000)%1001)/1000) // in [0, 1]; 1 for Closed 0
		f.Keep = true
	case wire.Hello, wire.Welcome, wire.Keep, wire.Ping, wire.Data:
	default:
		return false
	}
	return true
}

// authFramesCheck: every connection of n that took a HELLO names the id its
// security handshake authenticated; a plaintext one took a HELLO only if it
// speaks 0.4.1 and plaintextLegacy allows it; and the same holds of every
// session in n's peer table.
func authFramesCheck(n *fsm.Node, conns map[fsm.ConnID]authConn, plaintextLegacy bool) error {
	var errs []error
	ok := func(id fsm.ConnID, peer, what string) {
		a, known := conns[id]
		switch {
		case !known:
			errs = append(errs, fmt.Errorf("auth: %s c%d with %s: a connection the test never opened", what, id, peer))
		case a.auth != "" && a.auth != peer:
			errs = append(errs, fmt.Errorf("auth: %s c%d is with %s, but the connection authenticated as %s", what, id, peer, a.auth))
		case a.auth == "" && !(a.legacy && plaintextLegacy):
			errs = append(errs, fmt.Errorf("auth: %s c%d is with %s over plaintext (0.4.1: %t, plaintext 0.4.1 allowed: %t)", what, id, peer, a.legacy, plaintextLegacy))
		}
	}
	for _, c := range n.Conns() {
		if c.Peer != "" {
			ok(c.ID, c.Peer, "connection")
		}
	}
	for _, p := range n.Peers() {
		if p.SessionConn != 0 {
			ok(p.SessionConn, p.ID, "session")
		}
	}
	return errors.Join(errs...)
}

// TestAuthFramesCheckCatches is authFramesCheck's negative control: a node
// whose session with A came over a connection the test says authenticated
// as B, or over plaintext, must fail it.
func TestAuthFramesCheckCatches(t *testing.T) {
	n, err := fsm.New(fsm.Config{ID: "M", Incarnation: 1, RequireAuth: true})
	if err != nil {
		t.Fatal(err)
	}
	_ = n.Step(0, fsm.Accepted{Conn: 1, Peer: "A"})
	_ = n.Step(0, fsm.FrameReceived{Conn: 1, Frame: wire.Frame{Type: wire.Hello, ID: "A", Incarnation: 1}})
	if _, ok := n.SessionConn("A"); !ok {
		t.Fatal("setup: A has no session")
	}
	if err := authFramesCheck(n, map[fsm.ConnID]authConn{1: {auth: "A"}}, false); err != nil {
		t.Fatalf("a healthy node fails: %v", err)
	}
	for _, lie := range []authConn{{auth: "B"}, {}, {legacy: true}} {
		if err := authFramesCheck(n, map[fsm.ConnID]authConn{1: lie}, false); err == nil {
			t.Errorf("session with A over a connection %+v not caught", lie)
		}
	}
}

// TestAuthFramesSeedsPass runs the fuzz target's setups once with every
// authentication id, so that plain go test covers what the fuzzer starts
// from, and checks that they reach what the check is about: sessions over
// authenticated connections, and over plaintext 0.4.1 ones only where
// PlaintextLegacy allows them.
func TestAuthFramesSeedsPass(t *testing.T) {
	var c wire.Binary
	var total [2]authReach
	for sel := byte(0x80); sel < 0x90; sel++ {
		for _, id := range []string{"A", "B", "Z", "M", "C"} {
			inc := uint64(9)
			if authIDs[sel&7] == "" && sel&8 != 0 {
				inc = 0 // 0.4.1 (with an incarnation, a Go node speaking 0.4.1: moved to v1)
			}
			b, _ := c.AppendFrame([]byte{sel}, &wire.Frame{Type: wire.Hello, ID: id, Incarnation: inc})
			b, _ = c.AppendFrame(append(b, 0), &wire.Frame{Type: wire.Join, Keep: true})
			b, _ = c.AppendFrame(append(b, 0), &wire.Frame{Type: wire.Welcome, Sess: 3, Keep: true})
			for flags := uint8(0); flags < 2; flags++ {
				r, err := authFrames(flags, b, fsm.Config{})
				if err != nil {
					t.Fatalf("sel %#x id %s flags %d: %v", sel, id, flags, err)
				}
				total[flags].authSessions += r.authSessions
				total[flags].legacySessions += r.legacySessions
			}
		}
	}
	if total[0].authSessions == 0 || total[1].authSessions == 0 {
		t.Errorf("no seed reached a session over an authenticated connection: %+v", total)
	}
	if total[0].legacySessions != 0 || total[1].legacySessions == 0 {
		t.Errorf("0.4.1 impostor sessions: %d without PlaintextLegacy (want none), %d with (want some)", total[0].legacySessions, total[1].legacySessions)
	}
}
