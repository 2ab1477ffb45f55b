package main

import (
	"context"
	"fmt"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/masterless-go/masterless"
)

// The handler's output is valid text exposition, every family has its HELP
// and TYPE, and the values are the Stats: the messages a sent b are counted
// at both ends.
func TestHandlerExposesStats(t *testing.T) {
	a, err := masterless.New("a", masterless.WithHeartbeat(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := masterless.New("b", masterless.WithHeartbeat(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := a.Connect(ctx, b.Info()); err != nil {
		t.Fatal(err)
	}
	for i := range 7 {
		if err := a.SendContext(ctx, "b", []byte(fmt.Sprint(i))); err != nil {
			t.Fatal(err)
		}
	}
	var body string
	for deadline := time.Now().Add(30 * time.Second); ; {
		rec := httptest.NewRecorder()
		Handler(a, b).ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
		body = rec.Body.String()
		if strings.Contains(body, `masterless_peer_messages_total{node="b",peer="a",direction="in"} 7`) &&
			strings.Contains(body, `masterless_peer_rtt_seconds{node="a",peer="b"}`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("b never counted 7 messages from a, or a never measured a round trip:\n%s", body)
		}
		time.Sleep(20 * time.Millisecond)
	}
	for _, want := range []string{
		`masterless_messages_total{node="a",direction="out"} 7`,
		`masterless_peer_messages_total{node="a",peer="b",direction="out"} 7`,
		`masterless_peers{node="a",state="connected"} 1`,
		`masterless_handshakes_total{node="b"} 1`,
		`masterless_peer_connected{node="b",peer="a"} 1`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("missing %s", want)
		}
	}
	sampleLine := regexp.MustCompile(`^[a-z_]+(\{([a-z_]+="[^"\\\n]*",?)+\})? [-+0-9.eE]+$`)
	typed := map[string]bool{}
	for _, line := range strings.Split(strings.TrimSpace(body), "\n") {
		if f, ok := strings.CutPrefix(line, "# TYPE "); ok {
			typed[strings.Fields(f)[0]] = true
			continue
		}
		if strings.HasPrefix(line, "# HELP ") {
			continue
		}
		if !sampleLine.MatchString(line) {
			t.Errorf("not a sample line: %q", line)
			continue
		}
		name, _, _ := strings.Cut(line, "{")
		name, _, _ = strings.Cut(name, " ")
		if !typed[name] {
			t.Errorf("sample before its TYPE: %q", line)
		}
	}
	if got := escape("a\"b\\c\nd"); got != `a\"b\\c\nd` {
		t.Errorf("escape: %s", got)
	}
}

// A label value is valid UTF-8 with the text format's escapes whatever
// bytes a peer's id holds: an id that is not UTF-8, or holds control
// characters, must not make the scrape invalid (a black-box audit).
func TestEscapeHostileID(t *testing.T) {
	for in, want := range map[string]string{
		"plain":          "plain",
		`q"b\s` + "\n":   `q\"b\\s\n`,
		"evil\xff\x00id": "evil\uFFFD\uFFFDid",
		"tab\there\x7f":  "tab\uFFFDhere\uFFFD",
	} {
		if got := escape(in); got != want {
			t.Errorf("escape(%q) = %q, want %q", in, got, want)
		}
	}
}
