package fsm_test

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/masterless-go/masterless/fsm"
	"github.com/masterless-go/masterless/wire"
)

// timerMachine drives one node through dials, handshakes, redials, Connect
// requests, keep changes and closes, with short timeouts and backoffs so
// that every kind of timer comes due often, and checks after every step
// that each deadline in the node's state has a timer no later than it
// (CheckTimers), and after every Tick that nothing due was left behind.
type timerMachine struct {
	n        *fsm.Node
	now      time.Duration
	nextConn fsm.ConnID
	nextReq  fsm.ReqID
	open     []fsm.ConnID
	dials    []fsm.DialID
	shutdown bool
}

func newTimerMachine(t *rapid.T) *timerMachine {
	n, err := fsm.New(fsm.Config{
		ID: "m", Incarnation: 5, Seed: rapid.Uint64().Draw(t, "seed"),
		HeartbeatInterval: 300 * time.Millisecond, PeerTimeout: time.Second,
		HandshakeTimeout: 700 * time.Millisecond, BackoffMin: 50 * time.Millisecond,
		BackoffMax: 400 * time.Millisecond, ReconnectGrace: 900 * time.Millisecond,
		MaxHandshakes: 4, MaxHandshakesPerSource: 2, // so that the slots fill often (slots.go)
	})
	if err != nil {
		t.Fatal(err)
	}
	m := &timerMachine{n: n}
	m.step(t, fsm.Listening{Info: "tcp://m"})
	return m
}

func (m *timerMachine) step(t *rapid.T, ev fsm.Event) {
	_ = m.n.Step(m.now, ev) // refusals are fine
	for _, a := range m.n.Ready() {
		switch a.Kind {
		case fsm.ActDial:
			m.dials = append(m.dials, a.Dial)
		case fsm.ActClose:
			m.open = slices.DeleteFunc(m.open, func(c fsm.ConnID) bool { return c == a.Conn })
		}
	}
	if err := m.n.CheckTimers(); err != nil {
		t.Fatalf("after %T%+v at %v: %v", ev, ev, m.now, err)
	}
	if err := m.n.CheckSlots(); err != nil {
		t.Fatalf("after %T%+v at %v: %v", ev, ev, m.now, err)
	}
}

var timerPeers = []string{"a", "b", "z"}

// hello is what the node at the other end of a connection says first; which
// node answers at an address is drawn, so addresses sometimes host another
// node than last time.
func (m *timerMachine) hello(t *rapid.T, c fsm.ConnID) {
	id := rapid.SampledFrom(timerPeers).Draw(t, "peer")
	inc := uint64(rapid.IntRange(1, 3).Draw(t, "inc"))
	m.step(t, fsm.FrameReceived{Conn: c, Frame: wire.Frame{Type: wire.Hello, ID: id, Incarnation: inc, Info: "tcp://" + id}})
	if !slices.Contains(m.open, c) || !rapid.Bool().Draw(t, "answer") {
		return
	}
	if id < "m" { // m leads: the follower's JOIN
		m.step(t, fsm.FrameReceived{Conn: c, Frame: wire.Frame{Type: wire.Join, Closed: uint64(rapid.IntRange(0, 2).Draw(t, "closed")), Keep: rapid.Bool().Draw(t, "keep")}})
	} else {
		m.step(t, fsm.FrameReceived{Conn: c, Frame: wire.Frame{Type: wire.Welcome, Sess: uint64(rapid.IntRange(1, 4).Draw(t, "sess")), Keep: rapid.Bool().Draw(t, "keep")}})
	}
}

// Accept opens a connection from a drawn source address. The handshake
// slots must let it in by evicting the oldest connection that has not sent
// its HELLO, of its source when the source's slots are full, else of all;
// it may be refused only when there is none such to evict.
func (m *timerMachine) Accept(t *rapid.T) {
	m.nextConn++
	c := m.nextConn
	src := rapid.SampledFrom([]string{"", "s1", "s2"}).Draw(t, "source")
	// What the rule (slots.go) must do, from the state before the step:
	// make room in the source by evicting its oldest silent connection,
	// then in the node by evicting the oldest silent one of all, and refuse
	// only when a step finds none.
	cfg := m.n.Config()
	oldestFrom, waitingFrom := m.n.Oldest(src)
	oldest, waiting := m.n.Oldest("")
	busy, refuse := m.n.Handshaking(), m.shutdown
	var evict []fsm.ConnID
	if src != "" && m.n.HandshakingFrom(src) >= cfg.MaxHandshakesPerSource && !refuse {
		if waitingFrom == 0 {
			refuse = true
		} else {
			evict = append(evict, oldestFrom)
			busy, waiting = busy-1, waiting-1
			if oldestFrom == oldest {
				oldest = 0 // the next oldest of all: found below
			}
		}
	}
	if busy >= cfg.MaxHandshakes && !refuse {
		if waiting == 0 {
			refuse = true
		} else {
			evict = append(evict, oldest) // 0: the second oldest, not checked by id
		}
	}
	evicted := m.n.Evicted()
	m.open = append(m.open, c)
	m.step(t, fsm.Incoming{Conn: c, Source: src})
	if got := !slices.Contains(m.open, c); got != refuse {
		t.Fatalf("c%d from %q: refused %v, want %v (oldest silent: c%d of %d of its source, c%d of %d of all)", c, src, got, refuse, oldestFrom, waitingFrom, oldest, waiting)
	}
	if refuse {
		evict = nil // a refused newcomer evicts nobody
	}
	if got := m.n.Evicted() - evicted; got != uint64(len(evict)) {
		t.Fatalf("c%d from %q: evicted %d, want %d", c, src, got, len(evict))
	}
	for _, e := range evict {
		if e != 0 && slices.Contains(m.open, e) {
			t.Fatalf("c%d from %q: the oldest silent c%d was not evicted", c, src, e)
		}
	}
	if refuse || !rapid.Bool().Draw(t, "preamble") {
		return
	}
	m.step(t, fsm.Accepted{Conn: c})
	if slices.Contains(m.open, c) && rapid.Bool().Draw(t, "speaks") {
		m.hello(t, c)
	}
}

func (m *timerMachine) takeDial(t *rapid.T) (fsm.DialID, bool) {
	if len(m.dials) == 0 {
		return 0, false
	}
	i := rapid.IntRange(0, len(m.dials)-1).Draw(t, "dial")
	d := m.dials[i]
	m.dials = slices.Delete(m.dials, i, i+1)
	return d, true
}

func (m *timerMachine) Dialed(t *rapid.T) {
	d, ok := m.takeDial(t)
	if !ok {
		t.Skip("no dial")
	}
	m.nextConn++
	c := m.nextConn
	m.open = append(m.open, c)
	m.step(t, fsm.Dialed{Dial: d, Conn: c})
	if slices.Contains(m.open, c) && rapid.Bool().Draw(t, "speaks") {
		m.hello(t, c)
	}
}

func (m *timerMachine) DialFailed(t *rapid.T) {
	d, ok := m.takeDial(t)
	if !ok {
		t.Skip("no dial")
	}
	m.step(t, fsm.DialFailed{Dial: d, Err: errors.New("refused")})
}

func (m *timerMachine) Closed(t *rapid.T) {
	if len(m.open) == 0 {
		t.Skip("no connection")
	}
	c := rapid.SampledFrom(m.open).Draw(t, "conn")
	m.open = slices.DeleteFunc(m.open, func(x fsm.ConnID) bool { return x == c })
	m.step(t, fsm.ConnClosed{Conn: c, Err: errors.New("EOF")})
}

func (m *timerMachine) Ping(t *rapid.T) {
	if len(m.open) == 0 {
		t.Skip("no connection")
	}
	m.step(t, fsm.FrameReceived{Conn: rapid.SampledFrom(m.open).Draw(t, "conn"), Frame: wire.Frame{Type: wire.Ping}})
}

func (m *timerMachine) Connect(t *rapid.T) {
	m.nextReq++
	m.step(t, fsm.Connect{Req: m.nextReq, Addr: "tcp://" + rapid.SampledFrom(timerPeers).Draw(t, "addr")})
}

func (m *timerMachine) CancelConnect(t *rapid.T) {
	m.step(t, fsm.CancelConnect{Req: fsm.ReqID(rapid.IntRange(1, int(m.nextReq)+1).Draw(t, "req"))})
}

func (m *timerMachine) User(t *rapid.T) {
	p := rapid.SampledFrom(timerPeers).Draw(t, "peer")
	switch rapid.IntRange(0, 2).Draw(t, "cmd") {
	case 0:
		m.step(t, fsm.Disconnect{Peer: p})
	case 1:
		m.step(t, fsm.SetKeep{Peer: p, Keep: rapid.Bool().Draw(t, "keep")})
	default:
		m.step(t, fsm.Send{Peer: p, Payload: []byte("x")})
	}
}

// Tick goes to the node's next deadline, or jumps ahead by up to 2 s, and
// ticks: nothing that was due may be left for later.
func (m *timerMachine) Tick(t *rapid.T) {
	d, ok := m.n.NextDeadline()
	if ok && d > m.now && rapid.Bool().Draw(t, "atDeadline") {
		m.now = d
	} else {
		m.now += time.Duration(rapid.Int64Range(0, int64(2*time.Second)).Draw(t, "dt"))
	}
	m.step(t, fsm.Tick{})
	if d, ok := m.n.NextDeadline(); ok && d <= m.now {
		t.Fatalf("after a Tick at %v the next deadline is %v: something due was left", m.now, d)
	}
}

func (m *timerMachine) Shutdown(t *rapid.T) {
	if rapid.IntRange(0, 30).Draw(t, "rare") == 0 {
		m.step(t, fsm.Shutdown{})
		m.shutdown = true
	}
}

func (m *timerMachine) Check(*rapid.T) {}

func TestTimersRapid(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		t.Repeat(rapid.StateMachineActions(newTimerMachine(t)))
	})
}

// The negative control of CheckTimers: a kept peer whose timer is lost would
// never be redialed, and the check says so.
func TestCheckTimersCatchesAMissingTimer(t *testing.T) {
	n, err := fsm.New(fsm.Config{ID: "m", Incarnation: 1})
	if err != nil {
		t.Fatal(err)
	}
	_ = n.Step(0, fsm.SetKeep{Peer: "a", Keep: true})
	n.Ready()
	if err := n.CheckTimers(); err != nil {
		t.Fatalf("a freshly kept peer: %v", err)
	}
	n.DropPeerTimer("a")
	err = n.CheckTimers()
	if err == nil || !strings.Contains(err.Error(), "peer a is due at") {
		t.Fatalf("a kept peer without a timer was accepted: %v", err)
	}
}

// TestTickWorkDoesNotGrowWithPeers runs one heartbeat interval of a node
// with staggered idle sessions, 10 and then 1,000 of them, and checks that a
// Tick pops only what is due (one session's heartbeat) and allocates
// nothing: the cost of a Tick does not depend on the number of peers.
func TestTickWorkDoesNotGrowWithPeers(t *testing.T) {
	for _, sessions := range []int{10, 1000} {
		t.Run(fmt.Sprint(sessions), func(t *testing.T) {
			n, start := idleNode(t, sessions)
			pinged := make([]fsm.ConnID, 0, sessions)
			now := start
			for now < start+fsm.DefaultHeartbeatInterval { // warm up: every session pings once
				now, pinged = idleRound(t, n, pinged)
			}
			pops, ticks := n.TimerPops(), 0
			end := now + fsm.DefaultHeartbeatInterval
			for now < end {
				now, pinged = idleRound(t, n, pinged)
				if len(pinged) != 1 {
					t.Fatalf("a Tick at %v pinged %d sessions, want 1 (the heartbeats are staggered)", now, len(pinged))
				}
				ticks++
			}
			if ticks != sessions {
				t.Fatalf("%d Ticks in one interval, want one per session (%d)", ticks, sessions)
			}
			if per := float64(n.TimerPops()-pops) / float64(ticks); per > 1 {
				t.Fatalf("%.2f timer entries popped per Tick, want 1", per)
			}
			allocs := testing.AllocsPerRun(100, func() { now, pinged = idleRound(t, n, pinged) })
			if allocs != 0 {
				t.Fatalf("%v allocations per Tick, want 0", allocs)
			}
		})
	}
}
