package interop

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// Root is the repository's top folder.
func Root() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Dir(filepath.Dir(file))
}

var skipNotice sync.Once

var install struct {
	once sync.Once
	out  []byte
	err  error
}

// Require skips t when node or npm is missing (fails it under CI=true), and
// otherwise makes sure masterless@0.4.1 is installed, running install.sh once
// per test binary.
func Require(t testing.TB) {
	t.Helper()
	for _, tool := range []string{"node", "npm"} {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatalf("interop: %s not found, and CI=true: the interop tests must run in CI", tool)
			}
			msg := fmt.Sprintf("SKIP: interop: %s not found; install Node.js 20+ and npm to run the tests against masterless@0.4.1", tool)
			skipNotice.Do(func() { fmt.Fprintln(os.Stderr, msg) }) // visible without -v
			t.Skip(msg)
		}
	}
	install.once.Do(func() {
		cmd := exec.Command("bash", filepath.Join(Root(), "interop", "install.sh"))
		install.out, install.err = cmd.CombinedOutput()
	})
	if install.err != nil {
		t.Fatalf("interop: install.sh failed: %v\n%s", install.err, install.out)
	}
	if bytes.Contains(install.out, []byte("SKIP:")) {
		t.Skipf("%s", bytes.TrimSpace(install.out))
	}
}

// Event is one line a driver printed. Only the fields of its Ev are set.
type Event struct {
	Ev       string               `json:"ev"`
	Info     string               `json:"info,omitempty"`  // listening, connect
	ID       string               `json:"id,omitempty"`    // connect, disconnect, dial
	From     string               `json:"from,omitempty"`  // message
	Data     json.RawMessage      `json:"data,omitempty"`  // message
	URI      string               `json:"uri,omitempty"`   // dial
	Error    string               `json:"error,omitempty"` // dial, error
	To       json.RawMessage      `json:"to,omitempty"`    // sent
	Result   json.RawMessage      `json:"result,omitempty"`
	Nodes    map[string]NodeState `json:"nodes,omitempty"` // state
	Incoming int                  `json:"incoming,omitempty"`
	Line     string               `json:"-"` // the line as printed
}

// NodeState is 0.4.1's record of one peer (its private fields, for tests).
// Local and Remote are 0 not connected, 1 connecting, 2 connected, for the
// outgoing and the incoming direction.
type NodeState struct {
	Local   int  `json:"local"`
	Remote  int  `json:"remote"`
	Stream  bool `json:"stream"`
	Keeping bool `json:"keeping"`
	Kept    bool `json:"kept"`
	Queued  int  `json:"queued"`
}

// IsGreeting reports whether a message event carries the greeting every
// driver sends a peer on connect (the workaround for 0.4.1's heartbeat crash).
func (e Event) IsGreeting() bool {
	return e.Ev == "message" && bytes.HasPrefix(e.Data, []byte(`{"greeting":`))
}

// Driver is one Node.js process running one masterless 0.4.1 server.
type Driver struct {
	ID   string
	Info string // tcp://127.0.0.1:PORT, once Start returns

	t      testing.TB
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	stderr bytes.Buffer

	mu      sync.Mutex
	events  []Event
	cursor  int           // Expect resumes here
	notify  chan struct{} // closed and replaced when an event arrives or the process ends
	exited  bool
	waitErr error
	killed  bool
}

// Start runs a driver with the given 0.4.1 id and driver flags (such as
// "--echo" or "--port=N"), waits for it to listen, and stops it when the
// test ends. A driver that dies on its own fails the test, with its stderr.
func Start(t testing.TB, id string, flags ...string) *Driver {
	t.Helper()
	Require(t)
	script := filepath.Join(Root(), "testdata", "interop", "driver.js")
	d := &Driver{ID: id, t: t, notify: make(chan struct{})}
	d.cmd = exec.Command("node", append([]string{script, id}, flags...)...)
	d.cmd.Stderr = &d.stderr
	var err error
	if d.stdin, err = d.cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	stdout, err := d.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := d.cmd.Start(); err != nil {
		t.Fatalf("interop: start driver %s: %v", id, err)
	}
	go d.read(stdout)
	t.Cleanup(d.stop)
	d.Info = d.Expect(10*time.Second, "listening", func(e Event) bool { return e.Ev == "listening" }).Info
	return d
}

func (d *Driver) read(r io.Reader) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	for sc.Scan() {
		line := sc.Text()
		var e Event
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			e = Event{Ev: "unparsed"}
		}
		e.Line = line
		d.mu.Lock()
		d.events = append(d.events, e)
		close(d.notify)
		d.notify = make(chan struct{})
		d.mu.Unlock()
	}
	err := d.cmd.Wait()
	d.mu.Lock()
	d.exited, d.waitErr = true, err
	close(d.notify)
	d.notify = make(chan struct{})
	d.mu.Unlock()
}

func (d *Driver) stop() {
	d.Command(map[string]any{"cmd": "close"})
	d.stdin.Close()
	deadline := time.After(5 * time.Second)
	for {
		d.mu.Lock()
		exited, err, killed, ch := d.exited, d.waitErr, d.killed, d.notify
		d.mu.Unlock()
		if exited {
			if err != nil && !killed {
				d.t.Errorf("interop: driver %s exited with %v; stderr:\n%s", d.ID, err, d.stderr.String())
			}
			return
		}
		select {
		case <-ch:
		case <-deadline:
			d.t.Errorf("interop: driver %s did not exit after close; killing it", d.ID)
			d.Kill()
			deadline = time.After(5 * time.Second)
		}
	}
}

// Command writes one command line, e.g. map[string]any{"cmd": "state"}.
func (d *Driver) Command(cmd any) {
	b, err := json.Marshal(cmd)
	if err != nil {
		d.t.Fatal(err)
	}
	d.stdin.Write(append(b, '\n')) // a dead driver is reported by Expect and stop
}

// Connect asks the 0.4.1 server to dial uri.
func (d *Driver) Connect(uri string) { d.Command(map[string]any{"cmd": "connect", "uri": uri}) }

// Keep sets whether the 0.4.1 server keeps peer.
func (d *Driver) Keep(peer string, keep bool) {
	d.Command(map[string]any{"cmd": "keep", "id": peer, "keep": keep})
}

// Disconnect asks the 0.4.1 server to drop peer.
func (d *Driver) Disconnect(peer string) { d.Command(map[string]any{"cmd": "disconnect", "id": peer}) }

// Send sends data (a JSON object) to one peer (a string) or several ([]string).
func (d *Driver) Send(to any, data any) {
	d.Command(map[string]any{"cmd": "send", "to": to, "data": data})
}

// Kill ends the Node.js process at once (SIGKILL), as a crash would.
func (d *Driver) Kill() {
	d.mu.Lock()
	d.killed = true
	d.mu.Unlock()
	d.cmd.Process.Kill()
}

// Expect waits up to timeout for the next event, after those already
// matched, that satisfies match, and returns it. It fails the test on timeout
// or if the driver exits first.
func (d *Driver) Expect(timeout time.Duration, what string, match func(Event) bool) Event {
	d.t.Helper()
	deadline := time.After(timeout)
	for {
		d.mu.Lock()
		for ; d.cursor < len(d.events); d.cursor++ {
			if e := d.events[d.cursor]; match(e) {
				d.cursor++
				d.mu.Unlock()
				return e
			}
		}
		exited, err, ch := d.exited, d.waitErr, d.notify
		d.mu.Unlock()
		if exited {
			d.t.Fatalf("interop: driver %s exited (%v) while waiting for %s; events:\n%s\nstderr:\n%s",
				d.ID, err, what, d.Transcript(), d.stderr.String())
		}
		select {
		case <-ch:
		case <-deadline:
			d.t.Fatalf("interop: driver %s: no %s within %v; events:\n%s", d.ID, what, timeout, d.Transcript())
		}
	}
}

// Events returns every event so far that satisfies match (all if nil).
func (d *Driver) Events(match func(Event) bool) []Event {
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []Event
	for _, e := range d.events {
		if match == nil || match(e) {
			out = append(out, e)
		}
	}
	return out
}

// State asks for and returns the server's peer records.
func (d *Driver) State() Event {
	d.t.Helper()
	d.Command(map[string]any{"cmd": "state"})
	return d.Expect(5*time.Second, "state", func(e Event) bool { return e.Ev == "state" })
}

// Alive reports whether the process is still running.
func (d *Driver) Alive() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return !d.exited
}

// Transcript is every line the driver printed, for failure messages.
func (d *Driver) Transcript() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	var b strings.Builder
	for _, e := range d.events {
		fmt.Fprintf(&b, "  %s\n", e.Line)
	}
	return b.String()
}
