// Command tracegen converts an NDJSON trace (spec/TRACE.md) into TraceData.tla,
// the constants TraceMasterless.tla replays against the model.
//
//	go run ./tla/tracegen -in trace.ndjson -out DIR/TraceData.tla
//
// With -legacy the trace is one Go node's, whose connections all speak
// masterless 0.4.1 ("legacy": true), and the module is the one
// TraceGoLegacy.tla replays against GoLegacy.tla (legacy.go).
//
// Node ids become 1..N in byte-string order (so the greater id still leads),
// each node's incarnations become 1, 2, ... in increasing order (a crash line
// takes the next one, as the model restarts at once), and connection ids
// become 1..K in order of first appearance.
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"sort"
	"strings"
)

type frame struct {
	Type   string `json:"type"`
	ID     string `json:"id"`
	Inc    uint64 `json:"inc"`
	Sess   uint64 `json:"sess"`
	Closed uint64 `json:"closed"`
	Keep   bool   `json:"keep"`
	Code   int    `json:"code"`
}

type connView struct {
	Conn  uint64 `json:"conn"`
	Peer  string `json:"peer"`
	PInc  uint64 `json:"pinc"`
	State string `json:"state"`
	Sess  uint64 `json:"sess"`
	// Legacy: the connection speaks masterless 0.4.1 (only with -legacy).
	Legacy bool `json:"legacy"`
}

type peerView struct {
	Peer    string `json:"peer"`
	Keep    bool   `json:"keep"`
	Session uint64 `json:"session"`
}

type line struct {
	Step   int64      `json:"step"`
	T      int64      `json:"t"`
	Node   string     `json:"node"`
	Inc    uint64     `json:"inc"`
	Kind   string     `json:"kind"`
	Conn   uint64     `json:"conn"`
	Dialer bool       `json:"dialer"`
	Reset  bool       `json:"reset"`
	Peer   string     `json:"peer"`
	Frame  *frame     `json:"frame"`
	Keep   bool       `json:"keep"`
	Conns  []connView `json:"conns"`
	Peers  []peerView `json:"peers"`
}

var kinds = map[string]bool{"dial": true, "dialed": true, "dial-failed": true, "accept": true,
	"frame": true, "closed": true, "tick": true, "connect": true, "disconnect": true,
	"keep": true, "crash": true, "restart": true}

var states = map[string]string{"hello": "hello", "join": "join", "welcome": "welcome", "established": "est"}

func main() {
	in := flag.String("in", "", "NDJSON trace")
	out := flag.String("out", "TraceData.tla", "module to write")
	legacy := flag.Bool("legacy", false, "one Go node's trace of 0.4.1 connections, for TraceGoLegacy.tla")
	flag.Parse()
	if err := run(*in, *out, *legacy); err != nil {
		fmt.Fprintln(os.Stderr, "tracegen:", err)
		os.Exit(2)
	}
}

func run(in, out string, legacy bool) error {
	f, err := os.Open(in)
	if err != nil {
		return err
	}
	defer f.Close()
	var lines []line
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for n := 1; sc.Scan(); n++ {
		if strings.TrimSpace(sc.Text()) == "" {
			continue
		}
		var l line
		dec := json.NewDecoder(strings.NewReader(sc.Text()))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&l); err != nil {
			return fmt.Errorf("%s:%d: %v", in, n, err)
		}
		if !kinds[l.Kind] {
			return fmt.Errorf("%s:%d: unknown kind %q", in, n, l.Kind)
		}
		if l.Reset && l.Kind != "closed" {
			return fmt.Errorf("%s:%d: reset on a %q line", in, n, l.Kind)
		}
		if l.Reset {
			l.Kind = "reset" // the connection failed at this end
		}
		if l.Node == "" {
			return fmt.Errorf("%s:%d: no node", in, n)
		}
		if (l.Frame != nil) != (l.Kind == "frame") {
			return fmt.Errorf("%s:%d: a frame belongs on a frame line, and every frame line has one", in, n)
		}
		if legacy && (l.Kind == "crash" || l.Kind == "restart") {
			return fmt.Errorf("%s:%d: %s: the legacy model has no restart of the Go node", in, n, l.Kind)
		}
		if l.Frame != nil && l.Frame.Type == "HELLO" && (l.Frame.ID == "" || l.Frame.Inc == 0) && !legacy {
			return fmt.Errorf("%s:%d: HELLO frame without the sender's id and incarnation", in, n)
		}
		for _, c := range l.Conns {
			if c.Legacy != legacy {
				return fmt.Errorf("%s:%d: conn %d: legacy %v in a trace read with -legacy=%v", in, n, c.Conn, c.Legacy, legacy)
			}
			if legacy {
				if c.State != "hello" && (c.Peer == "" || c.PInc != 0) {
					return fmt.Errorf("%s:%d: 0.4.1 conn %d in state %s without its peer, or with an incarnation", in, n, c.Conn, c.State)
				}
				continue
			}
			if c.State != "hello" && (c.Peer == "" || c.PInc == 0) {
				return fmt.Errorf("%s:%d: conn %d in state %s without its peer and the peer's incarnation (pinc)", in, n, c.Conn, c.State)
			}
		}
		lines = append(lines, l)
	}
	if err := sc.Err(); err != nil {
		return err
	}
	if len(lines) == 0 {
		return fmt.Errorf("%s: empty trace", in)
	}
	if legacy {
		return writeLegacy(in, out, lines)
	}

	// Node ids, in byte-string order.
	idset := map[string]bool{}
	for _, l := range lines {
		idset[l.Node] = true
		if l.Peer != "" {
			idset[l.Peer] = true
		}
		if l.Frame != nil && l.Frame.ID != "" {
			idset[l.Frame.ID] = true
		}
		for _, c := range l.Conns {
			if c.Peer != "" {
				idset[c.Peer] = true
			}
		}
		for _, p := range l.Peers {
			idset[p.Peer] = true
		}
	}
	var ids []string
	for id := range idset {
		ids = append(ids, id)
	}
	sort.Strings(ids) // Go compares strings bytewise
	nodeNum := map[string]int{"": 0}
	for i, id := range ids {
		nodeNum[id] = i + 1
	}

	// Incarnations per node: rank among the node's values; a crash line's
	// incarnation is the next rank (the model restarts at once).
	incs := map[string][]uint64{}
	for _, l := range lines {
		incs[l.Node] = append(incs[l.Node], l.Inc)
	}
	incRank := func(node string, v uint64) int {
		seen := map[uint64]bool{}
		var vs []uint64
		for _, x := range incs[node] {
			if !seen[x] {
				seen[x] = true
				vs = append(vs, x)
			}
		}
		sort.Slice(vs, func(i, j int) bool { return vs[i] < vs[j] })
		for i, x := range vs {
			if x == v {
				return i + 1
			}
		}
		return 0
	}

	connNum := map[uint64]int{0: 0}
	cn := func(c uint64) int {
		if _, ok := connNum[c]; !ok {
			connNum[c] = len(connNum)
		}
		return connNum[c]
	}

	var b strings.Builder
	fmt.Fprintf(&b, "---- MODULE TraceData ----\n\\* Generated by tla/tracegen from %s. Do not edit.\nEXTENDS Integers, Sequences, TLC\n", strings.ReplaceAll(in, "\n", " "))
	fmt.Fprintf(&b, "\\* nodes: %s\n", strings.Join(ids, ", "))
	fmt.Fprintf(&b, "TraceNodes == 1..%d\n", len(ids))
	b.WriteString("Trace == <<\n")
	for i, l := range lines {
		inc := incRank(l.Node, l.Inc)
		if l.Kind == "crash" {
			inc++
		}
		end := "a"
		if l.Dialer {
			end = "d"
		}
		// The frame received: type, x (HELLO: the sender's incarnation,
		// JOIN: closed, WELCOME: sess) and k (keep), as the model's
		// Msg(t, x, k). A "closed" line receives the model's BYE (BYE+FIN).
		ftype, fx, fk := "", 0, false
		if l.Kind == "closed" {
			ftype = "BYE"
		}
		if f := l.Frame; f != nil {
			ftype, fk = f.Type, f.Keep
			switch f.Type {
			case "HELLO":
				if fx = incRank(f.ID, f.Inc); fx == 0 {
					return fmt.Errorf("step %d: HELLO from %s with incarnation %d, which no line of %s shows", l.Step, f.ID, f.Inc, f.ID)
				}
			case "JOIN":
				fx = int(f.Closed)
			case "WELCOME":
				fx = int(f.Sess)
			case "KEEP":
			case "PING", "DATA":
				l.Kind = "noop" // not modelled: state must not change
			case "BYE":
				fk = false // the model's BYE carries nothing
			default:
				return fmt.Errorf("step %d: unknown frame type %q", l.Step, f.Type)
			}
		}
		var cs []string
		for _, c := range l.Conns {
			st, ok := states[c.State]
			if !ok {
				return fmt.Errorf("step %d: unknown connection state %q", l.Step, c.State)
			}
			p, pinc := nodeNum[c.Peer], 0
			if st == "hello" {
				p = 0 // the peer is known from its HELLO on
			} else if pinc = incRank(c.Peer, c.PInc); pinc == 0 {
				return fmt.Errorf("step %d: conn %d: incarnation %d of %s, which no line of %s shows", l.Step, c.Conn, c.PInc, c.Peer, c.Peer)
			}
			cs = append(cs, fmt.Sprintf("[c |-> %d, p |-> %d, pinc |-> %d, st |-> %q, sess |-> %d]", cn(c.Conn), p, pinc, st, c.Sess))
		}
		var ks, ss []string
		for _, p := range l.Peers {
			ks = append(ks, fmt.Sprintf("%d :> %s", nodeNum[p.Peer], tlaBool(p.Keep)))
			ss = append(ss, fmt.Sprintf("%d :> %d", nodeNum[p.Peer], cn(p.Session)))
		}
		sep := ","
		if i == len(lines)-1 {
			sep = ""
		}
		fmt.Fprintf(&b, "  [step |-> %d, node |-> %d, inc |-> %d, kind |-> %q, conn |-> %d, end |-> %q, peer |-> %d, keepTo |-> %s,\n   ftype |-> %q, fx |-> %d, fk |-> %s,\n   conns |-> {%s},\n   keep |-> %s, ses |-> %s]%s\n",
			l.Step, nodeNum[l.Node], inc, l.Kind, cn(l.Conn), end, nodeNum[l.Peer], tlaBool(l.Keep), ftype, fx, tlaBool(fk),
			strings.Join(cs, ", "), fn(ks), fn(ss), sep)
	}
	b.WriteString(">>\n")
	fmt.Fprintf(&b, "TraceMaxConns == %d\n====\n", max(1, len(connNum)-1))
	return os.WriteFile(out, []byte(b.String()), 0o644)
}

func tlaBool(v bool) string {
	if v {
		return "TRUE"
	}
	return "FALSE"
}

func fn(parts []string) string {
	if len(parts) == 0 {
		return "[x \\in {} |-> 0]"
	}
	return "(" + strings.Join(parts, " @@ ") + ")"
}
