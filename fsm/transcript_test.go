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
	frame *wire.Frame // a v1 frame; nil with raw: end of stream
	raw   []byte      // one 0.4.1 message, parsed on delivery
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
	// legacy: the connection speaks masterless 0.4.1. A Go end parses each
	// message in the phase its connection state gives (as package link
	// does); a scripted end reads in the phase of what it has seen, jsPhase.
	legacy  bool
	jsPhase [2]wire.LegacyPhase
}

type harness struct {
	t     testing.TB
	where string // file:line of the command being run
	now   time.Duration
	nodes map[string]*fsm.Node
	js    map[string]bool // scripted masterless 0.4.1 nodes: the transcript speaks for them
	conns []*tconn
	seq   int
	out   strings.Builder
	codec wire.Binary
	req   fsm.ReqID
}

func newHarness(t testing.TB) *harness {
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
		h.t.Fatalf("%s: no node %s", h.where, id)
	}
	if err := n.Step(h.now, ev); err != nil {
		fmt.Fprintf(&h.out, "%s: refused: %v\n", id, err)
	}
	if err := n.CheckTimers(); err != nil {
		h.t.Fatalf("%s after %#v at %v: %v", id, ev, h.now, err)
	}
	if err := n.CheckSlots(); err != nil {
		h.t.Fatalf("%s after %#v at %v: %v", id, ev, h.now, err)
	}
	if err := n.CheckStreams(); err != nil {
		h.t.Fatalf("%s after %#v at %v: %v", id, ev, h.now, err)
	}
	h.drain(id)
}

func (h *harness) drain(id string) {
	n := h.nodes[id]
	for _, a := range splitAll(n.Ready()) {
		fmt.Fprintf(&h.out, "%s: %s\n", id, a.String())
		switch a.Kind {
		case fsm.ActDial:
			h.dial(id, a.Dial, a.Addr, a.Legacy)
		case fsm.ActWrite:
			c, side := h.find(id, a.Conn)
			if c == nil || c.closed[side] {
				h.t.Fatalf("%s: %s wrote on unknown or closed c%d", h.where, id, a.Conn)
			}
			if c.legacy {
				h.writeLegacy(c, side, &a.Frame)
				continue
			}
			// Round-trip through the codec so transcripts exercise it too.
			b, err := h.codec.AppendFrame(nil, &a.Frame)
			if err != nil {
				h.t.Fatalf("%s: %s: encode %s: %v", h.where, id, a.Frame.String(), err)
			}
			f, nb, err := h.codec.ParseFrame(b)
			if err != nil || nb != len(b) {
				h.t.Fatalf("%s: %s: decode %s: %v", h.where, id, a.Frame.String(), err)
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

// writeLegacy encodes f in masterless 0.4.1 on side's end of c. A scripted
// peer reads the bytes at once: they are shown, and must parse in the phase
// that peer is in. For a Go peer they travel, to be parsed on delivery.
func (h *harness) writeLegacy(c *tconn, side int, f *wire.Frame) {
	b, err := wire.Legacy{}.AppendFrame(nil, f)
	if err != nil {
		h.t.Fatalf("%s: %s: encode %s in 0.4.1: %v", h.where, c.ends[side].node, f.String(), err)
	}
	if len(b) == 0 {
		return // BYE: 0.4.1 has no close reason, the FIN says it all
	}
	to := c.ends[1-side].node
	if !h.js[to] {
		h.seq++
		p := &c.toward[1-side]
		p.frames = append(p.frames, item{seq: h.seq, raw: b})
		return
	}
	if c.closed[1-side] {
		return // the scripted end hung up: nobody reads
	}
	g, nb, err := wire.Legacy{Phase: c.jsPhase[1-side]}.ParseFrame(b)
	if err != nil || nb != len(b) {
		h.t.Fatalf("%s: 0.4.1 node %s cannot read %q: %v", h.where, to, b, err)
	}
	switch g.Type { // what the scripted end has seen moves its phase on
	case wire.Hello:
		c.jsPhase[1-side] = wire.LegacyPhaseHandshake
	case wire.Welcome:
		c.jsPhase[1-side] = wire.LegacyPhaseEstablished
	}
	fmt.Fprintf(&h.out, "  %s reads %s\n", to, strings.TrimSpace(string(b)))
}

// legacyPhase is how a Go node reads the next 0.4.1 message on conn id: by
// the connection's state, exactly as package link's parse does.
func legacyPhase(n *fsm.Node, id fsm.ConnID) wire.LegacyPhase {
	switch state, _, _ := n.ConnState(id); state {
	case fsm.StateEstablished:
		return wire.LegacyPhaseEstablished
	case fsm.StateJoin, fsm.StateWelcome:
		return wire.LegacyPhaseHandshake
	default:
		return wire.LegacyPhaseHello
	}
}

// dial connects at once to the node listening at addr, or fails. A scripted
// 0.4.1 node takes only a 0.4.1 dial.
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
	// The dialer's source address is its id; the harness knows the
	// protocol at once, unless the acceptor refused the connection.
	h.step(to, fsm.Incoming{Conn: accID, Source: from})
	if _, _, open := h.nodes[to].ConnState(accID); open {
		h.step(to, fsm.Accepted{Conn: accID, Legacy: legacy})
	}
	h.step(from, fsm.Dialed{Dial: d, Conn: fsm.ConnID(num)})
}

func (h *harness) newConn(from string, fromID fsm.ConnID, to string, toID fsm.ConnID, legacy bool) *tconn {
	c := &tconn{num: len(h.conns) + 1, ends: [2]end{{from, fromID}, {to, toID}}, legacy: legacy}
	h.conns = append(h.conns, c)
	return c
}

// jsConn returns connection num and the side scripted node id holds on it,
// failing the command unless id is a scripted node with an open end there.
func (h *harness) jsConn(a *cmdArgs, id string, num uint64) (*tconn, int) {
	a.t.Helper()
	if !h.js[id] {
		a.fatalf("no scripted 0.4.1 node %s", id)
	}
	if num < 1 || num > uint64(len(h.conns)) {
		a.fatalf("needs conn=K of an existing connection, got %d", num)
	}
	c := h.conns[num-1]
	for side, e := range c.ends {
		if e.node == id {
			if c.closed[side] {
				a.fatalf("%s already hung up c%d", id, num)
			}
			return c, side
		}
	}
	a.fatalf("%s does not hold c%d", id, num)
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
	switch {
	case it.raw != nil:
		f, nb, err := wire.Legacy{Phase: legacyPhase(h.nodes[e.node], e.id)}.ParseFrame(it.raw)
		if err != nil || nb != len(it.raw) {
			h.t.Fatalf("%s: %s cannot read 0.4.1 %q on c%d: %v", h.where, e.node, it.raw, best.num, err)
		}
		h.step(e.node, fsm.FrameReceived{Conn: e.id, Frame: f})
	case it.frame == nil:
		best.closed[bestSide] = true
		h.step(e.node, fsm.ConnClosed{Conn: e.id, Err: fmt.Errorf("EOF")})
	default:
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
		fmt.Fprintf(&h.out, "%s: peer %s kept=%v connected=%v session=c%d sess=%d queued=%d\n", id, p.ID, p.Kept, p.Connected, p.SessionConn, p.Sess, p.Queued)
	}
	if d, ok := n.NextDeadline(); ok {
		fmt.Fprintf(&h.out, "%s: next deadline %v\n", id, d)
	}
}

// cmdArgs is one transcript command's arguments, parsed strictly: a missing
// or extra positional argument, a key=value the command does not take, a bad
// number or an unknown frame type fails the test at the command's file:line.
type cmdArgs struct {
	t     testing.TB
	where string // file:line of the command
	cmd   string
	pos   []string
	kv    map[string]string
	keys  []string // the order the keys came in, for error messages
	taken map[string]bool
}

func parseArgs(t testing.TB, where, cmd string, fields []string) *cmdArgs {
	a := &cmdArgs{t: t, where: where, cmd: cmd, kv: map[string]string{}, taken: map[string]bool{}}
	for _, f := range fields {
		if k, v, ok := strings.Cut(f, "="); ok && isKey(k) {
			if _, dup := a.kv[k]; dup {
				a.fatalf("%s given twice", k)
			}
			a.kv[k] = v
			a.keys = append(a.keys, k)
		} else {
			a.pos = append(a.pos, f)
		}
	}
	return a
}

// isKey reports whether k can name an argument: a JSON word such as
// {"q":"a=b"} is positional even though it holds an "=".
func isKey(k string) bool {
	for _, r := range k {
		if !(r == '_' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9') {
			return false
		}
	}
	return k != ""
}

func (a *cmdArgs) fatalf(format string, args ...any) {
	a.t.Helper()
	a.t.Fatalf("%s: %s: %s", a.where, a.cmd, fmt.Sprintf(format, args...))
}

// positional requires between min and max positional arguments (max < 0:
// any number) and returns them.
func (a *cmdArgs) positional(min, max int) []string {
	a.t.Helper()
	if len(a.pos) < min || (max >= 0 && len(a.pos) > max) {
		want := fmt.Sprintf("%d to %d", min, max)
		if max < 0 {
			want = fmt.Sprintf("at least %d", min)
		}
		a.fatalf("takes %s positional arguments, got %q", want, a.pos)
	}
	return a.pos
}

// str returns key's value, or def when absent.
func (a *cmdArgs) str(key, def string) string {
	a.taken[key] = true
	if v, ok := a.kv[key]; ok {
		return v
	}
	return def
}

// num returns key's value as a non-negative integer, or def when absent.
func (a *cmdArgs) num(key string, def uint64) uint64 {
	a.t.Helper()
	v, ok := a.kv[key]
	a.taken[key] = true
	if !ok {
		return def
	}
	return a.parseNum(key, v)
}

func (a *cmdArgs) parseNum(what, v string) uint64 {
	a.t.Helper()
	n, err := strconv.ParseUint(v, 10, 64)
	if err != nil {
		a.fatalf("%s: %q is not a number", what, v)
	}
	return n
}

// done fails on any key=value the command did not read.
func (a *cmdArgs) done() {
	a.t.Helper()
	for _, k := range a.keys {
		if !a.taken[k] {
			a.fatalf("unknown argument %s=%s", k, a.kv[k])
		}
	}
}

// frameType returns the wire type named name (HELLO, JOIN, ...).
func (a *cmdArgs) frameType(name string) wire.Type {
	a.t.Helper()
	for ty := wire.Type(1); ty != 0; ty++ {
		if ty.String() == name {
			return ty
		}
	}
	a.fatalf("unknown frame type %q", name)
	return 0
}

func (h *harness) run(a *cmdArgs) {
	h.t.Helper()
	h.where = a.where
	switch a.cmd {
	case "node": // node ID [inc=N] [queue=N] [maxhandshakes=N] [persource=N] [legacy=0|1] -- creates and starts listening; legacy=1 dials in 0.4.1
		id := a.positional(1, 1)[0]
		inc := a.num("inc", 1)
		q := int(a.num("queue", 0))
		hs := int(a.num("maxhandshakes", 0))
		ps := int(a.num("persource", 0))
		legacy := a.str("legacy", "0")
		a.done()
		if legacy != "0" && legacy != "1" {
			a.fatalf("legacy must be 0 or 1, got %q", legacy)
		}
		if h.nodes[id] != nil || h.js[id] {
			a.fatalf("node %s exists already", id)
		}
		n, err := fsm.New(fsm.Config{ID: id, Incarnation: inc, Seed: 1, QueueMessages: q, MaxHandshakes: hs, MaxHandshakesPerSource: ps, LegacyDial: legacy == "1"})
		if err != nil {
			a.fatalf("%v", err)
		}
		h.nodes[id] = n
		h.step(id, fsm.Listening{Info: addrOf(id)})
	case "crash": // crash ID [silent] -- the node vanishes; peers see EOF unless silent
		p := a.positional(1, 2)
		a.done()
		silent := false
		if len(p) == 2 {
			if p[1] != "silent" {
				a.fatalf("second argument must be silent, got %q", p[1])
			}
			silent = true
		}
		if h.nodes[p[0]] == nil {
			a.fatalf("no node %s", p[0])
		}
		delete(h.nodes, p[0])
		for _, c := range h.conns {
			for side, e := range c.ends {
				if e.node == p[0] && !c.closed[side] {
					c.closed[side] = true
					c.toward[side].frames = nil
					if !silent {
						h.push(c, side, nil)
					}
				}
			}
		}
	case "connect": // connect FROM TO  (TO may be an alias: B#2)
		p := a.positional(2, 2)
		a.done()
		h.req++
		h.step(p[0], fsm.Connect{Req: h.req, Addr: addrOf(p[1])})
	case "send": // send FROM TO PAYLOAD
		p := a.positional(3, 3)
		a.done()
		h.step(p[0], fsm.Send{Peer: p[1], Payload: []byte(p[2])})
	case "keep": // keep FROM TO true|false
		p := a.positional(3, 3)
		a.done()
		keep, err := strconv.ParseBool(p[2])
		if err != nil {
			a.fatalf("keep flag must be true or false, got %q", p[2])
		}
		h.step(p[0], fsm.SetKeep{Peer: p[1], Keep: keep})
	case "disconnect": // disconnect FROM TO
		p := a.positional(2, 2)
		a.done()
		h.step(p[0], fsm.Disconnect{Peer: p[1]})
	case "shutdown": // shutdown ID
		p := a.positional(1, 1)
		a.done()
		h.step(p[0], fsm.Shutdown{})
	case "lose": // lose conn=K to=X -- bytes in flight toward X on K vanish
		a.positional(0, 0)
		num := int(a.num("conn", 0))
		to := a.str("to", "")
		a.done()
		if num < 1 || num > len(h.conns) || to == "" {
			a.fatalf("needs conn=K of an existing connection and to=X")
		}
		found := false
		for _, c := range h.conns {
			for side, e := range c.ends {
				if c.num == num && e.node == to {
					c.toward[side].frames = nil
					found = true
				}
			}
		}
		if !found {
			a.fatalf("c%d has no end at %s", num, to)
		}
	case "deliver": // deliver [all|N] [conn=K] [to=X]
		p := a.positional(0, 1)
		num := int(a.num("conn", 0))
		to := a.str("to", "")
		a.done()
		limit := 1
		if len(p) == 1 {
			if p[0] == "all" {
				limit = 1 << 30
			} else {
				limit = int(a.parseNum("count", p[0]))
			}
		}
		for i := 0; i < limit && h.deliverOne(num, to); i++ {
		}
	case "advance": // advance DURATION -- time passes; every node ticks
		p := a.positional(1, 1)
		a.done()
		d, err := time.ParseDuration(p[0])
		if err != nil || d < 0 {
			a.fatalf("bad duration %q", p[0])
		}
		h.now += d
		for _, id := range h.sortedNodes() {
			h.step(id, fsm.Tick{})
		}
	case "inject": // inject NODE CONN TYPE -- a frame the peer should not send
		p := a.positional(3, 3)
		a.done()
		conn := a.parseNum("conn", p[1])
		h.step(p[0], fsm.FrameReceived{Conn: fsm.ConnID(conn), Frame: wire.Frame{Type: a.frameType(p[2]), Sess: 99}})
	case "js": // js ID -- a masterless 0.4.1 node at tcp://ID whose bytes the transcript writes
		id := a.positional(1, 1)[0]
		a.done()
		if h.nodes[id] != nil || h.js[id] {
			a.fatalf("node %s exists already", id)
		}
		h.js[id] = true
	case "jsdial": // jsdial FROM TO -- scripted FROM dials Go node TO (0.4.1: no preamble)
		p := a.positional(2, 2)
		a.done()
		if !h.js[p[0]] {
			a.fatalf("no scripted 0.4.1 node %s", p[0])
		}
		if h.nodes[p[1]] == nil {
			a.fatalf("no node %s", p[1])
		}
		c := h.newConn(p[0], 0, p[1], fsm.ConnID(len(h.conns)+1), true)
		h.step(p[1], fsm.Accepted{Conn: c.ends[1].id, Legacy: true})
	case "say": // say FROM conn=K JSON -- scripted FROM sends one 0.4.1 line (JSON without spaces)
		p := a.positional(2, 2)
		num := a.num("conn", 0)
		a.done()
		c, side := h.jsConn(a, p[0], num)
		e := c.ends[1-side]
		if h.nodes[e.node] == nil || c.closed[1-side] {
			fmt.Fprintf(&h.out, "  %s has closed c%d: the line falls on the floor\n", e.node, c.num)
			return
		}
		line := []byte(p[1] + "\r\n")
		f, nb, err := wire.Legacy{Phase: legacyPhase(h.nodes[e.node], e.id)}.ParseFrame(line)
		if err != nil || nb != len(line) {
			a.fatalf("%s cannot parse %s: %v", e.node, p[1], err)
		}
		if f.Type == wire.Welcome {
			c.jsPhase[side] = wire.LegacyPhaseEstablished // a confirm sent establishes the sender
		}
		fmt.Fprintf(&h.out, "  %s parses %s\n", e.node, f.String())
		h.step(e.node, fsm.FrameReceived{Conn: e.id, Frame: f})
	case "hangup": // hangup FROM conn=K -- scripted FROM closes its end (FIN)
		p := a.positional(1, 1)
		num := a.num("conn", 0)
		a.done()
		c, side := h.jsConn(a, p[0], num)
		c.closed[side] = true
		if e := c.ends[1-side]; h.nodes[e.node] != nil && !c.closed[1-side] {
			c.closed[1-side] = true
			h.step(e.node, fsm.ConnClosed{Conn: e.id, Err: fmt.Errorf("EOF")})
		}
	case "silent": // silent TO src=S [preamble] -- S opens a connection to Go node TO and never sends a HELLO; with preamble, TO has read a v1 preamble (state hello)
		p := a.positional(1, 2)
		src := a.str("src", "")
		a.done()
		if h.nodes[p[0]] == nil {
			a.fatalf("no node %s", p[0])
		}
		if len(p) == 2 && p[1] != "preamble" {
			a.fatalf("second argument must be preamble, got %q", p[1])
		}
		c := h.newConn("~"+src, 0, p[0], fsm.ConnID(len(h.conns)+1), false)
		h.step(p[0], fsm.Incoming{Conn: c.ends[1].id, Source: src})
		if _, _, open := h.nodes[p[0]].ConnState(c.ends[1].id); open && len(p) == 2 {
			h.step(p[0], fsm.Accepted{Conn: c.ends[1].id})
		}
	case "state": // state ID...
		ids := a.positional(1, -1)
		a.done()
		for _, id := range ids {
			if h.nodes[id] == nil {
				a.fatalf("no node %s", id)
			}
			h.state(id)
		}
	default:
		a.fatalf("unknown command")
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
		h.run(parseArgs(t, fmt.Sprintf("%s:%d", file, cmdAt), fields[0], fields[1:]))
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

// fatalRecorder is a testing.TB whose Fatalf records the message and stops
// the command, so a test can check that the harness refuses a line.
type fatalRecorder struct {
	testing.TB
	msg string
}

type stopped struct{}

func (r *fatalRecorder) Helper() {}

func (r *fatalRecorder) Fatalf(format string, args ...any) {
	r.msg = fmt.Sprintf(format, args...)
	panic(stopped{})
}

// TestTranscriptCommandsParseStrictly: a transcript line with an unknown
// argument, a bad number, an unknown frame type or a missing argument fails
// the test at its file:line instead of running with a default. Each line
// runs after node A and the case's setup lines.
func TestTranscriptCommandsParseStrictly(t *testing.T) {
	// j is a scripted 0.4.1 node that has dialed A (c1).
	jsOnC1 := []string{"js j", "jsdial j A"}
	for _, tc := range []struct {
		setup      []string
		line, want string
	}{
		{nil, "node A bogus=1", "unknown argument bogus=1"},
		{nil, "node A inc=x", `inc: "x" is not a number`},
		{nil, "node A inc=-1", `inc: "-1" is not a number`},
		{nil, "node A queue=1 queue=2", "queue given twice"},
		{nil, "node", "takes 1 to 1 positional arguments"},
		{nil, "node B legacy=yes", `legacy must be 0 or 1, got "yes"`},
		{nil, "node A", "node A exists already"},
		{nil, "inject A 1 NOPE", `unknown frame type "NOPE"`},
		{nil, "inject A one DATA", `conn: "one" is not a number`},
		{nil, "deliver lots", `count: "lots" is not a number`},
		{nil, "deliver all conn=x", `conn: "x" is not a number`},
		{nil, "deliver all too=A", "unknown argument too=A"},
		{nil, "keep A B maybe", `keep flag must be true or false, got "maybe"`},
		{nil, "send A B", "takes 3 to 3 positional arguments"},
		{nil, "advance soon", `bad duration "soon"`},
		{nil, "lose conn=7 to=A", "needs conn=K of an existing connection"},
		{nil, "crash A loudly", "second argument must be silent"},
		{nil, "state Z", "no node Z"},
		{nil, "connect Z A", "no node Z"},
		{nil, "frobnicate A", "unknown command"},
		{nil, "silent Z src=x", "no node Z"},
		{nil, "silent A src=x hello", "second argument must be preamble"},
		{nil, "silent A srcs=x", "unknown argument srcs=x"},
		{nil, "node B persource=x", `persource: "x" is not a number`},
		{nil, "js A", "node A exists already"},
		{[]string{"js j"}, "node j", "node j exists already"},
		{nil, "js j k", "takes 1 to 1 positional arguments"},
		{nil, "jsdial A A", "no scripted 0.4.1 node A"},
		{[]string{"js j"}, "jsdial j Z", "no node Z"},
		{[]string{"js j"}, "jsdial j A legacy=1", "unknown argument legacy=1"},
		{jsOnC1, "say A conn=1 {}", "no scripted 0.4.1 node A"},
		{jsOnC1, "say j {}", "needs conn=K of an existing connection, got 0"},
		{jsOnC1, "say j conn=x {}", `conn: "x" is not a number`},
		{jsOnC1, "say j conn=2 {}", "needs conn=K of an existing connection, got 2"},
		{[]string{"js j", "js k", "jsdial k A"}, "say j conn=1 {}", "j does not hold c1"},
		{jsOnC1, `say j conn=1 {"id": "j"}`, "takes 2 to 2 positional arguments"},
		{jsOnC1, `say j conn=1 {"id":"j"} to=A`, "unknown argument to=A"},
		{jsOnC1, "say j conn=1 nope", "A cannot parse nope"},
		{jsOnC1, `say j conn=1 {"priority":1}`, "the first message must carry an id"},
		{jsOnC1, "hangup j", "needs conn=K of an existing connection, got 0"},
		{jsOnC1, "hangup j conn=1 now", "takes 1 to 1 positional arguments"},
		{append(jsOnC1, "hangup j conn=1"), "hangup j conn=1", "j already hung up c1"},
		{append(jsOnC1, "hangup j conn=1"), `say j conn=1 {"id":"j"}`, "j already hung up c1"},
	} {
		rec := &fatalRecorder{TB: t}
		h := newHarness(rec)
		func() {
			defer func() {
				if r := recover(); r != nil && r != (stopped{}) {
					panic(r)
				}
			}()
			h.run(parseArgs(rec, "x.txt:3", "node", []string{"A"}))
			for _, line := range tc.setup {
				fields := strings.Fields(line)
				h.run(parseArgs(rec, "x.txt:5", fields[0], fields[1:]))
			}
			fields := strings.Fields(tc.line)
			h.run(parseArgs(rec, "x.txt:7", fields[0], fields[1:]))
		}()
		if !strings.HasPrefix(rec.msg, "x.txt:7: ") || !strings.Contains(rec.msg, tc.want) {
			t.Errorf("%q: got failure %q, want one at x.txt:7 containing %q", tc.line, rec.msg, tc.want)
		}
	}
}

// TestTranscriptJSONWordsArePositional: a JSON word holding an "=" is a
// positional argument, not a key=value, so say can send it.
func TestTranscriptJSONWordsArePositional(t *testing.T) {
	a := parseArgs(t, "x.txt:1", "say", []string{"j", "conn=1", `{"q":"a=b"}`})
	if got := a.positional(2, 2); got[1] != `{"q":"a=b"}` {
		t.Errorf("positional = %q, want the JSON word second", got)
	}
	if got := a.num("conn", 0); got != 1 {
		t.Errorf("conn = %d, want 1", got)
	}
	a.done()
}
