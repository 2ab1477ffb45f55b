package interop

import (
	"encoding/json"
	"testing"
	"time"
)

// These tests check the drivers themselves, Node.js against Node.js, before
// any Go node takes part: if they fail, the interop harness is broken, not
// masterless-go.

func isConnect(peer string) func(Event) bool {
	return func(e Event) bool { return e.Ev == "connect" && e.ID == peer }
}

func isMessage(from, data string) func(Event) bool {
	return func(e Event) bool { return e.Ev == "message" && e.From == from && jsonEqual(e.Data, data) }
}

func jsonEqual(a json.RawMessage, b string) bool {
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal([]byte(b), &y) != nil {
		return false
	}
	xb, _ := json.Marshal(x)
	yb, _ := json.Marshal(y)
	return string(xb) == string(yb)
}

func TestNodeDriversConnectAndEcho(t *testing.T) {
	a := Start(t, "node-a")
	b := Start(t, "node-b", "--echo")

	a.Connect(b.Info)
	a.Keep(b.ID, true)
	a.Expect(5*time.Second, "connect to b", isConnect(b.ID))
	b.Expect(5*time.Second, "connect from a", isConnect(a.ID))
	// Each side greets the other on connect (the hrtime workaround).
	a.Expect(5*time.Second, "greeting from b", isMessage(b.ID, `{"greeting":"node-b"}`))
	b.Expect(5*time.Second, "greeting from a", isMessage(a.ID, `{"greeting":"node-a"}`))

	a.Send(b.ID, map[string]any{"n": 1, "s": "héllo\r\n"})
	b.Expect(5*time.Second, "message from a", isMessage(a.ID, `{"n":1,"s":"héllo\r\n"}`))
	a.Expect(5*time.Second, "echo from b", isMessage(b.ID, `{"echo":{"n":1,"s":"héllo\r\n"}}`))

	// Past two heartbeat ticks both processes must still run: the greeting
	// kept 0.4.1's timer from crashing.
	time.Sleep(2200 * time.Millisecond)
	if !a.Alive() || !b.Alive() {
		t.Fatalf("a driver died after connecting (hrtime defect?)")
	}
	st := a.State()
	if n, ok := st.Nodes[b.ID]; !ok || !n.Stream || n.Local != 2 || !n.Kept {
		t.Fatalf("a's record of b = %+v, want an established outgoing stream that a keeps", st.Nodes)
	}

	// Neither keeps: b receives [false] and drops the connection; both report it.
	a.Keep(b.ID, false)
	b.Expect(5*time.Second, "disconnect of a", func(e Event) bool { return e.Ev == "disconnect" && e.ID == a.ID })
	a.Expect(5*time.Second, "disconnect of b", func(e Event) bool { return e.Ev == "disconnect" && e.ID == b.ID })
}

func TestNodeDriversSimultaneousTripleDial(t *testing.T) {
	a := Start(t, "node-a")
	b := Start(t, "node-b")
	for i := 0; i < 3; i++ {
		a.Connect(b.Info)
		b.Connect(a.Info)
	}
	a.Keep(b.ID, true)
	b.Keep(a.ID, true)
	a.Expect(5*time.Second, "connect to b", isConnect(b.ID))
	b.Expect(5*time.Second, "connect to a", isConnect(a.ID))

	time.Sleep(1200 * time.Millisecond) // let every loser close, and a tick pass
	a.Send(b.ID, map[string]any{"after": "dedup"})
	b.Expect(5*time.Second, "message from a", isMessage(a.ID, `{"after":"dedup"}`))
	for _, d := range []*Driver{a, b} {
		if n := len(d.Events(func(e Event) bool { return e.Ev == "connect" })); n != 1 {
			t.Errorf("%s: %d connect events, want 1:\n%s", d.ID, n, d.Transcript())
		}
		if n := len(d.Events(func(e Event) bool { return e.Ev == "disconnect" })); n != 0 {
			t.Errorf("%s: %d disconnect events, want 0:\n%s", d.ID, n, d.Transcript())
		}
	}
	// Exactly one TCP connection survives: one side counts one incoming
	// stable connection, the other none.
	sa, sb := a.State(), b.State()
	if got := sa.Incoming + sb.Incoming; got != 1 {
		t.Errorf("incoming TCP connections: a %d + b %d, want 1 in all", sa.Incoming, sb.Incoming)
	}
}
