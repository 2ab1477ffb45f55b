// Command benchratio runs the root package's benchmarks in interleaved
// rounds and prints each masterless benchmark's ratio to its bare-TCP
// baseline, the medians with their ranges, the load average of every round,
// and issue 10's targets, met or not. With -against it also builds a
// revision and runs it in the same rounds (A B A B ...), so that the two
// versions are compared on the same machine at the same time:
//
//	go run ./internal/benchratio                        # 5 rounds of this tree
//	go run ./internal/benchratio -against HEAD~3 -rounds 5
//	go run ./internal/benchratio -bench 'OneWay|Echo' -benchtime 2s
//	go run ./internal/benchratio -cpu -bench 'Echo' -against HEAD
//
// With -cpu each round also runs every masterless benchmark and its
// baseline alone, in a process of its own, at the count of operations this
// tree's first round ran, and once more at one operation; the difference of
// the two processes' CPU (user + system) over the difference of their
// counts is the CPU an operation costs, setup left out. On a shared machine
// it varies far less from round to round than throughput does (README,
// "How much five rounds can see").
//
// A baseline is the benchmark of the same name with "masterless" replaced
// by "bare" (PingPong/masterless-tls against PingPong/bare-tls). The figure
// compared is the benchmark's own rate metric (msgs/s, cycles/s), or
// operations per second when it has none. Ratios are taken per round, and
// their median reported: on a shared machine the rounds' absolute figures
// vary far more than their ratios.
package main

import (
	"bufio"
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/masterless-go/masterless/internal/measure"
)

func main() {
	rounds := flag.Int("rounds", 5, "interleaved rounds")
	bench := flag.String("bench", ".", "benchmarks to run (-test.bench)")
	benchtime := flag.String("benchtime", "1s", "time or count per benchmark (-test.benchtime)")
	against := flag.String("against", "", "a git revision to build and run in the same rounds")
	pkg := flag.String("pkg", ".", "the package whose benchmarks run")
	flag.BoolVar(&verbose, "v", false, "print every run's benchmark lines")
	flag.BoolVar(&cpuMode, "cpu", false, "also measure each benchmark's CPU per operation at a fixed count")
	flag.Parse()
	if err := run(os.Stdout, *rounds, *bench, *benchtime, *against, *pkg); err != nil {
		fmt.Fprintln(os.Stderr, "benchratio:", err)
		os.Exit(1)
	}
}

// verbose: print every run's benchmark lines (-v). cpuMode: measure CPU
// per operation too (-cpu).
var verbose, cpuMode bool

func run(w io.Writer, rounds int, bench, benchtime, against, pkg string) error {
	if rounds < 1 {
		return errors.New("-rounds must be at least 1")
	}
	dir, err := os.MkdirTemp("", "benchratio")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	bins := []binary{{name: "this", path: filepath.Join(dir, "this.test")}}
	if err := build(".", pkg, bins[0].path); err != nil {
		return err
	}
	if against != "" {
		tree := filepath.Join(dir, "against")
		if out, err := exec.Command("git", "worktree", "add", "--detach", tree, against).CombinedOutput(); err != nil {
			return fmt.Errorf("git worktree add %s: %v\n%s", against, err, out)
		}
		defer exec.Command("git", "worktree", "remove", "--force", tree).Run()
		bins = append(bins, binary{name: against, path: filepath.Join(dir, "against.test")})
		if err := build(tree, pkg, bins[1].path); err != nil {
			return err
		}
	}
	// all holds the throughput rounds, cpus the CPU rounds (-cpu), run at
	// the counts of operations this tree's first round ran (counts).
	var all, cpus []round
	var counts map[string]int
	for r := 1; r <= rounds; r++ {
		// This tree first in odd rounds, the revision against first in
		// even ones, so that neither always runs first.
		order := bins
		if r%2 == 0 && len(bins) == 2 {
			order = []binary{bins[1], bins[0]}
		}
		for _, b := range order {
			load := measure.LoadAverage()
			fmt.Fprintf(w, "round %d: %s (load average %s)\n", r, b.name, load)
			out, err := exec.Command(b.path, "-test.run", "^$", "-test.bench", bench, "-test.benchtime", benchtime).CombinedOutput()
			if err != nil {
				return fmt.Errorf("%s: %v\n%s", b.name, err, out)
			}
			if verbose {
				for _, line := range strings.Split(string(out), "\n") {
					if strings.HasPrefix(line, "Benchmark") {
						fmt.Fprintln(w, "  "+line)
					}
				}
			}
			res, ran, err := parse(bytes.NewReader(out))
			if err != nil {
				return fmt.Errorf("%s: %v", b.name, err)
			}
			if r == 1 && b.name == bins[0].name {
				counts = ran
			}
			all = append(all, round{n: r, bin: b.name, load: load, rates: res})
		}
		if cpuMode {
			for _, b := range order {
				c, err := cpuRound(b, counts)
				if err != nil {
					return err
				}
				cpus = append(cpus, round{n: r, bin: b.name, load: measure.LoadAverage(), rates: c})
			}
		}
	}
	fmt.Fprintln(w)
	report(w, all, bins[0].name, against)
	if cpuMode {
		fmt.Fprintln(w, "\nCPU per operation (user + system), each benchmark alone at a fixed count; ratio: masterless's CPU over bare's (lower is better):")
		fmt.Fprintln(w)
		reportCPU(w, cpus, bins[0].name, against)
	}
	return nil
}

// cpuRound runs every masterless benchmark of counts and its baseline
// alone with b, and returns each one's CPU per operation in nanoseconds.
func cpuRound(b binary, counts map[string]int) (map[string]float64, error) {
	out := map[string]float64{}
	for _, name := range sortedNames(counts) {
		base := baseline(name)
		if base == "" || counts[base] == 0 {
			continue
		}
		for _, leaf := range []string{name, base} {
			n := max(counts[name], 2) // one count for both: the same work
			many, err := cpuOf(b.path, leaf, n)
			if err != nil {
				return nil, fmt.Errorf("%s: %s: %v", b.name, leaf, err)
			}
			one, err := cpuOf(b.path, leaf, 1)
			if err != nil {
				return nil, fmt.Errorf("%s: %s: %v", b.name, leaf, err)
			}
			out[leaf] = max(many-one, 0) / float64(n-1)
		}
	}
	return out, nil
}

// cpuOf runs benchmark leaf (a name parse returns) alone for n operations
// and returns the process's CPU in nanoseconds.
func cpuOf(path, leaf string, n int) (float64, error) {
	cmd := exec.Command(path, "-test.run", "^$", "-test.bench", leafPattern(leaf), "-test.benchtime", fmt.Sprintf("%dx", n))
	if out, err := cmd.CombinedOutput(); err != nil {
		return 0, fmt.Errorf("%v\n%s", err, out)
	} else if !bytes.Contains(out, []byte("Benchmark")) {
		return 0, fmt.Errorf("no benchmark ran:\n%s", out)
	}
	st := cmd.ProcessState
	return float64((st.UserTime() + st.SystemTime()).Nanoseconds()), nil
}

// leafPattern returns the -test.bench pattern that selects leaf alone:
// OneWay/masterless-tls is ^BenchmarkOneWay$/^masterless-tls$.
func leafPattern(leaf string) string {
	parts := strings.Split("Benchmark"+leaf, "/")
	for i, p := range parts {
		parts[i] = "^" + regexp.QuoteMeta(p) + "$"
	}
	return strings.Join(parts, "/")
}

// binary is a test binary to run: this tree's or the revision's.
type binary struct{ name, path string }

// build compiles pkg's tests in dir into out.
func build(dir, pkg, out string) error {
	cmd := exec.Command("go", "test", "-c", "-o", out, pkg)
	cmd.Dir = dir
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go test -c in %s: %v\n%s", dir, err, b)
	}
	return nil
}

// round is one binary's run in one round: each benchmark's rate.
type round struct {
	n     int
	bin   string
	load  string
	rates map[string]float64
}

// parse reads go test -bench output and returns each benchmark's rate, by
// name without the -GOMAXPROCS suffix: its first metric ending in "/s",
// else operations per second from ns/op; and how many operations it ran.
func parse(r io.Reader) (map[string]float64, map[string]int, error) {
	rates := map[string]float64{}
	counts := map[string]int{}
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 4 || !strings.HasPrefix(f[0], "Benchmark") {
			continue
		}
		name := strings.TrimPrefix(f[0], "Benchmark")
		if i := strings.LastIndexByte(name, '-'); i > 0 {
			if _, err := strconv.Atoi(name[i+1:]); err == nil {
				name = name[:i] // the -GOMAXPROCS suffix
			}
		}
		rate := 0.0
		for i := 2; i+1 < len(f); i += 2 {
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				return nil, nil, fmt.Errorf("%s: value %q: %v", name, f[i], err)
			}
			if strings.HasSuffix(f[i+1], "/s") {
				rate = v
				break
			}
			if f[i+1] == "ns/op" && v > 0 && rate == 0 {
				rate = 1e9 / v
			}
		}
		if rate > 0 {
			rates[name] = rate
			if k, err := strconv.Atoi(f[1]); err == nil {
				counts[name] = k
			}
		}
	}
	return rates, counts, sc.Err()
}

// sortedNames returns counts' names in order.
func sortedNames(counts map[string]int) []string {
	return slices.Sorted(maps.Keys(counts))
}
