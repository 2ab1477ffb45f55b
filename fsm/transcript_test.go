package fsm_test

import (
	"bufio"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/masterless-go/masterless/fsm"
	"github.com/masterless-go/masterless/wire"
)

// Transcript tests drive real fsm.Nodes through a tiny hand-cranked network,
// one command at a time, and compare every action with testdata/fsm/*.txt.
// Run with -rewrite to regenerate the expected blocks after a deliberate
// change, then read the diff as a protocol trace.
var rewrite = flag.Bool("rewrite", false, "rewrite testdata/fsm transcripts with the actual output")

// pipe is one direction of one connection: frames (or an EOF) in flight.
type pipe struct {
	frames []item
}

type item struct {
	seq   int         // global enqueue order, for fair delivery
	frame *wire.Frame // nil: end of stream
}

// end is one end of a connection: which node holds it under which id.
type end struct {
	node string
	id   fsm.ConnID
}

// tconn is one TCP connection of the transcript network.
type tconn struct {
	num     int
	ends    [2]end // [0] dialer, [1] acceptor
	toward  [2]pipe
	closed  [2]bool // closed by that end
	dropped bool
	// legacy: the connection speaks masterless 0.4.1, each end through a
	// codec of its own (wire.Legacy has state).
	legacy bool
	lcodec [2]*wire.Legacy
}

type harness struct {
	t     *testing.T
	now   time.Duration
	nodes map[string]*fsm.Node
	js    map[string]bool // scripted masterless 0.4.1 nodes: the transcript speaks for them
	conns []*tconn
	seq   int
	out   strings.Builder
	codec wire.V1
	req   fsm.ReqID
}

func newHarness(t *testing.T) *harness {
	return &harness{t: t, nodes: map[string]*fsm.Node{}, js: map[string]bool{}}
}

func addrOf(id string) string { return "tcp://" + id }

func (h *harness) sortedNodes() []string {
	ids := make([]string, 0, len(h.nodes))
	for id := range h.nodes {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// step feeds ev to node id and carries out its actions.
func (h *harness) step(id string, ev fsm.Event) {
	n := h.nodes[id]
	if n == nil {
		h.t.Fatalf("no node %s", id)
	}
	if err := n.Step(h.now, ev); err != nil {
		fmt.Fprintf(&h.out, "%s: refused: %v\n", id, err)
	}
	h.drain(id)
}

func (h *harness) drain(id string) {
	n := h.nodes[id]
	for _, a := range slices.Clone(n.Ready()) {
		fmt.Fprintf(&h.out, "%s: %s\n", id, a.String())
		switch a.Kind {
		case fsm.ActDial:
			h.dial(id, a.Dial, a.Addr, a.Legacy)
		case fsm.ActWrite:
			c, side := h.find(id, a.Conn)
			if c == nil || c.closed[side] {
				h.t.Fatalf("%s wrote on unknown or closed c%d", id, a.Conn)
			}
			if c.legacy {
				h.writeLegacy(c, side, &a.Frame)
				continue
			}
			// Round-trip through the codec so transcripts exercise it too.
			b, err := h.codec.AppendFrame(nil, &a.Frame)
			if err != nil {
				h.t.Fatalf("%s: encode %s: %v", id, a.Frame.String(), err)
			}
			f, nb, err := h.codec.ParseFrame(b)
			if err != nil || nb != len(b) {
				h.t.Fatalf("%s: decode %s: %v", id, a.Frame.String(), err)
			}
			h.push(c, side, &f)
		case fsm.ActClose:
			c, side := h.find(id, a.Conn)
			if c != nil && !c.closed[side] {
				c.closed[side] = true
				h.push(c, side, nil)
			}
		}
	}
}

func (h *harness) push(c *tconn, from int, f *wire.Frame) {
	h.seq++
	p := &c.toward[1-from]
	p.frames = append(p.frames, item{seq: h.seq, frame: f})
}

func (h *harness) find(node string, id fsm.ConnID) (*tconn, int) {
	for _, c := range h.conns {
		for side, e := range c.ends {
			if e.node == node && e.id == id && !c.dropped {
				return c, side
			}
		}
	}
	return nil, 0
}

// dial connects at once to the node listening at addr, or fails.
// writeLegacy encodes f as masterless 0.4.1 bytes on side's end of c; a
// scripted peer's bytes are shown, a Go peer's are parsed by its own codec.
func (h *harness) writeLegacy(c *tconn, side int, f *wire.Frame) {
	b, err := c.lcodec[side].AppendFrame(nil, f)
	if err != nil {
		h.t.Fatalf("encode %s in 0.4.1: %v", f.String(), err)
	}
	if len(b) == 0 {
		return // BYE: 0.4.1 has no close reason, the FIN says it all
	}
	if to := c.ends[1-side].node; h.js[to] {
		fmt.Fprintf(&h.out, "  %s reads %s\n", to, strings.TrimSpace(string(b)))
		return
	}
	g, nb, err := c.lcodec[1-side].ParseFrame(b)
	if err != nil || nb != len(b) {
		h.t.Fatalf("decode 0.4.1 %q: %v", b, err)
	}
	h.push(c, side, &g)
}

func (h *harness) dial(from string, d fsm.DialID, addr string, legacy bool) {
	// "tcp://B#2" is another address of node B: an alias local dedup cannot see through.
	to, _, _ := strings.Cut(strings.TrimPrefix(addr, "tcp://"), "#")
	if h.js[to] {
		if !legacy {
			h.step(from, fsm.DialFailed{Dial: d, Err: fmt.Errorf("the 0.4.1 node refuses a v1 preamble")})
			return
		}
		c := h.newConn(from, fsm.ConnID(len(h.conns)+1), to, 0, true)
		h.step(from, fsm.Dialed{Dial: d, Conn: c.ends[0].id})
		return
	}
	if h.nodes[to] == nil {
		h.step(from, fsm.DialFailed{Dial: d, Err: fmt.Errorf("connection refused")})
		return
	}
	num := len(h.conns) + 1
	accID := fsm.ConnID(num)
	if to == from {
		accID += 100 // both ends on one node need distinct ids
	}
	h.newConn(from, fsm.ConnID(num), to, accID, legacy)
	h.step(to, fsm.Accepted{Conn: accID, Legacy: legacy})
	h.step(from, fsm.Dialed{Dial: d, Conn: fsm.ConnID(num)})
}

func (h *harness) newConn(from string, fromID fsm.ConnID, to string, toID fsm.ConnID, legacy bool) *tconn {
	c := &tconn{num: len(h.conns) + 1, ends: [2]end{{from, fromID}, {to, toID}}, legacy: legacy}
	if legacy {
		c.lcodec = [2]*wire.Legacy{{}, {}}
	}
	h.conns = append(h.conns, c)
	return c
}

// jsConn returns connection num and the side of scripted node id on it.
func (h *harness) jsConn(id, num string) (*tconn, int) {
	k, err := strconv.Atoi(num)
	if err != nil || k < 1 || k > len(h.conns) || !h.js[id] {
		h.t.Fatalf("no connection %q of scripted node %q", num, id)
	}
	c := h.conns[k-1]
	for side, e := range c.ends {
		if e.node == id {
			return c, side
		}
	}
	h.t.Fatalf("%s does not hold connection %d", id, k)
	return nil, 0
}

// deliverOne delivers the oldest item in flight (optionally only on conn
// num); it reports false when nothing is in flight.
func (h *harness) deliverOne(num int, to string) bool {
	var best *tconn
	bestSide, bestSeq := -1, 0
	for _, c := range h.conns {
		if c.dropped || (num != 0 && c.num != num) {
			continue
		}
		for side := range 2 {
			if to != "" && c.ends[side].node != to {
				continue
			}
			if q := c.toward[side].frames; len(q) > 0 && (best == nil || q[0].seq < bestSeq) {
				best, bestSide, bestSeq = c, side, q[0].seq
			}
		}
	}
	if best == nil {
		return false
	}
	p := &best.toward[bestSide]
	it := p.frames[0]
	p.frames = p.frames[1:]
	e := best.ends[bestSide]
	if h.nodes[e.node] == nil || best.closed[bestSide] {
		return true // the receiving end is gone: the bytes fall on the floor
	}
	if it.frame == nil {
		best.closed[bestSide] = true
		h.step(e.node, fsm.ConnClosed{Conn: e.id, Err: fmt.Errorf("EOF")})
	} else {
		h.step(e.node, fsm.FrameReceived{Conn: e.id, Frame: *it.frame})
	}
	return true
}

func (h *harness) state(id string) {
	n := h.nodes[id]
	for _, c := range n.Conns() {
		role := "follower"
		if c.Leader {
			role = "leader"
		}
		if c.Peer == "" {
			role = "?"
		}
		fmt.Fprintf(&h.out, "%s: conn c%d %s peer=%s %s sess=%d dialed=%v\n", id, c.ID, c.State, c.Peer, role, c.Sess, c.Dialed)
	}
	for _, p := range n.Peers() {
		fmt.Fprintf(&h.out, "%s: peer %s kept=%v connected=%v session=c%d sess=%d queued=%d\n", id, p.ID, p.Kept, p.Connected, p.Session, p.Sess, p.Queued)
	}
	if d, ok := n.NextDeadline(); ok {
		fmt.Fprintf(&h.out, "%s: next deadline %v\n", id, d)
	}
}

func kv(args []string, key, def string) string {
	for _, a := range args {
		if k, v, ok := strings.Cut(a, "="); ok && k == key {
			return v
		}
	}
	return def
}

func (h *harness) run(cmd string, args []string) {
	switch cmd {
	case "node": // node ID [inc=N] [queue=N] [legacy=1] -- creates and starts listening
		inc, _ := strconv.ParseUint(kv(args, "inc", "1"), 10, 64)
		q, _ := strconv.Atoi(kv(args, "queue", "0"))
		hs, _ := strconv.Atoi(kv(args, "maxhandshakes", "0"))
		legacy := kv(args, "legacy", "0") == "1"
		n, err := fsm.New(fsm.Config{ID: args[0], Incarnation: inc, Seed: 1, QueueMessages: q, MaxHandshakes: hs, LegacyDial: legacy})
		if err != nil {
			h.t.Fatal(err)
		}
		h.nodes[args[0]] = n
		h.step(args[0], fsm.Listening{Info: addrOf(args[0])})
	case "crash": // crash ID [silent] -- the node vanishes; peers see EOF unless silent
		delete(h.nodes, args[0])
		for _, c := range h.conns {
			for side, e := range c.ends {
				if e.node == args[0] && !c.closed[side] {
					c.closed[side] = true
					c.toward[side].frames = nil
					if len(args) < 2 || args[1] != "silent" {
						h.push(c, side, nil)
					}
				}
			}
		}
	case "connect": // connect FROM TO  (TO may be an alias: B#2)
		h.req++
		h.step(args[0], fsm.Connect{Req: h.req, Addr: addrOf(args[1])})
	case "send": // send FROM TO PAYLOAD
		h.step(args[0], fsm.Send{Peer: args[1], Payload: []byte(args[2])})
	case "keep": // keep FROM TO true|false
		h.step(args[0], fsm.SetKeep{Peer: args[1], Keep: args[2] == "true"})
	case "disconnect": // disconnect FROM TO
		h.step(args[0], fsm.Disconnect{Peer: args[1]})
	case "shutdown":
		h.step(args[0], fsm.Shutdown{})
	case "lose": // lose conn=K to=X -- bytes in flight toward X on K vanish
		num, _ := strconv.Atoi(kv(args, "conn", "0"))
		for _, c := range h.conns {
			for side, e := range c.ends {
				if c.num == num && e.node == kv(args, "to", "") {
					c.toward[side].frames = nil
				}
			}
		}
	case "deliver": // deliver [all|N] [conn=K] [to=X]
		num, _ := strconv.Atoi(kv(args, "conn", "0"))
		to := kv(args, "to", "")
		limit := 1
		if len(args) > 0 && args[0] == "all" {
			limit = 1 << 30
		} else if len(args) > 0 {
			if v, err := strconv.Atoi(args[0]); err == nil {
				limit = v
			}
		}
		for i := 0; i < limit && h.deliverOne(num, to); i++ {
		}
	case "advance": // advance DURATION -- time passes; every node ticks
		d, err := time.ParseDuration(args[0])
		if err != nil {
			h.t.Fatal(err)
		}
		h.now += d
		for _, id := range h.sortedNodes() {
			h.step(id, fsm.Tick{})
		}
	case "inject": // inject NODE CONN TYPE -- a frame the peer should not send
		conn, _ := strconv.Atoi(args[1])
		var t wire.Type
		for ty := wire.Hello; ty <= wire.Bye; ty++ {
			if ty.String() == args[2] {
				t = ty
			}
		}
		h.step(args[0], fsm.FrameReceived{Conn: fsm.ConnID(conn), Frame: wire.Frame{Type: t, Sess: 99}})
	case "js": // js ID -- a masterless 0.4.1 node at tcp://ID whose bytes the transcript writes
		h.js[args[0]] = true
	case "jsdial": // jsdial FROM TO -- scripted FROM dials Go node TO (0.4.1: no preamble)
		c := h.newConn(args[0], 0, args[1], fsm.ConnID(len(h.conns)+1), true)
		h.step(args[1], fsm.Accepted{Conn: c.ends[1].id, Legacy: true})
	case "say": // say FROM conn=K JSON -- scripted FROM sends one 0.4.1 line
		if len(args) < 3 || !strings.HasPrefix(args[1], "conn=") {
			h.t.Fatalf("say FROM conn=K JSON, got %q", args)
		}
		c, side := h.jsConn(args[0], strings.TrimPrefix(args[1], "conn="))
		e := c.ends[1-side]
		f, nb, err := c.lcodec[1-side].ParseFrame([]byte(strings.Join(args[2:], " ") + "\r\n"))
		if err != nil || nb == 0 {
			h.t.Fatalf("say %q: %v", args, err)
		}
		fmt.Fprintf(&h.out, "  %s parses %s\n", e.node, f.String())
		h.step(e.node, fsm.FrameReceived{Conn: e.id, Frame: f})
	case "hangup": // hangup FROM conn=K -- scripted FROM closes its end (FIN)
		if len(args) != 2 || !strings.HasPrefix(args[1], "conn=") {
			h.t.Fatalf("hangup FROM conn=K, got %q", args)
		}
		c, side := h.jsConn(args[0], strings.TrimPrefix(args[1], "conn="))
		e := c.ends[1-side]
		c.closed[side] = true
		if !c.closed[1-side] {
			c.closed[1-side] = true
			h.step(e.node, fsm.ConnClosed{Conn: e.id, Err: fmt.Errorf("EOF")})
		}
	case "state":
		for _, id := range args {
			h.state(id)
		}
	default:
		h.t.Fatalf("unknown command %q", cmd)
	}
}

func TestTranscripts(t *testing.T) {
	files, err := filepath.Glob("../testdata/fsm/*.txt")
	if err != nil || len(files) == 0 {
		t.Fatalf("no transcripts found: %v", err)
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) { runTranscript(t, file) })
	}
}

// A transcript is a sequence of blocks: a command line, "----", the expected
// output, then a blank line. Lines starting with # are comments.
func runTranscript(t *testing.T, file string) {
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	h := newHarness(t)
	var rewritten strings.Builder
	sc := bufio.NewScanner(strings.NewReader(string(data)))
	lineNo := 0
	for sc.Scan() {
		lineNo++
		line := sc.Text()
		if strings.TrimSpace(line) == "" || strings.HasPrefix(line, "#") {
			rewritten.WriteString(line + "\n")
			continue
		}
		cmdLine, cmdAt := line, lineNo
		if !sc.Scan() || sc.Text() != "----" {
			t.Fatalf("%s:%d: command %q not followed by ----", file, cmdAt, cmdLine)
		}
		lineNo++
		var want []string
		for sc.Scan() {
			lineNo++
			if sc.Text() == "" {
				break
			}
			want = append(want, sc.Text())
		}
		fields := strings.Fields(cmdLine)
		h.out.Reset()
		h.run(fields[0], fields[1:])
		got := strings.TrimRight(h.out.String(), "\n")
		if got == "" {
			got = "ok"
		}
		fmt.Fprintf(&rewritten, "%s\n----\n%s\n\n", cmdLine, got)
		if !*rewrite && got != strings.Join(want, "\n") {
			t.Errorf("%s:%d: %s\n--- want\n%s\n--- got\n%s", file, cmdAt, cmdLine, strings.Join(want, "\n"), got)
		}
	}
	if *rewrite {
		out := strings.TrimRight(rewritten.String(), "\n") + "\n"
		if err := os.WriteFile(file, []byte(out), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
