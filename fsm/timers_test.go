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
	srcOf    map[fsm.ConnID]string // accepted connections: their source
	heard    map[fsm.ConnID]bool   // a HELLO was stepped on it
	openedAt map[fsm.ConnID]time.Duration
}

func newTimerMachine(t *rapid.T) *timerMachine {
	n, err := fsm.New(fsm.Config{
		ID: "m", Incarnation: 5, Seed: rapid.Uint64().Draw(t, "seed"),
		HeartbeatInterval: 300 * time.Millisecond, PeerTimeout: time.Second,
		HandshakeTimeout: 700 * time.Millisecond, BackoffMin: 50 * time.Millisecond,
		BackoffMax: 400 * time.Millisecond, ReconnectGrace: 900 * time.Millisecond,
		MaxHandshakes: 6, MaxHandshakesPerSource: 2, // the slots fill often, and two sources can be over their share at once (slots.go)
	})
	if err != nil {
		t.Fatal(err)
	}
	m := &timerMachine{n: n, srcOf: map[fsm.ConnID]string{}, heard: map[fsm.ConnID]bool{}, openedAt: map[fsm.ConnID]time.Duration{}}
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
	m.heard[c] = true
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

// Accept opens a connection from a drawn source address. When the slots
// are full the rule (slots.go) must evict exactly one accepted connection
// holding a slot (not established, or a session not confirmed): a silent
// one (no HELLO stepped on it) if there is one, else one past its HELLO;
// within the tier, the oldest of the source holding the most, if that is
// more than its share, else the oldest of all; and refuse the newcomer
// only when there is none. The expectation is computed here from the
// connections themselves, not from the node's lists.
func (m *timerMachine) Accept(t *rapid.T) {
	m.nextConn++
	c := m.nextConn
	src := rapid.SampledFrom([]string{"", "s1", "s1", "s2"}).Draw(t, "source") // s1 often holds more than its share
	cfg := m.n.Config()
	unconfirmed := map[fsm.ConnID]bool{}
	for _, p := range m.n.Peers() {
		if p.SessionConn != 0 && !p.Confirmed {
			unconfirmed[p.SessionConn] = true
		}
	}
	count := map[string]int{}
	var tiers [2]map[string][]fsm.ConnID // silent, heard; per source, oldest first ("": all)
	tiers[0], tiers[1] = map[string][]fsm.ConnID{}, map[string][]fsm.ConnID{}
	for _, o := range m.open {
		from, accepted := m.srcOf[o]
		st, _, ok := m.n.ConnState(o)
		if !accepted || !ok || st == fsm.StateEstablished && !unconfirmed[o] {
			continue
		}
		if from != "" {
			count[from]++
		}
		tier := tiers[0]
		if m.heard[o] {
			tier = tiers[1]
		}
		tier[from] = append(tier[from], o)
		if from != "" {
			tier[""] = append(tier[""], o)
		}
	}
	for _, tier := range tiers {
		for _, ids := range tier {
			slices.Sort(ids)
		}
	}
	// The rule of spec/PROTOCOL.md 3.6: the source holding the most, if
	// over its share, else all; of those the oldest silent connection,
	// unless it is younger than the silent grace (5 ms) and than the oldest
	// past its HELLO, which then goes. Connections open in id order, so the
	// smaller id is the older.
	pick := func(from string) fsm.ConnID {
		silent, heard := tiers[0][from], tiers[1][from]
		switch {
		case len(silent) > 0 && (len(heard) == 0 || m.now-m.openedAt[silent[0]] >= 5*time.Millisecond || silent[0] < heard[0]):
			return silent[0]
		case len(heard) > 0:
			return heard[0]
		}
		return 0
	}
	oldest := func(from string) fsm.ConnID {
		o := fsm.ConnID(0)
		for _, tier := range tiers {
			if ids := tier[from]; len(ids) > 0 && (o == 0 || ids[0] < o) {
				o = ids[0]
			}
		}
		return o
	}
	refuse, victim := m.shutdown, fsm.ConnID(0)
	if !refuse && m.n.Handshaking() >= cfg.MaxHandshakes {
		greedy := ""
		for _, from := range []string{"s1", "s2"} {
			if count[from] <= cfg.MaxHandshakesPerSource || oldest(from) == 0 {
				continue
			}
			if greedy == "" || count[from] > count[greedy] || count[from] == count[greedy] && oldest(from) < oldest(greedy) {
				greedy = from
			}
		}
		victim = pick(greedy) // greedy "": all
		refuse = victim == 0
	}
	silent := tiers
	evicted := m.n.Evicted()
	m.open = append(m.open, c)
	m.srcOf[c] = src
	m.openedAt[c] = m.now
	m.step(t, fsm.Incoming{Conn: c, Source: src})
	if got := !slices.Contains(m.open, c); got != refuse {
		t.Fatalf("c%d from %q: refused %v, want %v (holding %v, silent %v)", c, src, got, refuse, count, silent)
	}
	want := uint64(0)
	if victim != 0 {
		want = 1
	}
	if got := m.n.Evicted() - evicted; got != want || (victim != 0 && slices.Contains(m.open, victim)) {
		t.Fatalf("c%d from %q: evicted %d, want %d, namely c%d (holding %v, silent %v)", c, src, got, want, victim, count, silent)
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
// with staggered idle sessions, 10 and then 1,000 of them, and checks that
// every session pings once, that the heartbeats due in one slot of the
// interval go in one Tick (at most 16 Ticks per interval, however many
// sessions: the node wakes that often), that a Tick pops only what is due
// (one entry per session it pings) and that it allocates nothing: the cost
// of a Tick is what is due, not the number of peers.
func TestTickWorkDoesNotGrowWithPeers(t *testing.T) {
	for _, sessions := range []int{10, 1000} {
		t.Run(fmt.Sprint(sessions), func(t *testing.T) {
			n, start := idleNode(t, sessions)
			pinged := make([]fsm.ConnID, 0, sessions)
			now := start
			for now < start+fsm.DefaultHeartbeatInterval { // warm up: every session pings once
				now, pinged = idleRound(t, n, pinged)
			}
			pops, ticks, pings := n.TimerPops(), 0, 0
			end := now + fsm.DefaultHeartbeatInterval
			for now < end {
				now, pinged = idleRound(t, n, pinged)
				if len(pinged) == 0 {
					t.Fatalf("a Tick at %v pinged nobody", now)
				}
				ticks++
				pings += len(pinged)
			}
			if pings != sessions {
				t.Fatalf("%d PINGs in one interval, want one per session (%d)", pings, sessions)
			}
			if ticks > min(sessions, 16) {
				t.Fatalf("%d Ticks in one interval, want at most %d: the heartbeats of a slot go together", ticks, min(sessions, 16))
			}
			if per := float64(n.TimerPops()-pops) / float64(pings); per > 1 {
				t.Fatalf("%.2f timer entries popped per PING, want 1", per)
			}
			allocs := testing.AllocsPerRun(100, func() { now, pinged = idleRound(t, n, pinged) })
			if allocs != 0 {
				t.Fatalf("%v allocations per Tick, want 0", allocs)
			}
		})
	}
}
