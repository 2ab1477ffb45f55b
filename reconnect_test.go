package masterless

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// checkInOrder asserts msgs are "prefix<i>" with strictly increasing i and
// returns the numbers.
func checkInOrder(t *testing.T, msgs [][]byte, prefix string) []int {
	t.Helper()
	var nums []int
	for _, m := range msgs {
		i, err := strconv.Atoi(string(m[len(prefix):]))
		require.NoError(t, err)
		if len(nums) > 0 {
			require.Greater(t, i, nums[len(nums)-1], "reordered or repeated message")
		}
		nums = append(nums, i)
	}
	return nums
}

func TestRenegotiationWhileDataFlows(t *testing.T) {
	a, _ := newServer(t, "a")
	b, rb := newServer(t, "b")
	_, err := a.Connect(ctxT(t), b.Info())
	require.NoError(t, err)

	const n = 20000
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := range n { // a producer: waits for room when the queue is full
			if err := a.SendContext(ctxT(t), "b", fmt.Appendf(nil, "m%d", i)); err != nil {
				t.Errorf("send %d: %v", i, err)
				return
			}
		}
	}()
	// The accepting side dials back while data flows. (Another spelling of
	// a's address, so that b really dials instead of finding the session.)
	eventually(t, "some data", func() bool { return len(rb.messages("a")) > 100 })
	id, err := b.Connect(ctxT(t), localhost(a.Info()))
	require.NoError(t, err)
	require.Equal(t, "a", id)
	wg.Wait()
	eventually(t, "every message", func() bool { return len(rb.messages("a")) == n })
	nums := checkInOrder(t, rb.messages("a"), "m")
	require.Equal(t, n-1, nums[n-1])
	requireOneAgreedSession(t, a, b)
	require.True(t, b.IsKept("a"))
	require.Equal(t, 1, rb.connectCount("a"))
}

// TestAutomaticReconnect: a peer that keeps the other reconnects on its own
// after the other's Disconnect, with no second Connect event at the keeping
// end. Also a regression test: the Disconnect event of the end that called
// Disconnect carries a nil error (it used to carry ErrDisconnected).
func TestAutomaticReconnect(t *testing.T) {
	left, rl := newServer(t, "left")
	right, rr := newServer(t, "right")
	require.NoError(t, right.Keep("left", true))
	_, err := left.Connect(ctxT(t), right.Info())
	require.NoError(t, err)
	eventually(t, "right connected", func() bool { return rr.connectCount("left") == 1 })

	// Right drops left; left keeps right, so it reconnects on its own.
	require.NoError(t, right.Disconnect("left"))
	eventually(t, "right told of its disconnect", func() bool { return len(rr.disconnects("left")) == 1 })
	require.NoError(t, rr.disconnects("left")[0], "a requested disconnect reports nil")
	eventually(t, "reconnected", func() bool { return rr.connectCount("left") == 2 })
	requireOneAgreedSession(t, left, right)
	require.Equal(t, 1, rl.connectCount("right"), "a transparent reconnect emits no second connect")
	require.Empty(t, rl.disconnects("right"))
	require.True(t, right.Send("left", []byte("back")))
	eventually(t, "data after reconnect", func() bool { return len(rl.messages("right")) == 1 })
}

func TestReliableReconnectMidStream(t *testing.T) {
	a, ra := newServer(t, "a")
	b, rb := newServer(t, "b")
	relay := newProxy(t, b.Info())
	_, err := a.Connect(ctxT(t), relay.info())
	require.NoError(t, err)

	const n = 3000
	for i := range n {
		if i == n/3 {
			relay.cut() // the connection dies mid-stream; a redials through the relay
		}
		require.True(t, a.Send("b", fmt.Appendf(nil, "m%d", i)), "send %d refused", i)
		if i%100 == 0 {
			time.Sleep(time.Millisecond) // keep the stream going across the reconnect
		}
	}
	eventually(t, "the last message", func() bool {
		m := rb.messages("a")
		return len(m) > 0 && string(m[len(m)-1]) == fmt.Sprintf("m%d", n-1)
	})
	nums := checkInOrder(t, rb.messages("a"), "m")
	// Only what was in flight on the dead connection may be lost; everything
	// sent while a was reconnecting was queued and delivered in order.
	require.Greater(t, len(nums), n/2)
	require.Equal(t, 1, ra.connectCount("b"))
	require.Empty(t, ra.disconnects("b"))
	requireOneAgreedSession(t, a, b, relay)
}

func TestUnwantedConnectionDiscarded(t *testing.T) {
	a, ra := newServer(t, "a")
	b, rb := newServer(t, "b")
	_, err := a.Connect(ctxT(t), b.Info())
	require.NoError(t, err)
	eventually(t, "b connected", func() bool { return rb.connectCount("a") == 1 })
	require.NoError(t, a.Keep("b", false))
	require.False(t, a.IsKept("b"))
	eventually(t, "both dropped", func() bool { return len(a.Connections()) == 0 && len(b.Connections()) == 0 })
	eventually(t, "both told", func() bool { return len(ra.disconnects("b")) == 1 && len(rb.disconnects("a")) == 1 })
	require.ErrorIs(t, ra.disconnects("b")[0], ErrUnwanted)
	require.ErrorIs(t, rb.disconnects("a")[0], ErrUnwanted)
	require.False(t, a.Send("b", []byte("x")))
}

func TestPeerCloseReported(t *testing.T) {
	a, ra := newServer(t, "a", WithReconnectGrace(300*time.Millisecond))
	b, rb := newServer(t, "b")
	c, _ := newServer(t, "c")
	_, err := a.Connect(ctxT(t), b.Info())
	require.NoError(t, err)
	_, err = c.Connect(ctxT(t), b.Info())
	require.NoError(t, err)
	eventually(t, "b has both", func() bool { return sameSet(b.Connections(), "a", "c") })

	// c closes: b does not keep c, so it reports c at once.
	require.NoError(t, c.Close())
	require.NoError(t, c.Close(), "Close is idempotent")
	eventually(t, "b told c left", func() bool { return len(rb.disconnects("c")) == 1 })
	require.ErrorIs(t, rb.disconnects("c")[0], ErrPeerClosed)

	// b closes: a keeps b, tries to reconnect, and reports it after the grace.
	require.NoError(t, b.Close())
	eventually(t, "a told b is gone", func() bool { return len(ra.disconnects("b")) == 1 })
	require.ErrorIs(t, ra.disconnects("b")[0], ErrNotConnected)
	require.False(t, a.Send("b", []byte("x")), "sends are refused once the grace ran out")
	require.False(t, b.Send("a", []byte("x")), "a closed server sends nothing")
	_, err = b.Connect(ctxT(t), a.Info())
	require.ErrorIs(t, err, ErrClosed)
}

// TestSilentPeerDetected: a peer that goes silent without FIN or RST is
// detected by the peer timeout, at both ends.
func TestSilentPeerDetected(t *testing.T) {
	short := []Option{WithHeartbeat(shortHeartbeat), WithPeerTimeout(shortPeerTO)}
	a, ra := newServer(t, "a", append(short, WithReconnectGrace(300*time.Millisecond))...)
	b, rb := newServer(t, "b", short...)
	relay := newProxy(t, b.Info())
	_, err := a.Connect(ctxT(t), relay.info())
	require.NoError(t, err)
	eventually(t, "b connected", func() bool { return rb.connectCount("a") == 1 })

	relay.freeze() // no FIN, no RST: the peers just go quiet
	start := time.Now()
	eventually(t, "b detects the silence", func() bool { return len(rb.disconnects("a")) == 1 })
	require.ErrorIs(t, rb.disconnects("a")[0], ErrPeerTimeout)
	require.Less(t, time.Since(start), waitFor/2, "detection is bounded by the peer timeout (%v, with slack for a loaded machine)", shortPeerTO)
	eventually(t, "a gives up after its grace", func() bool { return len(ra.disconnects("b")) == 1 })
	errA := ra.disconnects("b")[0]
	require.True(t, errors.Is(errA, ErrNotConnected) || errors.Is(errA, ErrPeerTimeout), "got %v", errA)
}

func TestSelfConnectRefused(t *testing.T) {
	a, _ := newServer(t, "a")
	_, err := a.Connect(ctxT(t), a.Info())
	require.ErrorIs(t, err, ErrSelfConnect)
	_, err = a.Connect(ctxT(t), localhost(a.Info())) // same node, another spelling: found by HELLO
	require.ErrorIs(t, err, ErrSelfConnect)
	require.Empty(t, a.Connections())
	_, err = a.Connect(ctxT(t), "http://example")
	require.ErrorIs(t, err, ErrBadAddress)
}

// Commands naming this server's own id fail as their docs say for an id
// the server does not know, ErrUnknownPeer, and say why (ErrSelfConnect):
// a black-box audit got ErrSelfConnect alone, which SendErr's and
// Disconnect's lists of errors do not name.
func TestOwnIDIsNoPeer(t *testing.T) {
	a, _ := newServer(t, "a")
	for what, err := range map[string]error{
		"SendErr":    a.SendErr("a", []byte("x")),
		"Disconnect": a.Disconnect("a"),
		"Keep":       a.Keep("a", true),
	} {
		require.ErrorIs(t, err, ErrUnknownPeer, what)
		require.ErrorIs(t, err, ErrSelfConnect, what)
	}
	require.False(t, a.Send("a", []byte("x")))
	require.Zero(t, a.SendMany([]string{"a"}, []byte("x")))
}

func TestRestartedPeerConnectsAtOnce(t *testing.T) {
	a, ra := newServer(t, "a")
	b, _ := newServer(t, "b")
	relay := newProxy(t, a.Info())
	_, err := b.Connect(ctxT(t), relay.info())
	require.NoError(t, err)
	eventually(t, "a connected", func() bool { return ra.connectCount("b") == 1 })

	// The old b goes silent (a crashed host: no FIN); a new process with the
	// same id comes up and dials a. a must not wait for the peer timeout.
	relay.freeze()
	b2, rb2 := newServer(t, "b")
	id, err := b2.Connect(ctxT(t), a.Info())
	require.NoError(t, err)
	require.Equal(t, "a", id)
	eventually(t, "a reports the restart", func() bool { return len(ra.disconnects("b")) == 1 })
	require.ErrorIs(t, ra.disconnects("b")[0], ErrReplaced, "replaced at once, not after a peer timeout")
	// Stats says so too (LastEnd was left nil by a replacement).
	ps := peerStats(t, a, "b")
	require.ErrorIs(t, ps.LastEnd, ErrReplaced)
	require.WithinDuration(t, time.Now(), ps.LastEndTime, waitFor)
	// The new incarnation's Connect follows the Disconnect, maybe not yet
	// delivered when the Disconnect was seen.
	eventually(t, "a's user heard of the new b", func() bool { return ra.connectCount("b") >= 2 })
	require.Equal(t, 2, ra.connectCount("b"))
	requireOneAgreedSession(t, a, b2)
	require.True(t, a.Send("b", []byte("hello again")))
	eventually(t, "data to the new process", func() bool { return len(rb2.messages("a")) == 1 })
	relay.cut() // let the old process close without waiting out its linger
	b.Close()
}

// TestUnkeptEndResendsAfterReset: a keeps b, b does not keep a. b's messages
// that a never acknowledged (the connection swallowed them) are resent on
// the session a's redial brings after a reset, exactly once, not handed
// back as lost: one end keeps the pair and both processes live (README,
// "Exactly once"). The end that does not keep used to report them lost the
// moment the connection broke (a black-box audit).
func TestUnkeptEndResendsAfterReset(t *testing.T) {
	_, ra, b, rb, relay := proxiedPair(t)
	require.False(t, b.IsKept("a"))
	swallowThenReset(t, relay, b, "a", nil)
	requireResentOnce(t, ra, rb, "b", "a")
	require.Empty(t, rb.disconnects("a"), "a came back within b's grace: no Disconnect, as for a kept peer")
	require.Equal(t, "connected", peerStats(t, b, "a").State)
}

// TestUnkeepWhileAwayWaitsForThePeer: both ends keep the pair; while the
// connection is down, a stops keeping b. b still keeps a and redials, so
// a's messages queued meanwhile reach b on that session, exactly once; a
// does not hand them back as lost. Un-keeping an away peer used to end the
// wait at once (Lost, Disconnect), although the pair was kept throughout (a
// black-box audit).
func TestUnkeepWhileAwayWaitsForThePeer(t *testing.T) {
	a, ra, b, rb, relay := proxiedPair(t)
	require.NoError(t, b.Keep("a", true))
	swallowThenReset(t, relay, a, "b", func() { require.NoError(t, a.Keep("b", false)) })
	requireResentOnce(t, rb, ra, "a", "b")
	require.Empty(t, ra.disconnects("b"))
}

// proxiedPair starts a and b, a connected to b (and keeping it) through a
// proxy the test can break; it returns once both ends have the session.
func proxiedPair(t *testing.T) (a *Server, ra *recorder, b *Server, rb *recorder, relay *proxy) {
	t.Helper()
	a, ra = newServer(t, "a")
	b, rb = newServer(t, "b")
	relay = newProxy(t, b.Info())
	_, err := a.Connect(ctxT(t), relay.info())
	require.NoError(t, err)
	eventually(t, "b connected", func() bool { return rb.connectCount("a") == 1 })
	return a, ra, b, rb, relay
}

// swallowThenReset has the connection swallow ten messages from to peer,
// then resets it; then runs after (if not nil).
func swallowThenReset(t *testing.T, relay *proxy, from *Server, peer string, after func()) {
	t.Helper()
	relay.blackhole() // the connection swallows what it carries from now on
	for i := range 10 {
		require.True(t, from.Send(peer, []byte{byte(i)}))
	}
	time.Sleep(100 * time.Millisecond)
	relay.reset()
	if after != nil {
		after()
	}
}

// requireResentOnce checks that the ten messages of swallowThenReset reached
// the receiver (rec) from sender once each, in order, and that the sender
// (senderRec, sending to receiver) handed none back as lost.
func requireResentOnce(t *testing.T, rec, senderRec *recorder, sender, receiver string) {
	t.Helper()
	eventually(t, "all ten arrive", func() bool { return len(rec.messages(sender)) == 10 })
	for i, m := range rec.messages(sender) {
		require.Equal(t, []byte{byte(i)}, m)
	}
	time.Sleep(200 * time.Millisecond)
	require.Len(t, rec.messages(sender), 10, "delivered twice")
	require.Empty(t, senderRec.lost(receiver), "handed back messages that were received")
}

// SendManyContext returns the first error other than a full queue it met,
// also when its context ends or the server closes while it waits for room
// (a black-box audit got the context's error alone).
func TestSendManyContextKeepsFirstError(t *testing.T) {
	a, _ := newServer(t, "a", WithSendQueue(10, 1<<20))
	require.NoError(t, a.Keep("b", true)) // known, away: its sends queue
	for range 5 {                         // the producers' half of b's queue
		require.NoError(t, a.SendContext(ctxT(t), "b", []byte("x")))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	n, err := a.SendManyContext(ctx, []string{"nobody", "b"}, []byte("y"))
	require.Zero(t, n)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.ErrorIs(t, err, ErrQueueFull)
	require.ErrorIs(t, err, ErrUnknownPeer)

	done := make(chan error, 1)
	go func() {
		_, err := a.SendManyContext(context.Background(), []string{"nobody", "b"}, []byte("y"))
		done <- err
	}()
	time.Sleep(50 * time.Millisecond)
	require.NoError(t, a.Close())
	err = <-done
	require.ErrorIs(t, err, ErrClosed)
	require.ErrorIs(t, err, ErrUnknownPeer)
}

// TestEveryEndedSessionReported: a node that neither keeps its peer nor
// owes it anything reports every session the peer ends (README, Events):
// one Connect and one Disconnect per session, also when the peer's next
// connection arrives before its goodbye on the last one (its JOIN then
// says that it closed the last session). A black-box audit counted 1,976
// to 1,991 Connect events at the accepting end for 2,000 cycles of
// Connect, Send, Disconnect: the sessions whose goodbye came second were
// replaced without a word. At every cycle the acceptor's messages come
// inside a Connect and a Disconnect, and the dialer hands back with Lost
// what it cannot know delivered.
func TestEveryEndedSessionReported(t *testing.T) {
	t.Run("the acceptor leads", func(t *testing.T) {
		connects := everyEndedSessionReported(t, "min-a", "min-b")
		require.EqualValues(t, 1000, connects, "one Connect per session at the end that does not keep the peer")
	})
	// The dialer leads, so the acceptor follows, and a follower's session
	// is confirmed by the leader's RESUME (spec/PROTOCOL.md 3.3). When the
	// acceptor's reader of the last connection runs behind the next
	// connection's handshake (two cores, four goroutines), the WELCOME of
	// the next session arrives before the RESUME, the message and the BYE
	// of the last: the follower then closes the last session, unconfirmed,
	// as the leader had (3.4), and by 3.3 its user never heard of it.
	// Traced on 2026-12-04: 6 to 15 in 1,000 sessions ended so, each after
	// HELLO, WELCOME, ACK (and at most a RESUME) on its connection; the
	// dialer reported their messages lost. So here fewer Connect events
	// than cycles are legal; a message outside a session, or one neither
	// delivered nor handed back, is not.
	t.Run("the dialer leads", func(t *testing.T) {
		everyEndedSessionReported(t, "min-b", "min-a")
	})
}

// everyEndedSessionReported runs 1,000 cycles of TestEveryEndedSessionReported
// with a dialer and an acceptor of those ids (the larger id leads). It
// asserts that the acceptor replaced no session without a word, delivered
// no message outside a session, and ended every session it reported with a
// Disconnect, and that the dialer handed back with Lost every message the
// acceptor did not deliver; it returns the acceptor's Connect events.
func everyEndedSessionReported(t *testing.T, dialer, acceptor string) int64 {
	const cycles = 1000
	var connects, disconnects, messages, outside, lost atomic.Int64
	var open atomic.Bool // the acceptor's events come from one goroutine
	b, err := New(acceptor, WithLogger(quietLogger()), WithEvents(Events{
		Connect: func(*Server, string, string) { connects.Add(1); open.Store(true) },
		Disconnect: func(*Server, string, error) {
			disconnects.Add(1)
			open.Store(false)
		},
		Message: func(*Server, string, []byte) {
			messages.Add(1)
			if !open.Load() {
				outside.Add(1)
			}
		},
	}))
	require.NoError(t, err)
	defer b.Close()
	a, err := New(dialer, WithLogger(quietLogger()), WithEvents(Events{
		Lost: func(_ *Server, _ string, m [][]byte, _ error) { lost.Add(int64(len(m))) },
	}))
	require.NoError(t, err)
	defer a.Close()
	for i := range cycles {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_, err := a.Connect(ctx, b.Info())
		cancel()
		require.NoError(t, err, "cycle %d", i)
		require.NoError(t, a.SendErr(acceptor, []byte("x")))
		require.NoError(t, a.Disconnect(acceptor))
	}
	require.Eventually(t, func() bool { return disconnects.Load() == connects.Load() && len(b.Connections()) == 0 },
		10*time.Second, 10*time.Millisecond, "b's last session did not end")
	st := b.Stats()
	t.Logf("acceptor: %d Connect, %d Disconnect, %d messages for %d sessions; dialer: %d lost; duplicates %v",
		connects.Load(), disconnects.Load(), messages.Load(), cycles, lost.Load(), st.Duplicates)
	require.Zero(t, st.Duplicates["replaced"], "sessions replaced without a word")
	require.Zero(t, outside.Load(), "messages delivered outside a session")
	require.GreaterOrEqual(t, connects.Load(), messages.Load(), "one message per session")
	require.GreaterOrEqual(t, lost.Load()+messages.Load(), int64(cycles), "messages neither delivered nor handed back")
	return connects.Load()
}

// TestTooLargeForTheNewProcessComesAfterItsConnect: messages queued while a
// kept peer was away that its new process announces too large for it come
// back with Lost after that process's Connect, not before the old one's
// Disconnect: a callback that counts events between Connect and Disconnect
// as the old process's would blame it for a limit only the new one set. A
// black-box audit saw 4 to 7 such Lost events first, at the follower
// (this node, "aa", follows "bb"), whose stream resumes on the leader's
// first ACK, before the leader's RESUME confirms the session.
func TestTooLargeForTheNewProcessComesAfterItsConnect(t *testing.T) {
	var mu sync.Mutex
	var log []string
	note := func(s string) { mu.Lock(); log = append(log, s); mu.Unlock() }
	a, err := New("aa", WithLogger(quietLogger()), WithReconnectBackoff(10*time.Millisecond, 50*time.Millisecond), WithEvents(Events{
		Connect:    func(*Server, string, string) { note("connect") },
		Disconnect: func(_ *Server, _ string, err error) { note("disconnect " + fmt.Sprint(err)) },
		Lost: func(_ *Server, _ string, m [][]byte, err error) {
			for range m {
				note("lost " + fmt.Sprint(err))
			}
		},
	}))
	require.NoError(t, err)
	defer a.Close()
	b, _ := newServer(t, "bb")
	_, err = a.Connect(ctxT(t), b.Info())
	require.NoError(t, err)
	require.NoError(t, b.Close()) // a keeps bb: it queues while bb is away
	eventually(t, "a saw bb leave", func() bool { return len(a.Connections()) == 0 })
	small, big := make([]byte, 100), make([]byte, 100<<10)
	for i := range 20 {
		m := small
		if i%4 == 1 {
			m = big
		}
		require.True(t, a.Send("bb", m))
	}
	b2, rb2 := newServer(t, "bb", WithMaxFrameSize(64<<10+1))
	_, err = b2.Connect(ctxT(t), a.Info())
	require.NoError(t, err)
	eventually(t, "the small ones reach the new bb", func() bool { return len(rb2.messages("aa")) == 15 })
	eventually(t, "the large ones come back, and the restart is reported", func() bool {
		mu.Lock()
		defer mu.Unlock()
		lost, connects := 0, 0
		for _, e := range log {
			if strings.HasPrefix(e, "lost") {
				lost++
			} else if e == "connect" {
				connects++
			}
		}
		return lost == 5 && connects == 2
	})
	mu.Lock()
	defer mu.Unlock()
	i := slices.IndexFunc(log, func(e string) bool { return strings.HasPrefix(e, "disconnect") })
	require.GreaterOrEqual(t, i, 1, "events: %q", log)
	require.Contains(t, log[i], "replaced", "events: %q", log)
	require.Equal(t, "connect", log[i+1], "events: %q", log)
	for _, e := range log[:i] {
		require.NotContains(t, e, "lost", "a Lost of the new process's limit before the old process's Disconnect: %q", log)
	}
}
