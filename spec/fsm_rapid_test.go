package spec_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/masterless-go/masterless/fsm"
	"github.com/masterless-go/masterless/spec"
	"github.com/masterless-go/masterless/wire"
)

// fsmMachine drives one fsm.Node with arbitrary events, the way a hostile
// network and a careless user could: random frames in every state,
// malformed input, events for unknown or closed connections, dial results
// for dials never asked for, time jumps. It plays a correct adapter (fresh
// connection ids, no events for connections the fsm closed ... except where
// the adapter contract allows it) and checks after every step that the node
// does not panic, keeps its local invariants, never writes to a connection it
// does not hold, and never sleeps past a due timer.
type fsmMachine struct {
	n        *fsm.Node
	cfg      fsm.Config
	now      time.Duration
	nextConn fsm.ConnID
	nextReq  fsm.ReqID
	open     map[fsm.ConnID]time.Duration // adapter-side open connections: opened at
	lastRecv map[fsm.ConnID]time.Duration // last frame fed on each
	// graces: the own-pause grace a late Tick gave a session whose silence
	// began at lastRecv (fsm/session.go, peerTimeoutAt): its peer timeout
	// then ends at until instead, once per silence.
	graces map[fsm.ConnID]grace
	dials  []fsm.DialID
}

// grace is one session's own-pause grace: for the silence that began at
// from, the peer timeout ends at until.
type grace struct{ from, until time.Duration }

const selfAddr = "tcp://m:1"

func newFSMMachine(t *rapid.T) *fsmMachine {
	cfg := fsm.Config{ID: "m", Incarnation: 5, Seed: rapid.Uint64().Draw(t, "seed")}
	n, err := fsm.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	m := &fsmMachine{n: n, cfg: n.Config(), open: map[fsm.ConnID]time.Duration{}, lastRecv: map[fsm.ConnID]time.Duration{}, graces: map[fsm.ConnID]grace{}}
	m.step(t, fsm.Listening{Info: selfAddr})
	return m
}

// step feeds ev and plays the adapter for the actions.
func (m *fsmMachine) step(t *rapid.T, ev fsm.Event) {
	if fr, ok := ev.(fsm.FrameReceived); ok {
		if _, open := m.open[fr.Conn]; open {
			m.lastRecv[fr.Conn] = m.now
		}
	}
	_ = m.n.Step(m.now, ev) // user errors are fine; panics are not
	var split []fsm.Action
	for _, a0 := range m.n.Ready() {
		split = a0.Split(split[:0])
		for _, a := range split {
			switch a.Kind {
			case fsm.ActDial:
				m.dials = append(m.dials, a.Dial)
			case fsm.ActWrite:
				if _, ok := m.open[a.Conn]; !ok {
					t.Fatalf("after %s: wrote %s on c%d, which is not open", evName(ev), a.Frame.String(), a.Conn)
				}
				if _, err := (wire.Binary{}).AppendFrame(nil, &a.Frame); err != nil {
					t.Fatalf("after %s: wrote an unencodable frame %s: %v", evName(ev), a.Frame.String(), err)
				}
			case fsm.ActClose:
				delete(m.open, a.Conn)
				delete(m.lastRecv, a.Conn)
				delete(m.graces, a.Conn)
			}
		}
	}
}

func evName(ev fsm.Event) string { return fmt.Sprintf("%T%+v", ev, ev) }

// anyConn picks an open connection, a closed or never-opened one, or zero.
func (m *fsmMachine) anyConn(t *rapid.T) fsm.ConnID {
	var ids []fsm.ConnID
	for id := range m.open {
		ids = append(ids, id)
	}
	if len(ids) > 0 && rapid.IntRange(0, 9).Draw(t, "known") > 0 {
		sortConns(ids)
		return rapid.SampledFrom(ids).Draw(t, "conn")
	}
	return fsm.ConnID(rapid.IntRange(0, int(m.nextConn)+2).Draw(t, "unknownConn"))
}

func sortConns(ids []fsm.ConnID) {
	for i := 1; i < len(ids); i++ {
		for j := i; j > 0 && ids[j] < ids[j-1]; j-- {
			ids[j], ids[j-1] = ids[j-1], ids[j]
		}
	}
}

func (m *fsmMachine) fresh() fsm.ConnID {
	m.nextConn++
	return m.nextConn
}

func (m *fsmMachine) Accept(t *rapid.T) {
	id := m.fresh()
	m.open[id] = m.now
	m.step(t, fsm.Accepted{Conn: id})
}

// AcceptLegacy opens a connection whose dialer speaks masterless 0.4.1; the
// frames that follow are as arbitrary as on any other.
func (m *fsmMachine) AcceptLegacy(t *rapid.T) {
	id := m.fresh()
	m.open[id] = m.now
	m.step(t, fsm.Accepted{Conn: id, Legacy: true})
}

// drawDial picks a dial the node asked for, or a stray id it never used.
func (m *fsmMachine) drawDial(t *rapid.T) fsm.DialID {
	d := fsm.DialID(rapid.IntRange(0, 3).Draw(t, "strayDial"))
	if len(m.dials) > 0 && rapid.Bool().Draw(t, "realDial") {
		d = rapid.SampledFrom(m.dials).Draw(t, "dial")
	}
	return d
}

func (m *fsmMachine) Dialed(t *rapid.T) {
	d := m.drawDial(t)
	id := m.fresh()
	m.open[id] = m.now
	m.step(t, fsm.Dialed{Dial: d, Conn: id})
}

func (m *fsmMachine) DialFailed(t *rapid.T) {
	d := m.drawDial(t)
	m.step(t, fsm.DialFailed{Dial: d, Err: errors.New("refused")})
}

func genFrame(t *rapid.T) wire.Frame {
	f := wire.Frame{Type: wire.Type(rapid.IntRange(1, 7).Draw(t, "type"))}
	switch f.Type {
	case wire.Hello:
		f.ID = rapid.SampledFrom([]string{"a", "m", "z", "zz"}).Draw(t, "id")
		f.Incarnation = uint64(rapid.IntRange(3, 7).Draw(t, "inc"))
		f.Info = rapid.SampledFrom([]string{"", "tcp://a:1", "tcp://z:1", selfAddr}).Draw(t, "info")
	case wire.Join:
		f.Closed = uint64(rapid.IntRange(0, 4).Draw(t, "closed"))
		f.Keep = rapid.Bool().Draw(t, "keep")
	case wire.Welcome:
		f.Sess = uint64(rapid.IntRange(1, 5).Draw(t, "sess"))
		f.Keep = rapid.Bool().Draw(t, "keep")
	case wire.Keep:
		f.Keep = rapid.Bool().Draw(t, "keep")
	case wire.Data:
		f.Payload = []byte(rapid.SampledFrom([]string{"", "x", "hello"}).Draw(t, "payload"))
	case wire.Bye:
		f.Code = wire.Code(rapid.IntRange(0, 12).Draw(t, "code"))
		f.Sess = uint64(rapid.IntRange(0, 3).Draw(t, "sess"))
	}
	return f
}

func (m *fsmMachine) Frame(t *rapid.T) {
	m.step(t, fsm.FrameReceived{Conn: m.anyConn(t), Frame: genFrame(t)})
}

// Handshake plays a plausible peer: HELLO then JOIN or WELCOME on one
// connection, so that sessions actually get established.
func (m *fsmMachine) Handshake(t *rapid.T) {
	id := m.fresh()
	m.open[id] = m.now
	m.step(t, fsm.Accepted{Conn: id})
	peer := rapid.SampledFrom([]string{"a", "z"}).Draw(t, "peer")
	inc := uint64(rapid.IntRange(3, 5).Draw(t, "inc"))
	m.step(t, fsm.FrameReceived{Conn: id, Frame: wire.Frame{Type: wire.Hello, ID: peer, Incarnation: inc, Info: "tcp://" + peer + ":1"}})
	if peer < "m" {
		m.step(t, fsm.FrameReceived{Conn: id, Frame: wire.Frame{Type: wire.Join, Closed: uint64(rapid.IntRange(0, 2).Draw(t, "closed")), Keep: rapid.Bool().Draw(t, "keep")}})
	} else {
		m.step(t, fsm.FrameReceived{Conn: id, Frame: wire.Frame{Type: wire.Welcome, Sess: uint64(rapid.IntRange(1, 4).Draw(t, "sess")), Keep: rapid.Bool().Draw(t, "keep")}})
	}
}

func (m *fsmMachine) Malformed(t *rapid.T) {
	m.step(t, fsm.Malformed{Conn: m.anyConn(t), Err: wire.ErrMalformedFrame})
}

func (m *fsmMachine) Closed(t *rapid.T) {
	id := m.anyConn(t)
	delete(m.open, id) // the adapter reports it closed: it is gone on the adapter's side
	delete(m.lastRecv, id)
	delete(m.graces, id)
	m.step(t, fsm.ConnClosed{Conn: id, Err: errors.New("EOF")})
}

// Tick advances time by up to 8 s and ticks; every timer that was due must
// then have fired, but for the own-pause rule (spec/PROTOCOL.md 4): a Tick
// more than a heartbeat interval past the node's NextDeadline gives each
// session it would time out as long again as it was late, at most a peer
// timeout, once per silence.
func (m *fsmMachine) Tick(t *rapid.T) {
	next, armed := m.n.NextDeadline()
	m.now += time.Duration(rapid.Int64Range(0, int64(8*time.Second)).Draw(t, "dt"))
	var late time.Duration
	if armed && m.now > next {
		late = m.now - next
	}
	m.step(t, fsm.Tick{})
	for _, c := range m.n.Conns() {
		if c.State != fsm.StateEstablished && m.open[c.ID]+m.cfg.HandshakeTimeout <= m.now {
			t.Fatalf("c%d still %s at %v, opened at %v: the handshake timeout did not fire", c.ID, c.State, m.now, m.open[c.ID])
		}
		if c.State != fsm.StateEstablished || m.peerTimeoutAt(c.ID) > m.now {
			continue
		}
		if g, ok := m.graces[c.ID]; late > m.cfg.HeartbeatInterval && (!ok || g.from != m.lastRecv[c.ID]) {
			m.graces[c.ID] = grace{from: m.lastRecv[c.ID], until: m.now + min(late, m.cfg.PeerTimeout)}
			continue
		}
		t.Fatalf("session c%d silent since %v still open at %v: the peer timeout did not fire", c.ID, m.lastRecv[c.ID], m.now)
	}
}

// peerTimeoutAt is when session id times out: a peer timeout after its
// last frame, or the end of the grace its silence got.
func (m *fsmMachine) peerTimeoutAt(id fsm.ConnID) time.Duration {
	at := m.lastRecv[id] + m.cfg.PeerTimeout
	if g, ok := m.graces[id]; ok && g.from == m.lastRecv[id] {
		at = max(at, g.until)
	}
	return at
}

func (m *fsmMachine) Connect(t *rapid.T) {
	m.nextReq++
	addr := rapid.SampledFrom([]string{"tcp://a:1", "tcp://z:1", selfAddr, "tcp://q:1"}).Draw(t, "addr")
	m.step(t, fsm.Connect{Req: m.nextReq, Addr: addr})
}

func (m *fsmMachine) CancelConnect(t *rapid.T) {
	m.step(t, fsm.CancelConnect{Req: fsm.ReqID(rapid.IntRange(0, int(m.nextReq)+1).Draw(t, "req"))})
}

func (m *fsmMachine) User(t *rapid.T) {
	peer := rapid.SampledFrom([]string{"a", "z", "m", "q"}).Draw(t, "peer")
	switch rapid.IntRange(0, 2).Draw(t, "cmd") {
	case 0:
		m.step(t, fsm.Disconnect{Peer: peer})
	case 1:
		m.step(t, fsm.SetKeep{Peer: peer, Keep: rapid.Bool().Draw(t, "keep")})
	default:
		m.step(t, fsm.Send{Peer: peer, Payload: []byte("p")})
	}
}

func (m *fsmMachine) Shutdown(t *rapid.T) {
	if rapid.IntRange(0, 20).Draw(t, "rare") == 0 {
		m.step(t, fsm.Shutdown{})
	}
}

// Check runs after every action.
func (m *fsmMachine) Check(t *rapid.T) {
	s := spec.FromFSM(m.n, func(id fsm.ConnID) spec.ConnID { return spec.ConnID(id) })
	if err := spec.CheckLocal(&s); err != nil {
		t.Fatal(err)
	}
	d, ok := m.n.NextDeadline()
	due := make(map[fsm.ConnID]time.Duration, len(m.lastRecv))
	for id := range m.lastRecv {
		due[id] = m.peerTimeoutAt(id) - m.cfg.PeerTimeout // as a last frame then
	}
	if err := deadlineCovers(s.Conns, m.open, due, m.cfg, d, ok); err != nil {
		t.Fatal(err)
	}
}

// deadlineCovers checks that the node's NextDeadline (d, ok) is no later
// than any timer the adapter knows is pending: each handshaking connection's
// handshake timeout, each session's peer timeout. It also checks that the
// node holds only connections the adapter has open.
func deadlineCovers(conns []spec.ConnEnd, open, lastRecv map[fsm.ConnID]time.Duration, cfg fsm.Config, d time.Duration, ok bool) error {
	for _, c := range conns {
		opened, isOpen := open[c.ID]
		if !isOpen {
			return fmt.Errorf("the fsm holds c%d (%s), which the adapter closed or never opened", c.ID, c.State)
		}
		due := opened + cfg.HandshakeTimeout
		if c.State == fsm.StateEstablished {
			due = lastRecv[c.ID] + cfg.PeerTimeout
		}
		if !ok || d > due {
			return fmt.Errorf("c%d (%s) is due at %v but NextDeadline is %v (set: %t)", c.ID, c.State, due, d, ok)
		}
	}
	return nil
}

// The negative control of deadlineCovers.
func TestDeadlineCoversCatchesLateDeadline(t *testing.T) {
	cfg := fsm.Config{HandshakeTimeout: 5 * time.Second, PeerTimeout: 5 * time.Second}
	conns := []spec.ConnEnd{{ConnStatus: fsm.ConnStatus{ID: 1, State: fsm.StateHello}}, {ConnStatus: fsm.ConnStatus{ID: 2, State: fsm.StateEstablished}}}
	open := map[fsm.ConnID]time.Duration{1: time.Second, 2: 0}
	recv := map[fsm.ConnID]time.Duration{2: 3 * time.Second}
	if err := deadlineCovers(conns, open, recv, cfg, 6*time.Second, true); err != nil {
		t.Fatalf("a deadline in time was refused: %v", err)
	}
	for _, c := range []struct {
		d    time.Duration
		ok   bool
		want string
	}{
		{6*time.Second + 1, true, "c1 (hello) is due at 6s"},
		{0, false, "(set: false)"},
	} {
		err := deadlineCovers(conns, open, recv, cfg, c.d, c.ok)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Fatalf("deadline %v/%t: got %v, want %q", c.d, c.ok, err, c.want)
		}
	}
	recv[2] = 0
	if err := deadlineCovers(conns, open, recv, cfg, 5500*time.Millisecond, true); err == nil || !strings.Contains(err.Error(), "c2 (established) is due at 5s") {
		t.Fatalf("a late session deadline was accepted: %v", err)
	}
	delete(open, 2)
	if err := deadlineCovers(conns, open, recv, cfg, 0, true); err == nil || !strings.Contains(err.Error(), "adapter closed or never opened") {
		t.Fatalf("a connection the adapter closed was accepted: %v", err)
	}
}

func TestFSMRapid(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		t.Repeat(rapid.StateMachineActions(newFSMMachine(t)))
	})
}
