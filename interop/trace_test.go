//go:build masterless_trace

package interop

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/masterless-go/masterless/fsm"
	"github.com/masterless-go/masterless/netio"
	"github.com/masterless-go/masterless/spec"
)

// TestRecordLegacyTraces records the Go node's own trace (spec/TRACE.md,
// the fsm's trace points, build tag masterless_trace) of connections with
// the real masterless 0.4.1, for trace validation against tla/GoLegacy.tla
// (tla/TraceGoLegacy.tla). One trace per scenario: Go dials the 0.4.1 node
// and discards the pair; the 0.4.1 node dials Go and disconnects; both dial
// at once; the crossing settled by priorities; the last two with the Go id
// below and above the 0.4.1 id.
//
// With MASTERLESS_TRACE_DIR set, the traces are written there (that is how
// testdata/interop/traces/legacy-*.ndjson were made); otherwise to a
// temporary folder. Record, then validate with TLC:
//
//	MASTERLESS_TRACE_DIR=DIR go test -tags masterless_trace -run TestRecordLegacyTraces ./interop
//	LEGACY_TRACE_DIR=DIR TLA_ONLY=trace bash tla/run.sh
func TestRecordLegacyTraces(t *testing.T) {
	Require(t)
	if !fsm.TraceCompiled {
		t.Fatal("built without the trace points")
	}
	dir := os.Getenv("MASTERLESS_TRACE_DIR")
	if dir == "" {
		dir = t.TempDir()
	}
	for _, sc := range []struct {
		name string
		goID string
		run  func(t *testing.T, g *tracedGo, node *Driver)
	}{
		{"legacy-go-dials", "go-a", func(t *testing.T, g *tracedGo, node *Driver) {
			g.connect(t, node.Info)
			node.Expect(waitLong, "connect from go-a", isConnect("go-a"))
			g.waitSession(t, node.ID, true)
			if err := g.rt.Send(node.ID, []byte(`{"n":1}`)); err != nil {
				t.Fatal(err)
			}
			node.Expect(waitLong, "message", isMessage("go-a", `{"n":1}`))
			// Neither keeps the pair now: Go says [false] and closes.
			if err := g.rt.SetKeep(node.ID, false); err != nil {
				t.Fatal(err)
			}
			g.waitSession(t, node.ID, false)
			node.Expect(waitLong, "disconnect", isDisconnect("go-a"))
		}},
		{"legacy-node-dials", "go-a", func(t *testing.T, g *tracedGo, node *Driver) {
			node.Connect(g.rt.Info())
			node.Keep("go-a", true)
			node.Expect(waitLong, "connect to go-a", isConnect("go-a"))
			g.waitSession(t, node.ID, true)
			node.Send("go-a", map[string]any{"to": "go"})
			node.Disconnect("go-a")
			g.waitSession(t, node.ID, false)
		}},
		{"legacy-crossed-nodeleads", "go-a", crossed},
		{"legacy-crossed-goleads", "zz-go", crossed},
		{"legacy-priorities-nodeleads", "go-a", priorities},
		{"legacy-priorities-goleads", "zz-go", priorities},
	} {
		t.Run(sc.name, func(t *testing.T) {
			node := Start(t, "node-b")
			g := startTracedGo(t, sc.goID, node.ID)
			sc.run(t, g, node)
			g.rt.SetTracer(nil)
			lines := g.lines()
			if !slices.ContainsFunc(lines, func(l spec.TraceLine) bool { return l.Kind == "frame" }) {
				t.Fatalf("trace has no frame line: %+v", lines)
			}
			f, err := os.Create(filepath.Join(dir, sc.name+".ndjson"))
			if err != nil {
				t.Fatal(err)
			}
			enc := json.NewEncoder(f)
			for i := range lines {
				if err := enc.Encode(&lines[i]); err != nil {
					t.Fatal(err)
				}
			}
			if err := f.Close(); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// crossed: both dial at once; one connection survives, the same at both ends.
func crossed(t *testing.T, g *tracedGo, node *Driver) {
	node.Connect(g.rt.Info())
	node.Keep(g.rt.ID(), true)
	g.connect(t, node.Info)
	crossedSettled(t, g, node)
}

// crossedSettled waits for the one session both ends hold, and sends on it.
func crossedSettled(t *testing.T, g *tracedGo, node *Driver) {
	node.Expect(waitLong, "connect", isConnect(g.rt.ID()))
	g.waitSession(t, node.ID, true)
	// Wait until node-b holds one stream and no handshake: the loser is closed.
	deadline := time.Now().Add(waitLong)
	for {
		n := node.State().Nodes[g.rt.ID()]
		if n.Stream && (n.Remote == 2) != (n.Local == 2) && n.Remote != 1 && n.Local != 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("node-b's record of %s: %+v", g.rt.ID(), n)
		}
		time.Sleep(pollEvery)
	}
	if err := g.rt.Send(node.ID, []byte(`{"after":"dedup"}`)); err != nil {
		t.Fatal(err)
	}
	node.Expect(waitLong, "message", isMessage(g.rt.ID(), `{"after":"dedup"}`))
}

// priorities: the crossing that 0.4.1 settles by priorities. Go dials the
// 0.4.1 node (x) through a proxy that holds its answers back 300 ms; once
// the node has answered x it dials Go (y) through a proxy that holds its
// bytes to Go back 200 ms. Go then has y waiting for its priority when x's answer
// arrives, so it sends the smallest positive number on x if its id is the
// smaller, else 1; the node, which has answered x, sends a random priority
// on y. Both ends compare the same two numbers: the id-leader's dial
// survives.
func priorities(t *testing.T, g *tracedGo, node *Driver) {
	toNode := delayProxy(t, node.Info, 0, 300*time.Millisecond)
	toGo := delayProxy(t, g.rt.Info(), 200*time.Millisecond, 0)
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), waitLong)
		defer cancel()
		_, err := g.rt.Connect(ctx, toNode)
		done <- err
	}()
	deadline := time.Now().Add(waitLong)
	for node.State().Nodes[g.rt.ID()].Remote != 1 {
		if time.Now().After(deadline) {
			t.Fatal("node-b never answered Go's dial")
		}
		time.Sleep(time.Millisecond)
	}
	node.Connect(toGo)
	node.Keep(g.rt.ID(), true)
	if err := <-done; err != nil {
		t.Fatalf("Connect: %v", err)
	}
	crossedSettled(t, g, node)
}

// delayProxy forwards connections to the node at info (tcp://host:port),
// holding back each chunk the dialer writes for toTarget and each chunk the
// node writes for fromTarget.
func delayProxy(t *testing.T, info string, toTarget, fromTarget time.Duration) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	target := strings.TrimPrefix(info, "tcp://")
	go func() {
		for {
			in, err := ln.Accept()
			if err != nil {
				return
			}
			out, err := net.Dial("tcp", target)
			if err != nil {
				in.Close()
				continue
			}
			t.Cleanup(func() { in.Close(); out.Close() })
			go delayedCopy(out.(*net.TCPConn), in, toTarget)
			go delayedCopy(in.(*net.TCPConn), out, fromTarget)
		}
	}()
	return "tcp://" + ln.Addr().String()
}

// delayedCopy copies src to dst, each chunk delay late, then closes dst's
// write side.
func delayedCopy(dst *net.TCPConn, src net.Conn, delay time.Duration) {
	defer dst.CloseWrite()
	buf := make([]byte, 64<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			time.Sleep(delay)
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// tracedGo is a Go node (netio, dialing in 0.4.1) whose fsm trace is written
// down in the lines of spec/TRACE.md.
type tracedGo struct {
	rt   *netio.Runtime
	peer string // the 0.4.1 node: every dial reaches it
	t0   time.Time

	mu  sync.Mutex
	out []spec.TraceLine
}

func startTracedGo(t *testing.T, id, peer string) *tracedGo {
	t.Helper()
	rt, err := netio.Start(netio.Config{
		FSM: fsm.Config{
			ID: id, LegacyDial: true,
			HeartbeatInterval: 200 * time.Millisecond,
			PeerTimeout:       3 * time.Second,
			HandshakeTimeout:  3 * time.Second,
			ReconnectGrace:    3 * time.Second,
		},
		Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	g := &tracedGo{rt: rt, peer: peer, t0: time.Now()}
	if !rt.SetTracer(g.record) {
		t.Fatal("SetTracer: no trace points in this build")
	}
	t.Cleanup(func() {
		rt.SetTracer(nil)
		rt.Close()
	})
	return g
}

// record writes one fsm trace record down. The node's connection ids serve
// as the trace's (only this node's end is traced); a dial always reaches
// the 0.4.1 node; a connection that failed with an error other than EOF
// was reset.
func (g *tracedGo) record(r *fsm.TraceRecord) {
	if r.Kind == "shutdown" {
		return
	}
	l := spec.TraceLine{Node: g.rt.ID(), Inc: r.Incarnation, Kind: r.Kind, Conn: spec.ConnID(r.Conn), Dialer: r.Dialer,
		Peer: r.Peer, Keep: r.Keep, Conns: []spec.TraceConn{}, Peers: []spec.TracePeer{},
		Reset: r.Reset || (r.Kind == "closed" && r.Err != nil && !errors.Is(r.Err, fsm.ErrPeerClosed) && !errors.Is(r.Err, io.EOF)),
		T:     int64(time.Since(g.t0))}
	if r.Kind == "dialed" {
		l.Peer = g.peer
	}
	if f := &r.Frame; f.Type != "" {
		l.Frame = &spec.TraceFrame{Type: f.Type, ID: f.ID, Inc: f.Incarnation, Sess: f.Sess, Closed: f.Closed, Keep: f.Keep, Code: int(f.Code)}
	}
	for _, c := range r.Conns {
		l.Conns = append(l.Conns, spec.TraceConn{Conn: spec.ConnID(c.Conn), Peer: c.Peer, PInc: c.PeerInc, State: c.State.String(), Sess: c.Sess, Legacy: c.Legacy})
	}
	listed := false
	for _, p := range r.Peers {
		l.Peers = append(l.Peers, spec.TracePeer{Peer: p.Peer, Keep: p.Keep, Session: spec.ConnID(p.SessionConn)})
		listed = listed || p.Peer == g.peer
	}
	if !listed {
		l.Peers = append(l.Peers, spec.TracePeer{Peer: g.peer})
	}
	g.mu.Lock()
	l.Step = len(g.out) + 1
	g.out = append(g.out, l)
	g.mu.Unlock()
}

func (g *tracedGo) lines() []spec.TraceLine {
	g.mu.Lock()
	defer g.mu.Unlock()
	return slices.Clone(g.out)
}

func (g *tracedGo) connect(t *testing.T, uri string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitLong)
	defer cancel()
	if _, err := g.rt.Connect(ctx, uri); err != nil {
		t.Fatalf("Connect(%s): %v", uri, err)
	}
}

func (g *tracedGo) waitSession(t *testing.T, peer string, up bool) {
	t.Helper()
	deadline := time.Now().Add(waitLong)
	for slices.Contains(g.rt.Sessions(), peer) != up {
		if time.Now().After(deadline) {
			t.Fatalf("session with %s up=%v not reached; sessions %v", peer, up, g.rt.Sessions())
		}
		time.Sleep(pollEvery)
	}
}
