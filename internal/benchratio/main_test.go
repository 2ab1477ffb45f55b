package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/masterless-go/masterless/internal/measure"
)

const sample = `goos: linux
BenchmarkPingPong/masterless-2         	   60000	     33868 ns/op	     29526 msgs/s	      97 B/op	       2 allocs/op
BenchmarkPingPong/bare-2               	  100000	     20000 ns/op	     50000 msgs/s	      96 B/op	       2 allocs/op
BenchmarkOneWay/masterless-tls-2       	 3000000	       200.0 ns/op	   5000000 msgs/s	      44 B/op	       0 allocs/op
BenchmarkOneWay/bare-tls-2             	 3000000	       100.0 ns/op	  10000000 msgs/s	      51 B/op	       0 allocs/op
BenchmarkTick-2                        	 1000000	      1000 ns/op
BenchmarkChurn/masterless-2            	   10000	    250000 ns/op	      4000 cycles/s
PASS
`

func TestParse(t *testing.T) {
	got, counts, err := parse(strings.NewReader(sample))
	if err != nil {
		t.Fatal(err)
	}
	if counts["PingPong/masterless"] != 60000 || counts["Tick"] != 1000000 {
		t.Errorf("counts %v, want PingPong/masterless 60000 and Tick 1000000", counts)
	}
	want := map[string]float64{
		"PingPong/masterless": 29526, "PingPong/bare": 50000,
		"OneWay/masterless-tls": 5e6, "OneWay/bare-tls": 1e7,
		"Tick":             1e6, // no rate metric: operations per second from ns/op
		"Churn/masterless": 4000,
	}
	if len(got) != len(want) {
		t.Fatalf("parsed %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s: %v, want %v", k, got[k], v)
		}
	}
}

// Ratios are per round, and a target is met only when the median ratio
// reaches it; a masterless benchmark without its baseline in a round is
// left out of that round.
func TestSummaryAndVerdict(t *testing.T) {
	all := []round{
		{n: 1, bin: "this", load: "1.0", rates: map[string]float64{"PingPong/masterless": 90, "PingPong/bare": 100, "Churn/masterless": 10}},
		{n: 1, bin: "old", load: "1.1", rates: map[string]float64{"PingPong/masterless": 45, "PingPong/bare": 100}},
		{n: 2, bin: "this", load: "1.2", rates: map[string]float64{"PingPong/masterless": 80, "PingPong/bare": 100}},
		{n: 2, bin: "old", load: "1.3", rates: map[string]float64{"PingPong/masterless": 40, "PingPong/bare": 100}},
		{n: 3, bin: "this", load: "1.4", rates: map[string]float64{"PingPong/masterless": 180, "PingPong/bare": 200}},
		{n: 3, bin: "old", load: "1.5", rates: map[string]float64{"PingPong/masterless": 90, "PingPong/bare": 200}},
	}
	sums := summarize(all, "this", "old")
	if len(sums) != 1 || sums[0].name != "PingPong/masterless" {
		t.Fatalf("summaries %+v, want PingPong alone (Churn has no baseline)", sums)
	}
	s := sums[0]
	if m := measure.Median(s.ratio); m != 0.9 {
		t.Errorf("median ratio %v, want 0.9", m)
	}
	if m := measure.Median(s.thisByOld); m != 2 {
		t.Errorf("median this/old %v, want 2", m)
	}
	var out bytes.Buffer
	report(&out, all, "this", "old")
	if !strings.Contains(out.String(), "| PingPong/masterless | 90 (80–180) | 100 (100–200) | 0.90 (0.80–0.90) | 0.90, met | 0.45 (0.40–0.45) | 2.00 (2.00–2.00) |") {
		t.Fatalf("report:\n%s", out.String())
	}
	// One round less good: the median falls below the target.
	all[2].rates["PingPong/masterless"] = 70
	all[0].rates["PingPong/masterless"] = 85
	out.Reset()
	report(&out, all, "this", "old")
	if !strings.Contains(out.String(), "0.90, not met") {
		t.Fatalf("a median ratio of 0.85 against a target of 0.9 is reported met:\n%s", out.String())
	}
}

func TestLeafPattern(t *testing.T) {
	for leaf, want := range map[string]string{
		"OneWay/masterless-tls": "^BenchmarkOneWay$/^masterless-tls$",
		"Tick":                  "^BenchmarkTick$",
		"X/a+b":                 `^BenchmarkX$/^a\+b$`,
	} {
		if got := leafPattern(leaf); got != want {
			t.Errorf("leafPattern(%q) = %q, want %q", leaf, got, want)
		}
	}
}
