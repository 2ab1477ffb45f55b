//go:build masterless_trace

package fsm_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/masterless-go/masterless/fsm"
	"github.com/masterless-go/masterless/wire"
)

// The trace points (fsm/trace.go), run with: go test -tags masterless_trace ./fsm

type traceLog struct {
	n    *fsm.Node
	now  time.Duration
	recs []string
}

func newTraceLog(t *testing.T, cfg fsm.Config) *traceLog {
	n, err := fsm.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	l := &traceLog{n: n}
	if !n.SetTracer(l.add) {
		t.Fatal("SetTracer reports no trace points in a masterless_trace build")
	}
	l.step(fsm.Listening{Info: "tcp://" + cfg.ID})
	return l
}

// add renders a record: kind, conn, frame, then the state.
func (l *traceLog) add(r *fsm.TraceRecord) {
	s := r.Kind
	if r.Conn != 0 {
		s += fmt.Sprintf(" c%d", r.Conn)
	}
	if r.Peer != "" {
		s += " " + r.Peer
	}
	if r.Frame.Type != "" {
		s += " " + r.Frame.Type
	}
	s += " |"
	for _, c := range r.Conns {
		s += fmt.Sprintf(" c%d:%s:%s/%d#%d", c.Conn, c.State, c.Peer, c.PeerInc, c.Sess)
	}
	s += " |"
	for _, p := range r.Peers {
		s += fmt.Sprintf(" %s:keep=%t:c%d", p.Peer, p.Keep, p.SessionConn)
	}
	l.recs = append(l.recs, s)
}

func (l *traceLog) step(ev fsm.Event) []string {
	l.recs = nil
	_ = l.n.Step(l.now, ev)
	l.n.Ready()
	return l.recs
}

func wantRecs(t *testing.T, got []string, want ...string) {
	t.Helper()
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("records:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestTraceRecords(t *testing.T) {
	l := newTraceLog(t, fsm.Config{ID: "M", Incarnation: 3, MaxHandshakes: 2})
	wantRecs(t, l.step(fsm.Accepted{Conn: 1}), "accept c1 | c1:hello:/0#0 |")
	// A HELLO from a greater id: M follows, sends JOIN.
	wantRecs(t, l.step(fsm.FrameReceived{Conn: 1, Frame: wire.Frame{Type: wire.Hello, ID: "Z", Incarnation: 9}}),
		"frame c1 HELLO | c1:welcome:Z/9#0 | Z:keep=false:c0")
	// A Connect to an address no known peer has: a dial, a connect record.
	l.step(fsm.FrameReceived{Conn: 1, Frame: wire.Frame{Type: wire.Welcome, Sess: 4}})
	// Z's ACK and RESUME confirm the session, which until then holds a
	// handshake slot (spec/PROTOCOL.md 3.6).
	l.step(fsm.FrameReceived{Conn: 1, Frame: wire.Frame{Type: wire.Ack, Credit: 1 << 20}})
	l.step(fsm.FrameReceived{Conn: 1, Frame: wire.Frame{Type: wire.Resume, Next: 1}})
	wantRecs(t, l.step(fsm.Connect{Req: 1, Addr: "tcp://A"}), "connect | c1:established:Z/9#4 | Z:keep=false:c1")
	// A dial to A whose HELLO binds the Connect: keep first, then the frame.
	wantRecs(t, l.step(fsm.Dialed{Dial: 1, Conn: 2}), "dialed c2 | c1:established:Z/9#4 c2:hello:/0#0 | Z:keep=false:c1")
	wantRecs(t, l.step(fsm.FrameReceived{Conn: 2, Frame: wire.Frame{Type: wire.Hello, ID: "A", Incarnation: 1}}),
		"keep A | c1:established:Z/9#4 c2:hello:/0#0 | A:keep=true:c0 Z:keep=false:c1",
		"frame c2 HELLO | c1:established:Z/9#4 c2:established:A/1#1 | A:keep=true:c2 Z:keep=false:c1")
	// PING and DATA change nothing shown: no record.
	wantRecs(t, l.step(fsm.FrameReceived{Conn: 2, Frame: wire.Frame{Type: wire.Ping}}))
	// Two handshakes fill the slots; a third evicts the oldest silent one
	// (spec/PROTOCOL.md 3.6), which the model sees as an early handshake
	// timeout, then is accepted.
	l.step(fsm.Accepted{Conn: 3})
	l.step(fsm.Accepted{Conn: 5})
	wantRecs(t, l.step(fsm.Incoming{Conn: 7}),
		"tick c3 | c1:established:Z/9#4 c2:established:A/1#1 c5:hello:/0#0 | A:keep=true:c2 Z:keep=false:c1")
	wantRecs(t, l.step(fsm.Accepted{Conn: 7}),
		"accept c7 | c1:established:Z/9#4 c2:established:A/1#1 c5:hello:/0#0 c7:hello:/0#0 | A:keep=true:c2 Z:keep=false:c1")
	// A Tick a minute late times out both handshakes, one record per close;
	// the sessions get a grace for the node's own pause (spec/PROTOCOL.md
	// 4), and the Tick at its end times them out.
	l.now += time.Minute
	wantRecs(t, l.step(fsm.Tick{}),
		"tick c5 | c1:established:Z/9#4 c2:established:A/1#1 c7:hello:/0#0 | A:keep=true:c2 Z:keep=false:c1",
		"tick c7 | c1:established:Z/9#4 c2:established:A/1#1 | A:keep=true:c2 Z:keep=false:c1")
	l.now += 5 * time.Second
	wantRecs(t, l.step(fsm.Tick{}),
		"tick c1 | c2:established:A/1#1 | A:keep=true:c2 Z:keep=false:c0",
		"tick c2 | | A:keep=true:c0 Z:keep=false:c0")
	// Two dials of our own hold both slots, and cannot be evicted: an
	// accepted connection is refused at once: opened, then closed.
	l.step(fsm.Connect{Req: 2, Addr: "tcp://B"})
	l.step(fsm.Connect{Req: 3, Addr: "tcp://C"})
	l.step(fsm.Dialed{Dial: 2, Conn: 8})
	l.step(fsm.Dialed{Dial: 3, Conn: 9})
	wantRecs(t, l.step(fsm.Accepted{Conn: 11}),
		"accept c11 | c8:hello:/0#0 c9:hello:/0#0 c11:hello:/0#0 | A:keep=true:c0 Z:keep=false:c0",
		"tick c11 | c8:hello:/0#0 c9:hello:/0#0 | A:keep=true:c0 Z:keep=false:c0")
	// A frame for a connection already closed here: nothing.
	wantRecs(t, l.step(fsm.FrameReceived{Conn: 1, Frame: wire.Frame{Type: wire.Keep}}))
	wantRecs(t, l.step(fsm.Disconnect{Peer: "A"}), "disconnect A | c8:hello:/0#0 c9:hello:/0#0 | A:keep=false:c0 Z:keep=false:c0")
	wantRecs(t, l.step(fsm.Disconnect{Peer: "A"}))
}
