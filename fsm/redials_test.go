package fsm_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/masterless-go/masterless/fsm"
	"github.com/masterless-go/masterless/wire"
)

// keepPeers makes d keep one peer per id, each reached by a Connect to
// tcp://ID, and then loses every session: they are all due for a redial
// after their first backoff.
func keepPeers(t *testing.T, d *discNode, ids ...string) {
	t.Helper()
	for i, id := range ids {
		cid := fsm.ConnID(100 + i)
		acts := d.step(fsm.Connect{Req: fsm.ReqID(100 + i), Addr: "tcp://" + id})
		dials := kinds(acts, fsm.ActDial)
		require.Len(t, dials, 1)
		d.step(fsm.Dialed{Dial: dials[0].Dial, Conn: cid})
		d.step(fsm.FrameReceived{Conn: cid, Frame: wire.Frame{Type: wire.Hello, ID: id, Incarnation: 1, Info: "tcp://" + id}})
		if id > d.n.ID() {
			d.step(fsm.FrameReceived{Conn: cid, Frame: wire.Frame{Type: wire.Welcome, Sess: 1, Keep: true}})
		}
		require.True(t, d.n.IsKept(id))
	}
	for i := range ids {
		d.step(fsm.ConnClosed{Conn: fsm.ConnID(100 + i), Err: errors.New("reset")})
	}
}

// dialsOut runs d for dt and returns the dials it started, by address.
func dialsOut(d *discNode, dt time.Duration) map[string]fsm.DialID {
	out := map[string]fsm.DialID{}
	for _, a := range kinds(d.advance(dt), fsm.ActDial) {
		out[a.Addr] = a.Dial
	}
	return out
}

// A node has at most MaxRedials dials in flight when it starts a redial of
// its own: the others wait for their turn and go, first come first served,
// as dials end. A Connect dials at once whatever the count; a peer that
// dialed in meanwhile is skipped when its turn comes (spec/PROTOCOL.md 5,
// "Redials in flight").
func TestRedialsWaitForTheirTurn(t *testing.T) {
	d := redialNode(t, 1, 2)
	keepPeers(t, d, "b", "c", "d", "e", "f")

	inFlight := dialsOut(d, 2*time.Second) // every backoff has passed
	require.Len(t, inFlight, 2, "dials started: %v", inFlight)
	require.Equal(t, 3, d.n.RedialsWaiting())

	// Nothing more goes while both are in flight, however long the others
	// have been due.
	require.Empty(t, dialsOut(d, 3*time.Second))

	// A Connect is not held back: it is the user's, and the user paces it.
	acts := d.step(fsm.Connect{Req: 1, Addr: "tcp://z"})
	require.Len(t, kinds(acts, fsm.ActDial), 1)
	connectDial := kinds(acts, fsm.ActDial)[0].Dial

	// One of the peers that wait dials in and gets its session: it needs
	// no redial any more.
	var waiting string
	for _, id := range []string{"b", "c", "d", "e", "f"} {
		if _, ok := inFlight["tcp://"+id]; !ok {
			waiting = id
			break
		}
	}
	d.step(fsm.Accepted{Conn: 50})
	d.step(fsm.FrameReceived{Conn: 50, Frame: wire.Frame{Type: wire.Hello, ID: waiting, Incarnation: 1, Info: "tcp://" + waiting}})
	d.step(fsm.FrameReceived{Conn: 50, Frame: wire.Frame{Type: wire.Welcome, Sess: 2, Keep: true}}) // it leads: "a" is the smallest id
	_, ok := d.n.SessionConn(waiting)
	require.True(t, ok)

	// The Connect's dial fails: two redials are still in flight, so none
	// goes. Then one of them fails: one waiting redial goes.
	d.step(fsm.DialFailed{Dial: connectDial, Err: errors.New("refused")})
	require.Empty(t, dialsOut(d, 10*time.Millisecond), "with the Connect's dial ended, two redials are still in flight")
	started := map[string]bool{}
	for addr, dial := range inFlight {
		d.step(fsm.DialFailed{Dial: dial, Err: errors.New("refused")})
		started[addr] = true
		break
	}
	next := dialsOut(d, 10*time.Millisecond)
	require.Len(t, next, 1, "one dial ended, one waiting redial goes")
	for addr, dial := range next {
		require.NotEqual(t, "tcp://"+waiting, addr, "a peer with a session is skipped")
		started[addr] = true
		d.step(fsm.DialFailed{Dial: dial, Err: errors.New("refused")})
	}
	last := dialsOut(d, 10*time.Millisecond)
	require.Len(t, last, 1, "the last one that waits goes as the next dial ends")
	for addr := range last {
		require.False(t, started[addr], "%s dialed twice while others waited", addr)
		require.NotEqual(t, "tcp://"+waiting, addr)
	}
	// (The peers whose redials failed are due again at once, their
	// backoff long passed, and wait behind the two still in flight.)
}

// A kept address's retry (a Connect whose attempt reached no node) waits
// for its turn too.
func TestKeptAddressRetryWaitsForItsTurn(t *testing.T) {
	d := redialNode(t, 1, 1)
	keepPeers(t, d, "b")
	acts := d.step(fsm.Connect{Req: 1, Addr: "tcp://late"})
	d.step(fsm.DialFailed{Dial: kinds(acts, fsm.ActDial)[0].Dial, Err: errors.New("refused")})
	require.Equal(t, []string{"tcp://late"}, d.n.KeptAddresses())

	first := dialsOut(d, 2*time.Second)
	require.Len(t, first, 1, "%v", first)
	require.Equal(t, 1, d.n.RedialsWaiting())
	require.Empty(t, dialsOut(d, 3*time.Second))
	for _, dial := range first {
		d.step(fsm.DialFailed{Dial: dial, Err: errors.New("refused")})
	}
	second := dialsOut(d, 10*time.Millisecond)
	require.Len(t, second, 1)
	for addr := range second {
		_, again := first[addr]
		require.False(t, again, "%s went twice", addr)
	}
}

// Every due redial of many kept peers is made, MaxRedials at a time, and
// CheckTimers (run after each step) finds the head of the queue always
// about to go while there is room.
func TestRedialsAllGoEventually(t *testing.T) {
	for _, bound := range []int{1, 3, 32} {
		t.Run(fmt.Sprint(bound), func(t *testing.T) {
			d := redialNode(t, 7, bound)
			var ids []string
			for i := range 40 {
				ids = append(ids, fmt.Sprintf("p%02d", i))
			}
			keepPeers(t, d, ids...)
			dialed := map[string]int{}
			pending := map[string]fsm.DialID{}
			for round := 0; round < 400 && len(dialed) < len(ids); round++ {
				for addr, dial := range dialsOut(d, 50*time.Millisecond) {
					dialed[addr]++
					pending[addr] = dial
				}
				require.LessOrEqual(t, len(pending), bound)
				for addr, dial := range pending { // one ends per round
					d.step(fsm.DialFailed{Dial: dial, Err: errors.New("refused")})
					delete(pending, addr)
					break
				}
			}
			require.Len(t, dialed, len(ids))
		})
	}
}

// redialNode is node "a", listening, with the given seed and bound on the
// dials in flight for a redial.
func redialNode(t *testing.T, seed uint64, bound int) *discNode {
	t.Helper()
	return redialNodeWith(t, fsm.Config{Seed: seed, MaxRedials: bound})
}

// redialNodeWith is redialNode with the rest of its configuration from cfg
// (a mutation, say).
func redialNodeWith(t *testing.T, cfg fsm.Config) *discNode {
	t.Helper()
	cfg.ID, cfg.Incarnation = "a", 10
	n, err := fsm.New(cfg)
	require.NoError(t, err)
	d := &discNode{t: t, n: n}
	d.step(fsm.Listening{Info: "tcp://a"})
	return d
}

// A peer whose turn came but that got a session before its Tick (it dialed
// in) is skipped at that Tick, and the next one waiting gets the turn: with
// no dial in flight, nothing else would give it one.
func TestRedialTurnPassesOverAPeerThatCameBack(t *testing.T) {
	d := redialNode(t, 1, 1)
	keepPeers(t, d, "b", "c", "d")
	first := dialsOut(d, 2*time.Second)
	require.Len(t, first, 1)
	require.Equal(t, 2, d.n.RedialsWaiting())
	// The dial ends: the head of the queue is armed for now. Before the
	// Tick, that peer dials in.
	head := d.n.RedialHead()
	require.NotEmpty(t, head)
	for _, dial := range first {
		d.step(fsm.DialFailed{Dial: dial, Err: errors.New("refused")})
	}
	require.Equal(t, head, d.n.RedialHead(), "its turn came: it heads the queue until its Tick")
	d.step(fsm.Accepted{Conn: 60})
	d.step(fsm.FrameReceived{Conn: 60, Frame: wire.Frame{Type: wire.Hello, ID: head, Incarnation: 1, Info: "tcp://" + head}})
	d.step(fsm.FrameReceived{Conn: 60, Frame: wire.Frame{Type: wire.Welcome, Sess: 2, Keep: true}})
	_, ok := d.n.SessionConn(head)
	require.True(t, ok)
	next := dialsOut(d, 10*time.Millisecond)
	require.Len(t, next, 1, "the turn passes to the next peer that waits")
	for addr := range next {
		require.NotEqual(t, "tcp://"+head, addr)
	}
}

// A peer whose turn comes while a Connect dials its address waits for that
// dial (it is skipped in the queue and handed back to its own timer), and
// its turn does not come round again at once: it used to, every Tick at the
// same instant, for ever (the simulator's sweep found it: seed 999 ran out
// of steps at one virtual instant).
func TestRedialTurnOfAPeerWhoseAddressIsBeingDialed(t *testing.T) {
	d := redialNode(t, 1, 2)
	keepPeers(t, d, "b", "c", "d")
	first := dialsOut(d, 2*time.Second)
	require.Len(t, first, 2)
	waiting := d.n.RedialHead()
	require.NotEmpty(t, waiting)
	// The user dials the waiting peer's address: its redial waits for that.
	acts := d.step(fsm.Connect{Req: 1, Addr: "tcp://" + waiting})
	connectDial := kinds(acts, fsm.ActDial)[0].Dial
	for _, dial := range first {
		d.step(fsm.DialFailed{Dial: dial, Err: errors.New("refused")})
	}
	ticks := 0
	for range 1000 {
		at, ok := d.n.NextDeadline()
		if !ok || at > d.now+10*time.Millisecond {
			break
		}
		d.now = max(d.now, at)
		d.step(fsm.Tick{})
		ticks++
	}
	require.Less(t, ticks, 10, "Ticks at one instant: the turn comes round again and again")
	// The Connect's dial fails: the waiting peer is redialed (its address
	// is free again), by its turn.
	d.step(fsm.DialFailed{Dial: connectDial, Err: errors.New("refused")})
	next := dialsOut(d, 11*time.Second)
	_, ok := next["tcp://"+waiting]
	require.True(t, ok, "%s not redialed once the Connect's dial to its address ended: %v", waiting, next)
}

// The negative control of CheckTimers' check of the redial queue
// (checkRedialTurn): with room for a dial, a head whose timer is lost
// would wait for ever, and CheckTimers must say so.
func TestCheckTimersCatchesStuckRedialTurn(t *testing.T) {
	d := redialNode(t, 1, 1)
	keepPeers(t, d, "b", "c")
	first := dialsOut(d, 2*time.Second)
	require.Len(t, first, 1)
	for _, dial := range first {
		d.step(fsm.DialFailed{Dial: dial, Err: errors.New("refused")}) // room again: the head is armed
	}
	head := d.n.RedialHead()
	require.NotEmpty(t, head)
	require.NoError(t, d.n.CheckRedialTurn())
	d.n.DropPeerTimer(head) // (every peer's: CheckTimers' per-peer check would fire first)
	err := d.n.CheckRedialTurn()
	require.Error(t, err, "a redial turn that never comes went unnoticed")
	require.ErrorContains(t, err, "heads the redial queue")
}

// Redials of targets that did not answer take at most half of the dial
// slots, and a peer that comes back passes them: a node keeping six
// unreachable peers (every dial hangs until the handshake timeout) with
// four slots has at most two of their dials in flight, so a kept peer
// whose session just ended is redialed at once, not behind them
// (spec/PROTOCOL.md 5, "Redials in flight"). Its negative control is
// TestRedialsCatchesOneLine (build tag masterless_mutation).
func TestRedialsOfTheUnansweredTakeHalf(t *testing.T) {
	most, waiting, after := unansweredThenBack(t, fsm.Config{})
	require.Equal(t, 2, most, "the unanswered redials never filled their half")
	require.Positive(t, waiting, "no slow redial waits: the test measured nothing")
	require.Less(t, after, 300*time.Millisecond, "z's redial waited behind the unanswered ones")
	t.Logf("z redialed %v after its session ended; %d slow dials at most", after, most)
}

// unansweredThenBack runs node "a" (cfg, with four dial slots) keeping six
// peers whose dials nobody answers for 20 s, then a seventh, z, whose
// session ends. It returns the most slow dials in flight at once, how many
// slow redials waited at the end, and how long z's redial waited after
// its session ended (5 s: it did not go within that).
func unansweredThenBack(t *testing.T, cfg fsm.Config) (most, waiting int, after time.Duration) {
	cfg.Seed, cfg.MaxRedials = 3, 4
	d := redialNodeWith(t, cfg)
	keepPeers(t, d, "b", "c", "d", "e", "f", "g")
	for range 200 { // 20 s of dials that nobody answers
		d.advance(100 * time.Millisecond)
		_, inFlight := d.n.SlowRedials()
		most = max(most, inFlight)
	}
	waiting, _ = d.n.SlowRedials()

	// z had a session; it ends. Its redial goes at its backoff.
	acts := d.step(fsm.Connect{Req: 300, Addr: "tcp://z"})
	d.step(fsm.Dialed{Dial: kinds(acts, fsm.ActDial)[0].Dial, Conn: 300})
	d.step(fsm.FrameReceived{Conn: 300, Frame: wire.Frame{Type: wire.Hello, ID: "z", Incarnation: 1, Info: "tcp://z"}})
	d.step(fsm.FrameReceived{Conn: 300, Frame: wire.Frame{Type: wire.Welcome, Sess: 1, Keep: true}})
	require.True(t, d.n.IsKept("z"))
	d.step(fsm.ConnClosed{Conn: 300, Err: errors.New("reset")})
	for after = 0; after < 5*time.Second; after += 10 * time.Millisecond {
		if _, ok := dialsOut(d, 10*time.Millisecond)["tcp://z"]; ok {
			break
		}
	}
	return most, waiting, after
}

// The negative control of CheckTimers' check of the slow line
// (checkRedialTurn): with room for a slow dial and nothing else waiting, a
// slow head whose timer is lost would wait for ever, and CheckTimers must
// say so.
func TestCheckTimersCatchesStuckSlowTurn(t *testing.T) {
	d := redialNode(t, 3, 4)
	keepPeers(t, d, "b", "c", "d", "e", "f", "g")
	for range 400 { // dials nobody answers, until slow ones wait behind two in flight
		var last fsm.DialID
		for _, a := range kinds(d.advance(50*time.Millisecond), fsm.ActDial) {
			last = a.Dial
		}
		waiting, inFlight := d.n.SlowRedials()
		if last == 0 || waiting == 0 || waiting != d.n.RedialsWaiting() || inFlight < 2 {
			continue
		}
		d.step(fsm.DialFailed{Dial: last, Err: errors.New("refused")}) // one slot frees: the head is woken
		if waiting, inFlight = d.n.SlowRedials(); waiting == 0 || inFlight >= 2 {
			continue
		}
		require.NoError(t, d.n.CheckRedialTurn())
		d.n.DropPeerTimer(d.n.RedialHead())
		err := d.n.CheckRedialTurn()
		require.Error(t, err, "a slow turn that never comes went unnoticed")
		require.ErrorContains(t, err, "heads the slow redial queue")
		return
	}
	t.Fatal("the slow line never had room while others waited in it: the test measured nothing")
}

// When many sessions end in silence at once (the peer timeout: a partition,
// a blackhole) and their hosts answer no redial, a peer whose session ended
// otherwise (a reset: it restarts) is redialed at its backoff, not behind
// their first attempts: a session that ended in silence makes its peer's
// first redial slow, as an unanswered attempt does (a black-box audit: 200
// blackholed peers held 20 returning ones for up to 27 s).
func TestRedialPassesPeersThatWentSilent(t *testing.T) {
	d := redialNode(t, 5, 4)
	silent := []string{"b", "c", "d", "e", "f", "g", "h", "i", "j", "k", "l", "m"}
	keepPeers(t, d, append(silent, "z")...)
	// keepPeers ended every session with a reset: give them new ones, the
	// way their redials would, then let all but z's go silent.
	var zConn fsm.ConnID
	for i, id := range append(silent, "z") {
		cid := fsm.ConnID(200 + i)
		d.step(fsm.Accepted{Conn: cid})
		d.step(fsm.FrameReceived{Conn: cid, Frame: wire.Frame{Type: wire.Hello, ID: id, Incarnation: 1, Info: "tcp://" + id}})
		d.step(fsm.FrameReceived{Conn: cid, Frame: wire.Frame{Type: wire.Welcome, Sess: 5, Keep: true}})
		d.step(fsm.FrameReceived{Conn: cid, Frame: wire.Frame{Type: wire.Ack, Credit: 1 << 20}})
		d.step(fsm.FrameReceived{Conn: cid, Frame: wire.Frame{Type: wire.Resume, Next: 1}}) // confirmed
		_, ok := d.n.SessionConn(id)
		require.True(t, ok, "no session with %s", id)
		zConn = cid
	}
	for range 70 { // 7 s: past the peer timeout; z pings
		d.advance(100 * time.Millisecond)
		d.step(fsm.FrameReceived{Conn: zConn, Frame: wire.Frame{Type: wire.Ping}})
	}
	for _, id := range silent {
		_, ok := d.n.SessionConn(id)
		require.False(t, ok, "%s still has a session", id)
	}
	// Their redials go and nobody answers them; z's session ends.
	d.advance(time.Second)
	d.step(fsm.ConnClosed{Conn: zConn, Err: errors.New("reset")})
	var after time.Duration
	for after = 0; after < 5*time.Second; after += 10 * time.Millisecond {
		if _, ok := dialsOut(d, 10*time.Millisecond)["tcp://z"]; ok {
			break
		}
	}
	require.Less(t, after, time.Second, "z's redial waited behind the silent peers' first ones")
	t.Logf("z redialed %v after its session ended", after)
}
