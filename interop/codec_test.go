package interop

import (
	"bufio"
	"net"
	"testing"
	"time"

	"github.com/masterless-go/masterless/wire"
)

// These tests speak 0.4.1 by hand through wire.Legacy, with no fsm: they
// prove the codec's bytes are what the real package expects.

type rawConn struct {
	t     *testing.T
	c     net.Conn
	r     *bufio.Reader
	codec *wire.Legacy
	buf   []byte
}

func (rc *rawConn) write(f wire.Frame) {
	rc.t.Helper()
	b, err := rc.codec.AppendFrame(nil, &f)
	if err != nil {
		rc.t.Fatal(err)
	}
	if _, err := rc.c.Write(b); err != nil {
		rc.t.Fatal(err)
	}
	if f.Type == wire.Welcome { // we confirmed: from now on objects are data
		rc.codec.Phase = wire.LegacyPhaseEstablished
	}
}

func (rc *rawConn) read() wire.Frame {
	rc.t.Helper()
	rc.c.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		if f, n, err := rc.codec.ParseFrame(rc.buf); err != nil {
			rc.t.Fatal(err)
		} else if n > 0 {
			// Copy: the payload aliases the buffer we are about to shift.
			f.Payload = append([]byte(nil), f.Payload...)
			rc.buf = rc.buf[n:]
			// The codec keeps no handshake state: say where we are, as
			// package link does from the state machine.
			switch f.Type {
			case wire.Hello:
				rc.codec.Phase = wire.LegacyPhaseHandshake
			case wire.Welcome:
				rc.codec.Phase = wire.LegacyPhaseEstablished
			}
			return f
		}
		chunk := make([]byte, 4096)
		n, err := rc.r.Read(chunk)
		if err != nil {
			rc.t.Fatalf("read: %v (buffered %q)", err, rc.buf)
		}
		rc.buf = append(rc.buf, chunk[:n]...)
	}
}

// readSkippingPings returns the next frame that is not a heartbeat.
func (rc *rawConn) readSkippingPings() wire.Frame {
	rc.t.Helper()
	for {
		if f := rc.read(); f.Type != wire.Ping {
			return f
		}
	}
}

func join(p float64) wire.Frame {
	f := wire.Frame{Type: wire.Join}
	wire.SetLegacyPriority(&f, p)
	return f
}

func TestLegacyCodecDialsNode(t *testing.T) {
	node := Start(t, "node-b", "--echo")
	addr := node.Info[len("tcp://"):]
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	rc := &rawConn{t: t, c: c, r: bufio.NewReader(c), codec: &wire.Legacy{}}

	rc.write(wire.Frame{Type: wire.Hello, ID: "go-a", Info: "tcp://127.0.0.1:1"})
	if f := rc.read(); f.Type != wire.Hello || f.ID != "node-b" {
		t.Fatalf("want HELLO from node-b, got %s", f.String())
	}
	rc.write(join(wire.LegacyPriorityMax))
	if f := rc.read(); f.Type != wire.Welcome {
		t.Fatalf("want WELCOME, got %s", f.String())
	}
	node.Expect(5*time.Second, "connect", isConnect("go-a"))
	rc.write(wire.Frame{Type: wire.Keep, Keep: true})
	// The driver greets, then 0.4.1 sends its keep flag.
	if f := rc.read(); f.Type != wire.Data || string(f.Payload) != `{"greeting":"node-b"}` {
		t.Fatalf("want the greeting, got %s", f.String())
	}
	if f := rc.read(); f.Type != wire.Keep || f.Keep {
		t.Fatalf("want KEEP false, got %s", f.String())
	}
	rc.write(wire.Frame{Type: wire.Data, Payload: []byte("{\"go\": \"héllo\",\n\"n\": [1, 2]}")})
	node.Expect(5*time.Second, "message", isMessage("go-a", `{"go":"héllo","n":[1,2]}`))
	if f := rc.readSkippingPings(); f.Type != wire.Data || string(f.Payload) != `{"echo":{"go":"héllo","n":[1,2]}}` {
		t.Fatalf("want the echo, got %s", f.String())
	}
	// Idle for over a second: 0.4.1 heartbeats with true.
	if f := rc.read(); f.Type != wire.Ping {
		t.Fatalf("want a heartbeat, got %s", f.String())
	}
	// Neither keeps: 0.4.1 closes when it reads [false].
	rc.write(wire.Frame{Type: wire.Keep, Keep: false})
	node.Expect(5*time.Second, "disconnect", func(e Event) bool { return e.Ev == "disconnect" && e.ID == "go-a" })
}

func TestLegacyCodecAcceptsNode(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	node := Start(t, "node-b")
	node.Connect("tcp://" + ln.Addr().String())
	node.Keep("go-a", true)
	c, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	rc := &rawConn{t: t, c: c, r: bufio.NewReader(c), codec: &wire.Legacy{}}

	// Detect the protocol from the first byte, as a dual-protocol acceptor would.
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	first, err := rc.r.Peek(1)
	if err != nil {
		t.Fatal(err)
	}
	if legacy, decided := wire.DetectLegacy(first); !legacy || !decided {
		t.Fatalf("DetectLegacy(%q) = %v, %v", first, legacy, decided)
	}
	if f := rc.read(); f.Type != wire.Hello || f.ID != "node-b" || f.Info != node.Info {
		t.Fatalf("want HELLO from node-b with info %s, got %s", node.Info, f.String())
	}
	rc.write(wire.Frame{Type: wire.Hello, ID: "go-a"})
	f := rc.read()
	if f.Type != wire.Join || wire.LegacyPriority(&f) != 1 {
		t.Fatalf("want JOIN priority 1, got %s (priority %v)", f.String(), wire.LegacyPriority(&f))
	}
	rc.write(wire.Frame{Type: wire.Welcome, Sess: 1})
	rc.write(wire.Frame{Type: wire.Data, Payload: []byte(`{"from":"go"}`)})
	rc.write(wire.Frame{Type: wire.Keep, Keep: false})
	node.Expect(5*time.Second, "connect", isConnect("go-a"))
	node.Expect(5*time.Second, "message", isMessage("go-a", `{"from":"go"}`))
	if f := rc.read(); f.Type != wire.Data || string(f.Payload) != `{"greeting":"node-b"}` {
		t.Fatalf("want the greeting, got %s", f.String())
	}
	if f := rc.read(); f.Type != wire.Keep || !f.Keep {
		t.Fatalf("want KEEP true (node-b keeps go-a), got %s", f.String())
	}
	// node-b holds the session on its outgoing connection.
	st := node.State()
	if n := st.Nodes["go-a"]; n.Local != 2 || !n.Stream {
		t.Fatalf("node-b's record of go-a: %+v", st.Nodes)
	}
}
