package masterless

import (
	"errors"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/masterless-go/masterless/fsm"
	"github.com/masterless-go/masterless/spec"
)

// observe builds a spec.Snapshot of servers from what each one shows: its
// sessions (the peer, and the TCP connection's two addresses) and its keep
// flags. A TCP connection is named by its dialer's two addresses; one
// relayed by a proxy in relays, by those of the relay's inbound leg, so that
// both of its ends get the same id. What a Server does not show
// (handshakes in progress, incarnations, session numbers) is left out, and
// every end a server holds counts as open. The servers are read one after
// the other, not at one instant, so only a settled mesh is judged by it:
// tests wait for spec.CheckSafety and spec.CheckQuiescent to hold of it
// (settled), the definition of correct the simulator and TLC use too.
func observe(servers []*Server, relays ...*proxy) *spec.Snapshot {
	s := &spec.Snapshot{}
	ids := map[string]spec.ConnID{}
	conns := map[spec.ConnID]*spec.Conn{}
	for _, srv := range servers {
		listen := strings.TrimPrefix(srv.Info(), "tcp://")
		n := spec.NodeView{ID: srv.ID(), Alive: true}
		sessions := map[string]spec.ConnEnd{}
		addrs := map[string][2]net.Addr{}
		for _, p := range srv.Stats().Peers {
			if p.LocalAddr != nil {
				addrs[p.ID] = [2]net.Addr{p.LocalAddr, p.RemoteAddr}
			}
		}
		for i, peer := range srv.Connections() {
			a, ok := addrs[peer]
			if !ok {
				continue // closed meanwhile
			}
			local, remote := a[0], a[1]
			dialed := local.String() != listen
			// The dialer's two addresses: its local address alone is not
			// unique, as Linux gives one local port to connections to
			// different destinations (often when floods elsewhere crowd
			// the ephemeral ports).
			key := local.String() + " > " + remote.String()
			if !dialed {
				key = dialerOf(remote.String(), local.String(), relays)
			}
			g, ok := ids[key]
			if !ok {
				g = spec.ConnID(len(ids) + 1)
				ids[key] = g
				conns[g] = &spec.Conn{ID: g}
			}
			side := 1
			if dialed {
				side = 0
			}
			conns[g].Ends[side] = spec.End{Node: srv.ID(), Open: true}
			e := spec.ConnEnd{ConnStatus: fsm.ConnStatus{ID: fsm.ConnID(i + 1), State: fsm.StateEstablished, Dialed: dialed, Peer: peer}, Global: g}
			n.Conns = append(n.Conns, e)
			sessions[peer] = e
		}
		for _, o := range servers {
			e, has := sessions[o.ID()]
			if o == srv || (!has && !srv.IsKept(o.ID())) {
				continue
			}
			p := spec.Peer{PeerStatus: fsm.PeerStatus{ID: o.ID(), Kept: srv.IsKept(o.ID()), Addr: o.Info()}}
			if has {
				p.SessionConn, p.SessionGlobal = e.ID, e.Global
			}
			n.Peers = append(n.Peers, p)
		}
		s.Nodes = append(s.Nodes, n)
	}
	slices.SortFunc(s.Nodes, func(a, b spec.NodeView) int { return strings.Compare(a.ID, b.ID) })
	for _, c := range conns {
		s.Conns = append(s.Conns, *c)
	}
	slices.SortFunc(s.Conns, func(a, b spec.Conn) int { return int(a.ID) - int(b.ID) })
	return s
}

// dialerOf returns the dialer's two addresses ("local > remote") of the
// connection whose acceptor sees remote and local: remote and local
// themselves, unless a relay's outbound leg has it: then the dialer's
// address on the relay's inbound leg, and the relay's address it dialed.
func dialerOf(remote, local string, relays []*proxy) string {
	for _, p := range relays {
		p.mu.Lock()
		for i := 0; i+1 < len(p.conns); i += 2 {
			if p.conns[i+1].LocalAddr().String() == remote {
				remote, local = p.conns[i].RemoteAddr().String(), p.conns[i].LocalAddr().String()
			}
		}
		p.mu.Unlock()
	}
	return remote + " > " + local
}

// settled reports why servers are not yet a correct, quiescent mesh by
// package spec (nil once they are).
func settled(servers []*Server, relays ...*proxy) error {
	s := observe(servers, relays...)
	return errors.Join(spec.CheckSafety(s), spec.CheckQuiescent(s))
}

// requireSettled waits until settled holds of servers.
func requireSettled(t *testing.T, servers []*Server, relays ...*proxy) {
	t.Helper()
	deadline := time.Now().Add(waitFor)
	for {
		err := settled(servers, relays...)
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("not a settled mesh by spec.CheckSafety and spec.CheckQuiescent after %v: %v", waitFor, err)
		}
		time.Sleep(pollEvery)
	}
}

// requireOneAgreedSession waits until a and b each hold exactly one session,
// with each other, over the same TCP connection (directly or through one of
// the relays): spec.CheckQuiescent of the pair, which one of them keeps.
func requireOneAgreedSession(t *testing.T, a, b *Server, relays ...*proxy) {
	t.Helper()
	requireSettled(t, []*Server{a, b}, relays...)
	if !sameSet(a.Connections(), b.ID()) || !sameSet(b.Connections(), a.ID()) {
		t.Fatalf("settled, but the sessions are %v and %v", a.Connections(), b.Connections())
	}
}

// TestObserveCatchesTwoConnections is the negative control of observe and
// settled: a session relayed by a proxy, observed without telling it the
// relay, looks like two connections, each open at one end only; the spec's
// quiescence check must refuse that, and accept it once told.
func TestObserveCatchesTwoConnections(t *testing.T) {
	a, _ := newServer(t, "a")
	b, _ := newServer(t, "b")
	relay := newProxy(t, b.Info())
	_, err := a.Connect(ctxT(t), relay.info())
	if err != nil {
		t.Fatal(err)
	}
	requireOneAgreedSession(t, a, b, relay)
	err = settled([]*Server{a, b})
	if err == nil || !strings.Contains(err.Error(), "pair a-b is kept") {
		t.Fatalf("two ends on different connections were not caught: %v", err)
	}
}
