package spec_test

import (
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// mirror says, for each invariant of package spec, which property TLC
// checks for it in tla/ (and the reverse), or why one side has none. It is
// the one table that ties the two definitions of correct together;
// TestSpecMirrorsTLA fails when either side gains or loses an invariant
// that the table does not account for.
var mirror = []struct {
	spec, tla string
	why       string // when one side is empty
}{
	{"NoSelfConnection", "NoSelf", ""},
	{"AtMostOneSession", "AtMostOne", ""},
	{"BothEndsAgree", "Agreement", ""},
	{"CheckQuiescent", "QuiescentAgreement", ""},
	{"CheckQuiescent", "EventuallyConverged", ""}, // the liveness form: quiescence is reached
	{"EndsMatchNetwork", "", "by construction in the model: an end is a slot of the network (NodeOf, PeerOf)"},
	{"HandshakeCount", "", "the model keeps no handshake counter; it is fsm's own bookkeeping"},
	{"CheckDeliveries", "", "the model has no DATA; deliveries are checked by the simulator"},
	{"NoImpersonation", "", "the model has no adversary and no authentication: the simulator's adversary sweep checks it (PROTOCOL.md 7.1)"},
	{"NoEviction", "", "the model has no adversary and no authentication: the simulator's adversary sweep checks it (PROTOCOL.md 7.1)"},
	{"CheckLoadProgress", "", "none: steady-under-load is about time and bounded buffers (socket buffers, the delivery queue, a callback that replies); Reliable.tla has no clock and unbounded channels. The simulator's load sweep (TestSweepLoad) and the 20 s echo storms over TCP check it"},
	{"CheckPairConns", "", "none: a bound on TCP connections opened per pair, which the model does not count; the simulator's mesh sweeps (sim/meshscale_test.go) check it, PROTOCOL.md 5.1"},
	// The model flags a frame a state does not allow as a ghost; fsm closes the
	// connection with BYE protocol error (fsm/table.go), which the simulator
	// holds to the same rule on every BYE between honest nodes.
	{"NoProtocolErrorBetweenHonest", "NoProtocolError", ""},
	// GoLegacy.tla: a Go node's rules for 0.4.1 connections (fsm/legacy.go),
	// the 0.4.1 nodes as environment. AtMostOne, Agreement, NoProtocolError
	// and QuiescentAgreement there are the rows above, with a 0.4.1 node as
	// the other end; GoAtMostOne is AtMostOne at the Go node only.
	{"AtMostOneSession", "GoAtMostOne", ""},
	{"", "TraceNotReplayed", "not a property: trace validation of 0.4.1 connections (TraceGoLegacy.tla) accepts a trace when TLC finds it violated, i.e. a behaviour of the model replays every line"},
	{"", "RestartImmediate", "a timing guarantee: the simulator's scenarios and TestRestartedPeerConnectsAtOnce check it"},
	// Discovery.tla: discovery's leave and announce rules (spec/PROTOCOL.md, 8).
	{"", "NoStaleSession", "discovery: fsm closes a session with an older incarnation as soon as a newer one is learned (fsm/discovery.go applyMember); its unit tests check it, and the simulator's safety invariants hold in the discovery sweeps"},
	{"", "LeftStaysLeft", "discovery: a rule of fsm's member table (learn), checked by its unit tests; the simulator has no member-table invariant"},
	{"", "DepartedForgotten", "discovery: liveness of the member table; the TCP test TestDiscoveryLeaveIsNotRedialed and fsm's unit tests check that a left or forgotten member is not dialed"},
	{"", "Adopted", "discovery: the simulator's discovery sweeps check the full mesh after faults (sim/discovery_test.go fullMesh, with CheckQuiescent), and TestDiscoveryCrashRestartReplacesStaleSessions over TCP"},
	// Reliable.tla: reliable sessions (issue 9), modelled ahead of fsm.
	{"", "ExactlyOnceInOrder", "reliable sessions: the simulator's DeliveryChecker checks never twice and in order on DATA"},
	{"", "NoGap", "reliable sessions: a gap closes the connection in fsm; the simulator's DeliveryChecker sees any reordering"},
	{"", "NoneVanishes", "reliable sessions: checked by the simulator where fsm implements them"},
	{"", "EventuallyDelivered", "reliable sessions: the liveness form of NoneVanishes"},
	{"", "ReportedOnlyIfReceiverDied", "reliable sessions: what a Lost report means; the TCP restart test checks it"},
	{"", "NeverBoth", "a documented fact, expected to fail (rel-fact-both): a message can be delivered and reported lost"},
	{"", `\A n \in Nodes : ack[n] <= snt[n]`, "a type-level bound of the model's counters"},
	{"", "snt[n] <= nxt[n]", "a type-level bound of the model's counters"},
}

// aggregates are the spec functions that only join invariants.
var aggregates = []string{"CheckSafety", "CheckLocal", "CheckAdversary"}

// specInvariants returns the invariants of package spec in the Go files
// srcs (name -> source): exported functions returning only an error, and,
// for each aggregate, the functions it calls.
func specInvariants(srcs map[string]string) (invs []string, calls map[string][]string, err error) {
	fset := token.NewFileSet()
	calls = map[string][]string{}
	for name, src := range srcs {
		f, err := parser.ParseFile(fset, name, src, 0)
		if err != nil {
			return nil, nil, err
		}
		for _, d := range f.Decls {
			fd, ok := d.(*ast.FuncDecl)
			if !ok || fd.Recv != nil || !fd.Name.IsExported() || fd.Type.Results == nil || len(fd.Type.Results.List) != 1 {
				continue
			}
			if id, ok := fd.Type.Results.List[0].Type.(*ast.Ident); !ok || id.Name != "error" {
				continue
			}
			if slices.Contains(aggregates, fd.Name.Name) {
				ast.Inspect(fd.Body, func(n ast.Node) bool {
					if c, ok := n.(*ast.CallExpr); ok {
						if id, ok := c.Fun.(*ast.Ident); ok {
							calls[fd.Name.Name] = append(calls[fd.Name.Name], id.Name)
						}
					}
					return true
				})
				continue
			}
			invs = append(invs, fd.Name.Name)
		}
	}
	return invs, calls, nil
}

var cfgLine = regexp.MustCompile(`^(INVARIANTS?|PROPERTY|PROPERTIES)\b(.*)$`)

// tlaProperties returns the invariants and properties TLC is told to check
// by the configurations cfgs, with a conjunction defined in modules (such
// as TraceSafety) replaced by its conjuncts.
func tlaProperties(cfgs, modules []string) []string {
	var names []string
	for _, c := range cfgs {
		lines := strings.Split(c, "\n")
		for i := 0; i < len(lines); i++ {
			m := cfgLine.FindStringSubmatch(strings.TrimSpace(lines[i]))
			if m == nil {
				continue
			}
			names = append(names, strings.Fields(m[2])...)
			for i+1 < len(lines) && strings.HasPrefix(lines[i+1], " ") && strings.TrimSpace(lines[i+1]) != "" {
				i++
				names = append(names, strings.Fields(lines[i])...)
			}
		}
	}
	var out []string
	for _, n := range names {
		def := regexp.MustCompile(`(?m)^` + n + ` ==(.*)$`)
		expanded := false
		for _, mod := range modules {
			if m := def.FindStringSubmatch(mod); m != nil && strings.Contains(m[1], `/\`) {
				for _, part := range strings.Split(m[1], `/\`) {
					out = append(out, strings.TrimSpace(part))
				}
				expanded = true
			}
		}
		if !expanded {
			out = append(out, n)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// mirrorErrors checks the table against both sides.
func mirrorErrors(specSrcs map[string]string, cfgs, modules []string) error {
	invs, calls, err := specInvariants(specSrcs)
	if err != nil {
		return err
	}
	props := tlaProperties(cfgs, modules)
	var errs []error
	inTable := func(side func(int) string, name string) bool {
		for i := range mirror {
			if side(i) == name {
				return true
			}
		}
		return false
	}
	specOf := func(i int) string { return mirror[i].spec }
	tlaOf := func(i int) string { return mirror[i].tla }
	for _, n := range invs {
		if !inTable(specOf, n) {
			errs = append(errs, fmt.Errorf("spec invariant %s has no row in the mirror table: name the TLA+ property that mirrors it, or say why none does", n))
		}
	}
	for _, p := range props {
		if !inTable(tlaOf, p) {
			errs = append(errs, fmt.Errorf("TLA+ property %s has no row in the mirror table: name the spec invariant that mirrors it, or say why none does", p))
		}
	}
	for _, r := range mirror {
		if r.spec != "" && !slices.Contains(invs, r.spec) {
			errs = append(errs, fmt.Errorf("mirror table names spec invariant %s, which package spec does not have", r.spec))
		}
		if r.tla != "" && !slices.Contains(props, r.tla) {
			errs = append(errs, fmt.Errorf("mirror table names TLA+ property %s, which no configuration checks", r.tla))
		}
		if (r.spec == "" || r.tla == "") && r.why == "" {
			errs = append(errs, fmt.Errorf("mirror row %q/%q has one side empty and no reason", r.spec, r.tla))
		}
	}
	for agg, called := range calls {
		for _, c := range called {
			if c != "Join" && !slices.Contains(invs, c) {
				errs = append(errs, fmt.Errorf("%s calls %s, which is not an invariant of package spec", agg, c))
			}
		}
	}
	return errors.Join(errs...)
}

// sources reads the mirror's inputs from the repository.
func sources(t *testing.T) (map[string]string, []string, []string) {
	t.Helper()
	read := func(pattern string) map[string]string {
		files, err := filepath.Glob(pattern)
		if err != nil || len(files) == 0 {
			t.Fatalf("no files match %s: %v", pattern, err)
		}
		out := map[string]string{}
		for _, f := range files {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			out[f] = string(b)
		}
		return out
	}
	specSrcs := read("*.go")
	for f := range specSrcs {
		if strings.HasSuffix(f, "_test.go") {
			delete(specSrcs, f)
		}
	}
	var cfgs, modules []string
	for _, pat := range []string{"../tla/cfg/*.cfg", "../tla/neg/*.cfg", "../tla/*.cfg"} {
		for _, src := range read(pat) {
			cfgs = append(cfgs, src)
		}
	}
	for _, src := range read("../tla/*.tla") {
		modules = append(modules, src)
	}
	return specSrcs, cfgs, modules
}

func TestSpecMirrorsTLA(t *testing.T) {
	specSrcs, cfgs, modules := sources(t)
	if err := mirrorErrors(specSrcs, cfgs, modules); err != nil {
		t.Fatal(err)
	}
}

// TestSpecMirrorNegativeControls: modified copies of the inputs, one side
// gaining or losing an invariant, must fail the mirror check.
func TestSpecMirrorNegativeControls(t *testing.T) {
	specSrcs, cfgs, modules := sources(t)
	replaceAll := func(in []string, old, new string) []string {
		out := slices.Clone(in)
		for i := range out {
			out[i] = strings.ReplaceAll(out[i], old, new)
		}
		return out
	}
	// TLA+ loses NoSelf from every configuration and from TraceSafety.
	noSelf := replaceAll(replaceAll(cfgs, " NoSelf", ""), " NoSelf ", " ")
	err := mirrorErrors(specSrcs, noSelf, replaceAll(modules, `/\ NoSelf `, ""))
	if err == nil || !strings.Contains(err.Error(), "TLA+ property NoSelf, which no configuration checks") {
		t.Fatalf("TLA+ losing NoSelf was not caught: %v", err)
	}
	// TLA+ gains a property the table does not know.
	err = mirrorErrors(specSrcs, append(slices.Clone(cfgs), "INVARIANTS NoOrphans\n"), modules)
	if err == nil || !strings.Contains(err.Error(), "TLA+ property NoOrphans has no row") {
		t.Fatalf("a new TLA+ property was not caught: %v", err)
	}
	// spec gains an invariant the table does not know.
	more := map[string]string{"extra.go": "package spec\n\n// NoOrphans is new.\nfunc NoOrphans(s *Snapshot) error { return nil }\n"}
	for k, v := range specSrcs {
		more[k] = v
	}
	err = mirrorErrors(more, cfgs, modules)
	if err == nil || !strings.Contains(err.Error(), "spec invariant NoOrphans has no row") {
		t.Fatalf("a new spec invariant was not caught: %v", err)
	}
	// spec loses BothEndsAgree.
	fewer := map[string]string{}
	for k, v := range specSrcs {
		fewer[k] = strings.ReplaceAll(v, "func BothEndsAgree(", "func bothEndsAgree(")
	}
	err = mirrorErrors(fewer, cfgs, modules)
	if err == nil || !strings.Contains(err.Error(), "names spec invariant BothEndsAgree, which package spec does not have") {
		t.Fatalf("spec losing BothEndsAgree was not caught: %v", err)
	}
}
