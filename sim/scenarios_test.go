package sim_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/masterless-go/masterless/fsm"
	"github.com/masterless-go/masterless/sim"
	"github.com/masterless-go/masterless/spec"
)

// Deterministic scenarios: scripted commands on a quiet network (no random
// commands, no faults unless the scenario injects them). Every run checks the
// safety invariants after each step; these tests add what the scenario is
// about. Nodes are n1 < n2 < ... by id, so in a pair the higher number leads.

func newScenario(t *testing.T, nodes int) *sim.World {
	t.Helper()
	k := sim.Knobs{Seed: 7, Nodes: nodes, Latency: 2 * time.Millisecond, Jitter: 3 * time.Millisecond, HealWithin: 2 * time.Minute}
	w, err := sim.NewWorld(k, sim.Options{})
	require.NoError(t, err)
	return w
}

func run(t *testing.T, w *sim.World, d time.Duration) {
	t.Helper()
	if err := w.RunFor(d); err != nil {
		r := w.Result()
		r.Report(testWriter{t})
		t.FailNow()
	}
}

type testWriter struct{ t *testing.T }

func (tw testWriter) Write(p []byte) (int, error) { tw.t.Log(string(p)); return len(p), nil }

// received returns the payloads node i's user got from peer, in order.
func received(w *sim.World, i int, peer string) []string {
	var out []string
	for _, u := range w.User(i) {
		if u.Kind == fsm.ActMessage && u.Peer == peer {
			out = append(out, u.Payload)
		}
	}
	return out
}

func events(w *sim.World, i int, kind fsm.ActionKind, peer string) []sim.UserEvent {
	var out []sim.UserEvent
	for _, u := range w.User(i) {
		if u.Kind == kind && (peer == "" || u.Peer == peer) {
			out = append(out, u)
		}
	}
	return out
}

func seqs(from, to string, lo, hi int) []string {
	var out []string
	for s := lo; s <= hi; s++ {
		out = append(out, string(spec.Payload(from, to, uint64(s))))
	}
	return out
}

func session(t *testing.T, w *sim.World, i int, peer string) fsm.ConnID {
	t.Helper()
	id, ok := w.Node(i).SessionConn(peer)
	require.True(t, ok, "%s has no session with %s", w.ID(i), peer)
	return id
}

func requireQuiet(t *testing.T, w *sim.World) {
	t.Helper()
	require.NoError(t, w.Quiescent())
}

// exchange has n1 and n2 send each other count messages at once, and checks
// that each received all of them, in order, exactly once.
func exchange(t *testing.T, w *sim.World, count int) {
	t.Helper()
	for range count {
		_, err := w.Send(0, "n2")
		require.NoError(t, err)
		_, err = w.Send(1, "n1")
		require.NoError(t, err)
	}
	run(t, w, time.Second)
	require.Equal(t, seqs("n1", "n2", 1, count), received(w, 1, "n1"))
	require.Equal(t, seqs("n2", "n1", 1, count), received(w, 0, "n2"))
}

func TestScenarioDuplexData(t *testing.T) {
	w := newScenario(t, 2)
	w.Connect(0, w.Addr(1))
	run(t, w, time.Second)
	exchange(t, w, 100)
	requireQuiet(t, w)
}

func TestScenarioMulticast(t *testing.T) {
	w := newScenario(t, 4)
	for i := 1; i < 4; i++ {
		w.Connect(0, w.Addr(i))
	}
	run(t, w, time.Second)
	for i := 1; i < 4; i++ {
		for range 10 {
			_, err := w.Send(0, w.ID(i))
			require.NoError(t, err)
		}
	}
	run(t, w, time.Second)
	for i := 1; i < 4; i++ {
		require.Equal(t, seqs("n1", w.ID(i), 1, 10), received(w, i, "n1"))
	}
	require.Len(t, events(w, 0, fsm.ActConnected, ""), 3)
	requireQuiet(t, w)
}

// The accepting side dials back while data flows: no loss, no reorder, still
// one connection.
func TestScenarioRenegotiation(t *testing.T) {
	for _, acceptor := range []int{0, 1} { // the acceptor follows, then leads
		t.Run(fmt.Sprintf("acceptor=n%d", acceptor+1), func(t *testing.T) {
			w := newScenario(t, 2)
			dialer := 1 - acceptor
			w.Connect(dialer, w.Addr(acceptor))
			run(t, w, 500*time.Millisecond)
			first := session(t, w, dialer, w.ID(acceptor))
			sent := 0
			for step := range 100 {
				if step == 30 {
					w.Connect(acceptor, w.Addr(dialer)) // dial back mid-stream
				}
				for range 3 {
					_, err := w.Send(dialer, w.ID(acceptor))
					require.NoError(t, err)
					_, err = w.Send(acceptor, w.ID(dialer))
					require.NoError(t, err)
					sent++
				}
				run(t, w, 3*time.Millisecond)
			}
			run(t, w, time.Second)
			require.Equal(t, seqs(w.ID(dialer), w.ID(acceptor), 1, sent), received(w, acceptor, w.ID(dialer)))
			require.Equal(t, seqs(w.ID(acceptor), w.ID(dialer), 1, sent), received(w, dialer, w.ID(acceptor)))
			require.Equal(t, first, session(t, w, dialer, w.ID(acceptor)), "the session changed")
			require.Len(t, w.Node(0).Conns(), 1)
			require.Len(t, w.Node(1).Conns(), 1)
			dones := events(w, acceptor, fsm.ActConnectDone, "")
			require.Len(t, dones, 1)
			require.NoError(t, dones[0].Err)
			requireQuiet(t, w)
		})
	}
}

// Three dials each way at once (to three addresses of each node, so the
// dialer's own dedup does not merge them): exactly one connection survives,
// both ends agree, and all six Connect calls succeed.
func TestScenarioThreePlusThreeDials(t *testing.T) {
	w := newScenario(t, 2)
	for k := 1; k <= 3; k++ {
		w.Connect(0, w.AliasAddr(1, k))
		w.Connect(1, w.AliasAddr(0, k))
	}
	run(t, w, 2*time.Second)
	require.Len(t, w.Node(0).Conns(), 1)
	require.Len(t, w.Node(1).Conns(), 1)
	a, b := session(t, w, 0, "n2"), session(t, w, 1, "n1")
	require.Equal(t, uint64(a)/2, uint64(b)/2, "the ends hold different connections")
	for i := range 2 {
		dones := events(w, i, fsm.ActConnectDone, "")
		require.Len(t, dones, 3)
		for _, d := range dones {
			require.NoError(t, d.Err)
			require.Equal(t, w.ID(1-i), d.Peer)
		}
		require.Len(t, events(w, i, fsm.ActConnected, ""), 1)
	}
	requireQuiet(t, w)
}

// A kept peer comes back on its own after the other side disconnects, and
// the keeping side's user sees no second Connected.
func TestScenarioAutomaticReconnect(t *testing.T) {
	w := newScenario(t, 2)
	w.Connect(0, w.Addr(1))
	run(t, w, time.Second)
	first := session(t, w, 0, "n2")
	require.NoError(t, w.Disconnect(1, "n1"))
	run(t, w, 3*time.Second)
	require.NotEqual(t, first, session(t, w, 0, "n2"), "no new session")
	session(t, w, 1, "n1")
	require.Len(t, events(w, 0, fsm.ActConnected, "n2"), 1)
	require.Empty(t, events(w, 0, fsm.ActDisconnected, "n2"))
	requireQuiet(t, w)
}

// The session is reset in the middle of a stream: everything sent after the
// sender noticed is queued and delivered on the new session, in order.
func TestScenarioReliableReconnect(t *testing.T) {
	w := newScenario(t, 2)
	w.Connect(0, w.Addr(1))
	run(t, w, time.Second)
	sent := 0
	var afterReset []string
	reset := false
	for step := range 200 {
		if step == 50 {
			require.True(t, w.ResetSession(0, "n2"))
			reset = true
		}
		seq, err := w.Send(0, "n2")
		require.NoError(t, err)
		sent = int(seq)
		if reset {
			if _, ok := w.Node(0).SessionConn("n2"); !ok {
				afterReset = append(afterReset, string(spec.Payload("n1", "n2", seq))) // queued: must arrive
			}
		}
		run(t, w, 2*time.Millisecond)
	}
	run(t, w, 3*time.Second)
	got := received(w, 1, "n1")
	require.NotEmpty(t, afterReset, "the reset was never noticed while sending")
	require.Subset(t, got, afterReset)
	require.Equal(t, string(spec.Payload("n1", "n2", uint64(sent))), got[len(got)-1])
	require.Empty(t, events(w, 0, fsm.ActDisconnected, "n2"))
	requireQuiet(t, w)
}

// Neither side keeps the pair: the leader discards the session.
func TestScenarioUnwantedDiscarded(t *testing.T) {
	for _, dialer := range []int{0, 1} {
		t.Run(fmt.Sprintf("dialer=n%d", dialer+1), func(t *testing.T) {
			w := newScenario(t, 2)
			other := 1 - dialer
			w.Connect(dialer, w.Addr(other))
			run(t, w, time.Second)
			session(t, w, other, w.ID(dialer))
			require.NoError(t, w.SetKeep(dialer, w.ID(other), false))
			run(t, w, time.Second)
			require.Empty(t, w.Node(0).Conns())
			require.Empty(t, w.Node(1).Conns())
			require.Len(t, events(w, dialer, fsm.ActDisconnected, w.ID(other)), 1)
			requireQuiet(t, w)
		})
	}
}

// A peer that disconnects is reported at once to a user that does not keep
// it: its BYE says it stops.
func TestScenarioPeerCloseReported(t *testing.T) {
	w := newScenario(t, 2)
	w.Connect(1, w.Addr(0)) // n2 keeps n1; n1 does not keep n2
	run(t, w, time.Second)
	session(t, w, 0, "n2")
	at := w.Now()
	require.NoError(t, w.Disconnect(1, "n1"))
	run(t, w, time.Second)
	d := events(w, 0, fsm.ActDisconnected, "n2")
	require.Len(t, d, 1)
	require.ErrorIs(t, d[0].Err, fsm.ErrPeerClosed)
	require.Less(t, d[0].At-at, 100*time.Millisecond)
	require.Empty(t, w.Node(0).Conns())
}

// A peer that crashes while it keeps the pair may come back (the node cannot
// tell a crash from a connection reset): a user that does not keep it, and
// has messages the peer has not acknowledged, hears of it after the
// reconnect grace, not at once, so that those messages are resent on the
// peer's next session, not lost; with nothing to resend, at once.
func TestScenarioCrashedKeeperWaitedFor(t *testing.T) {
	for _, queued := range []bool{false, true} {
		t.Run(fmt.Sprintf("queued=%v", queued), func(t *testing.T) {
			w := newScenario(t, 2)
			w.Connect(1, w.Addr(0)) // n2 keeps n1; n1 does not keep n2
			run(t, w, time.Second)
			session(t, w, 0, "n2")
			at := w.Now()
			if queued {
				_, err := w.Send(0, "n2") // in flight when n2 crashes: never acknowledged
				require.NoError(t, err)
			}
			w.Crash(1, false)
			grace := w.Node(0).Config().ReconnectGrace
			run(t, w, 100*time.Millisecond)
			if !queued {
				d := events(w, 0, fsm.ActDisconnected, "n2")
				require.Len(t, d, 1, "nothing to resend: reported at once")
				require.Error(t, d[0].Err)
				return
			}
			run(t, w, grace-200*time.Millisecond)
			require.Empty(t, events(w, 0, fsm.ActDisconnected, "n2"), "reported before the reconnect grace")
			run(t, w, time.Second)
			d := events(w, 0, fsm.ActDisconnected, "n2")
			require.Len(t, d, 1)
			require.ErrorIs(t, d[0].Err, fsm.ErrNotConnected)
			require.Less(t, d[0].At-at, grace+100*time.Millisecond)
			require.Len(t, events(w, 0, fsm.ActLost, "n2"), 1, "the message comes back as lost")
			require.Empty(t, w.Node(0).Conns())
		})
	}
}

// A peer that goes silent without FIN is detected within the peer timeout.
func TestScenarioSilentPeerDetected(t *testing.T) {
	w := newScenario(t, 2)
	w.Connect(0, w.Addr(1))
	run(t, w, time.Second)
	at := w.Now()
	w.Crash(1, true) // the machine vanishes: no FIN, no reset
	for w.Now() < at+fsm.DefaultPeerTimeout+fsm.DefaultHeartbeatInterval {
		if _, ok := w.Node(0).SessionConn("n2"); !ok {
			break
		}
		run(t, w, 10*time.Millisecond)
	}
	_, ok := w.Node(0).SessionConn("n2")
	require.False(t, ok, "silent peer still has a session after %v", w.Now()-at)
	require.LessOrEqual(t, w.Now()-at, fsm.DefaultPeerTimeout+fsm.DefaultHeartbeatInterval)
	// n1 keeps n2: it is reported after the reconnect grace.
	run(t, w, fsm.DefaultReconnectGrace+time.Second)
	d := events(w, 0, fsm.ActDisconnected, "n2")
	require.Len(t, d, 1)
	require.Error(t, d[0].Err)
}

func TestScenarioSelfConnectRefused(t *testing.T) {
	w := newScenario(t, 2)
	r1 := w.Connect(0, w.Addr(0))         // its own advertised address: refused without dialing
	r2 := w.Connect(0, w.AliasAddr(0, 1)) // another address of itself: found out by HELLO
	run(t, w, time.Second)
	dones := events(w, 0, fsm.ActConnectDone, "")
	require.Len(t, dones, 2)
	for _, d := range dones {
		require.Contains(t, []fsm.ReqID{r1, r2}, d.Req)
		require.True(t, errors.Is(d.Err, fsm.ErrSelfConnect), "r%d: %v", d.Req, d.Err)
	}
	require.Empty(t, w.Node(0).Conns())
	require.Empty(t, w.Node(0).Sessions())
}

// A restarted peer (same id, new incarnation) is connected again at once,
// well before the old connection's peer timeout, whichever of the two leads.
func TestScenarioRestartedPeerReconnectsAtOnce(t *testing.T) {
	for _, restarted := range []int{0, 1} {
		t.Run(fmt.Sprintf("restarted=n%d", restarted+1), func(t *testing.T) {
			w := newScenario(t, 2)
			other := 1 - restarted
			w.Connect(restarted, w.Addr(other)) // re-issued by the restarted node
			run(t, w, time.Second)
			at := w.Now()
			w.Crash(restarted, true) // the old connection just goes silent
			w.Restart(restarted)
			run(t, w, 500*time.Millisecond)
			require.Equal(t, uint64(2), w.Node(restarted).Incarnation())
			a, b := session(t, w, 0, "n2"), session(t, w, 1, "n1")
			require.Equal(t, uint64(a)/2, uint64(b)/2)
			ups := events(w, other, fsm.ActConnected, w.ID(restarted))
			require.Len(t, ups, 2)
			require.Equal(t, uint64(2), ups[1].PeerInc)
			require.Less(t, ups[1].At-at, time.Second)
			require.Len(t, w.Node(other).Conns(), 1, "the old connection must be replaced, not kept")
			requireQuiet(t, w)
		})
	}
}

// One node restarts again and again while the others keep dialing it.
func TestScenarioRestartStorm(t *testing.T) {
	w := newScenario(t, 4)
	for i := 1; i < 4; i++ {
		w.Connect(i, w.Addr(0))
		w.Connect(0, w.Addr(i))
	}
	run(t, w, 500*time.Millisecond)
	for r := range 15 {
		w.Crash(0, r%2 == 0)
		run(t, w, time.Duration(r*37%200)*time.Millisecond)
		w.Restart(0)
		run(t, w, time.Duration(r*53%300)*time.Millisecond)
		for i := 1; i < 4; i++ {
			w.Send(i, "n1")
		}
	}
	run(t, w, 30*time.Second)
	require.Equal(t, uint64(16), w.Node(0).Incarnation())
	require.Len(t, w.Node(0).Sessions(), 3)
	requireQuiet(t, w)
}

func TestScenarioAllToAllEight(t *testing.T) {
	w := newScenario(t, 8)
	for i := range 8 {
		for j := range 8 {
			if i != j {
				w.Connect(i, w.Addr(j))
			}
		}
	}
	run(t, w, 3*time.Second)
	total := 0
	for i := range 8 {
		require.Len(t, w.Node(i).Sessions(), 7, "%s", w.ID(i))
		require.Len(t, w.Node(i).Conns(), 7, "%s", w.ID(i))
		total += len(w.Node(i).Sessions())
	}
	require.Equal(t, 56, total) // 28 sessions, counted at both ends
	requireQuiet(t, w)
}

// TestScenarioKeepChangeDuringHandshake is a regression test (found by the
// 10,000-seed sweep, seed 9052): the follower stops keeping the leader
// between sending JOIN(keep=1) and receiving WELCOME. The change must still
// reach the leader (KEEP right after adopting, spec/PROTOCOL.md 3.4), which
// then discards the pair that nobody keeps; before the fix the leader kept
// its stale flag and the unwanted session lived forever.
func TestScenarioKeepChangeDuringHandshake(t *testing.T) {
	w := newScenario(t, 2)
	w.Connect(0, w.Addr(1)) // n1 follows: n2 > n1
	for range 1000 {
		if cs := w.Node(0).Conns(); len(cs) == 1 && cs[0].State == fsm.StateWelcome {
			break
		}
		run(t, w, 50*time.Microsecond)
	}
	cs := w.Node(0).Conns()
	require.Len(t, cs, 1)
	require.Equal(t, fsm.StateWelcome, cs[0].State, "never caught n1 between JOIN and WELCOME")
	require.NoError(t, w.SetKeep(0, "n2", false))
	run(t, w, 2*time.Second)
	require.Empty(t, w.Node(0).Conns(), "n1 still holds a session nobody keeps")
	require.Empty(t, w.Node(1).Conns(), "n2 still holds a session nobody keeps")
	requireQuiet(t, w)
}

// Nodes that dial with masterless 0.4.1's protocol (fsm.Config.LegacyDial)
// reach a v1 listener, which detects the protocol from the first bytes:
// duplex data flows on the 0.4.1 connection.
func TestScenarioLegacyDialDuplex(t *testing.T) {
	k := sim.Knobs{Seed: 7, Nodes: 2, Latency: 2 * time.Millisecond, Jitter: 3 * time.Millisecond, HealWithin: 2 * time.Minute, LegacyPM: 1000}
	w, err := sim.NewWorld(k, sim.Options{})
	require.NoError(t, err)
	require.True(t, w.Node(0).Config().LegacyDial)
	w.Connect(0, w.Addr(1))
	run(t, w, time.Second)
	exchange(t, w, 20)
	require.Len(t, w.Node(0).Conns(), 1)
	requireQuiet(t, w)
}

// TestSeedsRetryKeepsItsLine is a regression test (found by TestSweep when
// the slow line of redials came, fsm/redials.go): a kept address waiting
// in the line of the others turned slow when a dial to the same address,
// another's, went unanswered meanwhile; the queue then woke it as that
// line's head and its turn refused it as slow, again and again at the same
// virtual instant, until the step bound. A wait now keeps the line it
// joined. These seeds of the plain sweep (MaxRedials 1) ran into it.
func TestSeedsRetryKeepsItsLine(t *testing.T) {
	for _, seed := range []uint64{6229, 6423, 6707} {
		res := sim.RunSeed(sim.DrawKnobs(seed), sim.Options{})
		require.NoError(t, res.Err, "seed %d", seed)
	}
}
