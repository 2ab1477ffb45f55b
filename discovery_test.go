package masterless

import (
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// Discovery over real TCP on loopback (spec/PROTOCOL.md, section 8).

// joinMesh starts n servers with discovery; servers 1..n-1 Connect to
// server 0 only. It returns them (closed at cleanup).
func joinMesh(t *testing.T, n int, prefix string) []*Server {
	t.Helper()
	servers := make([]*Server, n)
	for i := range n {
		servers[i], _ = newServer(t, fmt.Sprintf("%s%02d", prefix, i), WithDiscovery())
	}
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for _, s := range servers[1:] {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := s.Connect(ctxT(t), servers[0].Info()); err != nil {
				errs <- fmt.Errorf("%s: %w", s.ID(), err)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Logf("a first Connect failed (retried: the address is kept): %v", err)
	}
	return servers
}

func sessions(servers []*Server) int {
	total := 0
	for _, s := range servers {
		total += len(s.Connections())
	}
	return total / 2
}

// TestDiscoveryJoin32: 32 servers that know only server 0's address reach
// the full mesh, 496 sessions, each agreed by both ends.
func TestDiscoveryJoin32(t *testing.T) {
	const n = 32
	servers := joinMesh(t, n, "j")
	eventuallyWithin(t, 60*time.Second, "the full mesh of 496 sessions", func() bool { return sessions(servers) == n*(n-1)/2 })
	for _, s := range servers {
		require.Len(t, s.Connections(), n-1, s.ID())
		require.Len(t, s.Members(), n-1, s.ID())
		for _, m := range s.Members() {
			require.True(t, m.Connected && m.Kept && !m.Left, "%s sees %+v", s.ID(), m)
		}
	}
}

// TestDiscoveryLeaveIsNotRedialed: a server that closes is marked left by
// every member, and none of them dials its address again.
func TestDiscoveryLeaveIsNotRedialed(t *testing.T) {
	t.Parallel() // it mostly waits out timeouts: beside the others that do (make test's time)
	servers := joinMesh(t, 5, "l")
	eventually(t, "the full mesh", func() bool { return sessions(servers) == 10 })
	gone := servers[3]
	addr := strings.TrimPrefix(gone.Info(), "tcp://")
	require.NoError(t, gone.Close())
	for _, s := range servers {
		if s == gone {
			continue
		}
		eventually(t, s.ID()+" marks l03 left", func() bool {
			for _, m := range s.Members() {
				if m.ID == "l03" {
					return m.Left && !m.Kept && !m.Connected
				}
			}
			return false
		})
	}
	// Listen where l03 was: a redial would arrive within the reconnect
	// backoff (20 to 200 ms here).
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Skipf("cannot listen on l03's old address %s again: %v", addr, err)
	}
	defer ln.Close()
	var dialed atomic.Int32
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			dialed.Add(1)
			c.Close()
		}
	}()
	time.Sleep(2 * time.Second)
	require.Zero(t, dialed.Load(), "a member that left was dialed again")
	for _, s := range append(servers[:3:3], servers[4:]...) {
		require.Len(t, s.Connections(), 3, "%s keeps its sessions with the others", s.ID())
	}
}

// TestDiscoveryRestartOnAnotherPort: a server that leaves and comes back
// with a new incarnation on another port, knowing only server 0, is found
// again by every member.
func TestDiscoveryRestartOnAnotherPort(t *testing.T) {
	servers := joinMesh(t, 5, "r")
	eventually(t, "the full mesh", func() bool { return sessions(servers) == 10 })
	old := servers[2]
	oldInfo := old.Info()
	require.NoError(t, old.Close())
	back, _ := newServer(t, "r02", WithDiscovery())
	require.NotEqual(t, oldInfo, back.Info())
	_, err := back.Connect(ctxT(t), servers[0].Info())
	require.NoError(t, err)
	servers[2] = back
	eventually(t, "the full mesh again", func() bool { return sessions(servers) == 10 })
	for _, s := range servers {
		if s == back {
			continue
		}
		for _, m := range s.Members() {
			if m.ID == "r02" {
				require.Equal(t, back.Info(), m.Addr, "%s redials r02 at its new address", s.ID())
				require.True(t, m.Connected && !m.Left, "%s: %+v", s.ID(), m)
			}
		}
	}
}

// TestDiscoveryMemberEvents: the Member event reports joins and leaves.
func TestDiscoveryMemberEvents(t *testing.T) {
	type change struct {
		id string
		c  MemberChange
	}
	var mu sync.Mutex
	var seen []change
	ev := Events{Member: func(_ *Server, m Member, c MemberChange, _ error) {
		mu.Lock()
		seen = append(seen, change{m.ID, c})
		mu.Unlock()
	}}
	a, _ := newServer(t, "ea", WithDiscovery(), WithEvents(ev))
	b, _ := newServer(t, "eb", WithDiscovery())
	c, _ := newServer(t, "ec", WithDiscovery())
	_, err := b.Connect(ctxT(t), a.Info())
	require.NoError(t, err)
	_, err = c.Connect(ctxT(t), a.Info())
	require.NoError(t, err)
	eventually(t, "b and c meet through a", func() bool { return len(b.Connections()) == 2 && len(c.Connections()) == 2 })
	require.NoError(t, c.Close())
	has := func(want change) bool {
		mu.Lock()
		defer mu.Unlock()
		for _, x := range seen {
			if x == want {
				return true
			}
		}
		return false
	}
	eventually(t, "a hears eb and ec join, and ec leave", func() bool {
		return has(change{"eb", MemberJoined}) && has(change{"ec", MemberJoined}) && has(change{"ec", MemberLeft})
	})
}

// TestDiscoveryLeftMemberExpiresOnALoneNode: a member that left is listed,
// with Left, for MemberTimeout and then no more, also on a node left with
// nothing to do (no session, nothing to gossip), whose state machine takes
// no step to notice the time (a black-box audit saw the record listed 45 s
// after the default 30 s).
func TestDiscoveryLeftMemberExpiresOnALoneNode(t *testing.T) {
	const timeout = 500 * time.Millisecond
	a, _ := newServer(t, "la", WithDiscovery(DiscoveryOptions{MemberTimeout: timeout}))
	b, _ := newServer(t, "lb", WithDiscovery(DiscoveryOptions{MemberTimeout: timeout}))
	_, err := b.Connect(ctxT(t), a.Info())
	require.NoError(t, err)
	listed := func() (bool, bool) {
		for _, m := range a.Members() {
			if m.ID == "lb" {
				return true, m.Left
			}
		}
		return false, false
	}
	eventually(t, "a lists lb", func() bool { ok, _ := listed(); return ok })
	require.NoError(t, b.Close())
	left := time.Now()
	eventually(t, "a lists lb as left", func() bool { _, l := listed(); return l })
	eventually(t, "lb's record expires", func() bool { ok, _ := listed(); return !ok })
	require.Less(t, time.Since(left), timeout+time.Second, "listed well past MemberTimeout")
}

// Without discovery (the default), nothing of the above happens: a server
// knows only whom it connected to, or who connected to it.
func TestDiscoveryOffByDefault(t *testing.T) {
	a, _ := newServer(t, "oa")
	b, _ := newServer(t, "ob", WithDiscovery())
	c, _ := newServer(t, "oc", WithDiscovery())
	_, err := b.Connect(ctxT(t), a.Info())
	require.NoError(t, err)
	_, err = c.Connect(ctxT(t), a.Info())
	require.NoError(t, err)
	time.Sleep(500 * time.Millisecond)
	require.Empty(t, a.Members())
	require.Equal(t, []string{"oa"}, b.Connections(), "a, without discovery, told b of no one")
	require.Equal(t, []string{"oa"}, c.Connections())
}

// TestDiscoveryCrashRestartReplacesStaleSessions: x crashes without a word
// (its connections go silent: no leave, no BYE, no FIN) and comes back as a
// new incarnation on another port, knowing only s0. Every member replaces
// its stale session with x as soon as it hears of the new incarnation, well
// before the peer timeout (15 s here), though x keeps only s0.
func TestDiscoveryCrashRestartReplacesStaleSessions(t *testing.T) {
	s := make([]*Server, 3)
	for i := range s {
		s[i], _ = newServer(t, fmt.Sprintf("s%d", i), WithDiscovery())
	}
	// x leads every pair (the greatest id), so the others dial it at its
	// advertised address: through p1. x reaches s0 through p2.
	ln, err := net.Listen("tcp", "127.0.0.1:0") // a free port for x, known before the proxy starts
	require.NoError(t, err)
	port := ln.Addr().(*net.TCPAddr).Port
	require.NoError(t, ln.Close())
	p1 := newProxy(t, fmt.Sprintf("tcp://127.0.0.1:%d", port))
	x, _ := newServer(t, "x", WithDiscovery(), WithPort(port), WithAdvertise(p1.info()))
	p2 := newProxy(t, s[0].Info())
	for _, c := range []*Server{s[1], s[2]} {
		_, err := c.Connect(ctxT(t), s[0].Info())
		require.NoError(t, err)
	}
	_, err = x.Connect(ctxT(t), p2.info())
	require.NoError(t, err)
	all := append(s[:3:3], x)
	eventually(t, "the full mesh", func() bool { return sessions(all) == 6 })
	oldInc := x.n.Incarnation()

	p1.blackhole()
	p2.blackhole()
	require.NoError(t, x.Close()) // its leave and BYEs vanish in the proxies: a crash, as the others see it

	start := time.Now()
	back, _ := newServer(t, "x", WithDiscovery())
	require.Greater(t, back.n.Incarnation(), oldInc)
	_, err = back.Connect(ctxT(t), s[0].Info())
	require.NoError(t, err)
	for _, c := range s {
		eventuallyWithin(t, 10*time.Second, c.ID()+" holds a session with the new x", func() bool {
			for _, m := range c.Members() {
				if m.ID == "x" {
					return m.Incarnation == back.n.Incarnation() && m.Connected
				}
			}
			return false
		})
	}
	took := time.Since(start)
	t.Logf("every member replaced its stale session with x in %v (peer timeout %v)", took, testPeerTO)
	require.Less(t, took, testPeerTO/2, "the stale sessions waited for the peer timeout")
	// A follower shows the session from the grant, x (the leader) once the
	// follower's answer confirms it, a moment later: wait for that moment.
	eventuallyWithin(t, 5*time.Second, "the new x lists its three sessions", func() bool { return len(back.Connections()) == 3 })
}
