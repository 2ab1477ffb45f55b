package expvarstats_test

import (
	"context"
	"encoding/json"
	"errors"
	"expvar"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/masterless-go/masterless"
	"github.com/masterless-go/masterless/expvarstats"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// Publish publishes the live Stats as JSON under the name given, and refuses
// a name in use or an empty one.
func TestPublish(t *testing.T) {
	delivered := make(chan struct{}, 1)
	a, err := masterless.New("a")
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := masterless.New("b", masterless.WithEvents(masterless.Events{
		Message: func(*masterless.Server, string, []byte) { delivered <- struct{}{} },
	}))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	name := fmt.Sprintf("masterless-test-%d", time.Now().UnixNano()) // -count=N runs it again
	if expvar.Get(name) != nil {
		t.Fatal("published before Publish")
	}
	if err := expvarstats.Publish(name, a); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{name, ""} {
		if err := expvarstats.Publish(bad, b); !errors.Is(err, expvarstats.ErrNameTaken) {
			t.Fatalf("Publish(%q): %v, want ErrNameTaken", bad, err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := a.Connect(ctx, b.Info()); err != nil {
		t.Fatal(err)
	}
	if !a.Send("b", []byte("hello")) {
		t.Fatal("send refused")
	}
	select {
	case <-delivered:
	case <-ctx.Done():
		t.Fatal("not delivered")
	}
	var got expvarstats.Stats
	if err := json.Unmarshal([]byte(expvar.Get(name).String()), &got); err != nil {
		t.Fatal(err)
	}
	if len(got.Peers) != 1 || got.Peers[0].ID != "b" || got.Peers[0].State != "connected" || got.Peers[0].MessagesOut != 1 {
		t.Fatalf("peers: %+v", got.Peers)
	}
	if got.BytesOut != 5 || got.Handshakes != 1 || got.Peers[0].RemoteAddr == "" {
		t.Fatalf("stats: %+v", got)
	}
	if err := a.Disconnect("b"); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		_ = json.Unmarshal([]byte(expvar.Get(name).String()), &got)
		if len(got.Peers) == 1 && got.Peers[0].LastEnd != "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the end of the session never showed: %+v", got.Peers)
		}
	}
	if p := got.Peers[0]; p.LastEndTime == "" || p.State != "idle" {
		t.Fatalf("after Disconnect: %+v", p)
	}
}

// JSON carries the addresses being retried.
func TestJSONConnecting(t *testing.T) {
	got := expvarstats.JSON(masterless.Stats{Connecting: []string{"tcp://127.0.0.1:1"}})
	if len(got.Connecting) != 1 || got.Connecting[0] != "tcp://127.0.0.1:1" {
		t.Fatalf("connecting: %v", got.Connecting)
	}
}

// With no address being retried, connecting is an empty list in the JSON,
// not null, as peers is: a consumer iterates it without a nil check.
func TestJSONConnectingEmpty(t *testing.T) {
	b, err := json.Marshal(expvarstats.JSON(masterless.Stats{}))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"connecting":[]`) {
		t.Fatalf("connecting is not an empty list: %s", b)
	}
}

// Publish refuses a nil server and publishes nothing: it used to publish it,
// and then reading the variable panicked, and with it every request for
// expvar's page (which shows every variable), for the life of the process
// (black-box audit).
func TestPublishNilServer(t *testing.T) {
	name := fmt.Sprintf("masterless-test-nil-%d", time.Now().UnixNano())
	if err := expvarstats.Publish(name, nil); !errors.Is(err, expvarstats.ErrNilServer) {
		t.Fatalf("Publish(%q, nil): %v, want ErrNilServer", name, err)
	}
	if v := expvar.Get(name); v != nil {
		t.Fatalf("a nil server was published: %v", v)
	}
	rec := httptest.NewRecorder()
	expvar.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/debug/vars", nil))
	if rec.Code != http.StatusOK || !json.Valid(rec.Body.Bytes()) {
		t.Fatalf("expvar's page: %d %s", rec.Code, rec.Body.String())
	}
}
