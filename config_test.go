package masterless

import (
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestNewRefusesBadConfigurations: each of these used to start and then fail
// at every handshake (logging "bug: fsm asked to write a frame the codec
// refuses"), or is a contradiction; New must refuse it and say what is wrong.
func TestNewRefusesBadConfigurations(t *testing.T) {
	dir := t.TempDir()
	corrupt := filepath.Join(dir, "corrupt")
	require.NoError(t, os.WriteFile(corrupt, []byte("twelve\n"), 0o600))
	for _, c := range []struct {
		name string
		id   string
		opts []Option
		want string
	}{
		{"advertise longer than a HELLO carries", "a", []Option{WithAdvertise("tcp://" + strings.Repeat("h", 1020) + ":7000")}, "at most 1024"},
		{"advertise not tcp://host:port", "a", []Option{WithAdvertise("127.0.0.1:7000")}, "does not start with tcp://"},
		{"advertise not UTF-8", "a", []Option{WithAdvertise("tcp://h\xff:7000")}, "not valid UTF-8"},
		{"advertise without a host", "a", []Option{WithAdvertise("tcp://:7000")}, "no host"},
		{"advertise port 0", "a", []Option{WithAdvertise("tcp://127.0.0.1:0")}, "from 1 to 65535"},
		{"advertise port past 65535", "a", []Option{WithAdvertise("tcp://127.0.0.1:99999")}, "from 1 to 65535"},
		{"frame limit below the HELLO", "a", []Option{WithMaxFrameSize(1)}, "smaller than this node's HELLO"},
		{"advertise not UTF-8 with Protocol041", "a", []Option{WithProtocol(Protocol041), WithAdvertise("tcp://h\xff:7000")}, "not valid UTF-8"},
		{"id not UTF-8 with Protocol041", "a\xff", []Option{WithProtocol(Protocol041)}, "0.4.1's JSON HELLO"},
		{"incarnation zero", "a", []Option{WithIncarnation(0)}, "incarnation 0"},
		{"corrupt incarnation file", "a", []Option{WithIncarnationFile(corrupt)}, "remove it"},
		{"empty incarnation file path", "a", []Option{WithIncarnationFile("")}, "empty incarnation file path"},
		{"incarnation and incarnation file", "a", []Option{WithIncarnation(9), WithIncarnationFile(filepath.Join(dir, "new"))}, "use one"},
		{"frame longer than its 32-bit length", "a", []Option{WithMaxFrameSize(int(uint64(1) << 32 & uint64(^uint(0))))}, "32 bits"},
		// Negative sizes and counts were taken as the default, silently.
		{"negative frame size", "a", []Option{WithMaxFrameSize(-1)}, "WithMaxFrameSize(-1): negative"},
		{"negative queue messages", "a", []Option{WithSendQueue(-1, 0)}, "WithSendQueue(-1, 0): negative"},
		{"negative queue bytes", "a", []Option{WithSendQueue(0, -5)}, "WithSendQueue(0, -5): negative"},
		{"negative window", "a", []Option{WithWindow(-1)}, "WithWindow(-1): negative"},
		{"negative send buffer", "a", []Option{WithSendBuffer(-1)}, "WithSendBuffer(-1): negative"},
		{"negative dispatch queue", "a", []Option{WithDispatchQueue(-1, 0)}, "WithDispatchQueue(-1, 0): negative"},
		{"negative handshakes", "a", []Option{WithMaxHandshakes(-1)}, "WithMaxHandshakes(-1): negative"},
		{"negative handshakes per source", "a", []Option{WithMaxHandshakesPerSource(-1)}, "WithMaxHandshakesPerSource(-1): negative"},
		{"negative redials", "a", []Option{WithMaxRedials(-1)}, "WithMaxRedials(-1): negative"},
		// A port out of range named no option (black-box audit, 2026-12-02).
		{"negative port", "a", []Option{WithPort(-1)}, "WithPort(-1): out of range (1-65535, or 0 for any free port)"},
		{"port too large", "a", []Option{WithPort(65536)}, "WithPort(65536): out of range"},
		// Negative durations and discovery settings were refused without
		// naming the option or field (black-box audit).
		{"negative heartbeat", "a", []Option{WithHeartbeat(-time.Second)}, "WithHeartbeat(-1s): negative (0 keeps the default 1s)"},
		{"negative peer timeout", "a", []Option{WithPeerTimeout(-time.Second)}, "WithPeerTimeout(-1s): negative (0 keeps the default 5s)"},
		{"negative handshake timeout", "a", []Option{WithHandshakeTimeout(-time.Second)}, "WithHandshakeTimeout(-1s): negative (0 keeps the default 5s)"},
		{"negative first backoff", "a", []Option{WithReconnectBackoff(-time.Second, 0)}, "WithReconnectBackoff(-1s, 0s): negative first delay (0 keeps the default 100ms)"},
		{"negative max backoff", "a", []Option{WithReconnectBackoff(0, -time.Second)}, "WithReconnectBackoff(0s, -1s): negative max"},
		{"max backoff below first", "a", []Option{WithReconnectBackoff(2*time.Second, time.Second)}, "WithReconnectBackoff(2s, 1s): the max is below the first delay"},
		{"max backoff below the default first", "a", []Option{WithReconnectBackoff(0, 50*time.Millisecond)}, "WithReconnectBackoff(0s, 50ms): the max is below the default first delay 100ms"},
		{"max window below the window", "a", []Option{WithWindow(2 << 20), WithMaxWindow(1 << 20)}, "MaxWindow 1048576 below Window 2097152"},
		{"negative max window", "a", []Option{WithMaxWindow(-1)}, "WithMaxWindow"},
		{"negative grace", "a", []Option{WithReconnectGrace(-time.Second)}, "WithReconnectGrace(-1s): negative (0 keeps the default 5s)"},
		{"negative discovery dials", "a", []Option{WithDiscovery(DiscoveryOptions{MaxDials: -1})}, "DiscoveryOptions.MaxDials -1: negative"},
		{"negative discovery gap", "a", []Option{WithDiscovery(DiscoveryOptions{Gap: -time.Second})}, "DiscoveryOptions.Gap -1s: negative"},
		{"negative leader delay", "a", []Option{WithDiscovery(DiscoveryOptions{LeaderDelay: -time.Second})}, "DiscoveryOptions.LeaderDelay -1s: negative"},
		{"negative gossip interval", "a", []Option{WithDiscovery(DiscoveryOptions{GossipInterval: -time.Second})}, "DiscoveryOptions.GossipInterval -1s: negative"},
		{"negative member timeout", "a", []Option{WithDiscovery(DiscoveryOptions{MemberTimeout: -time.Second})}, "DiscoveryOptions.MemberTimeout -1s: negative"},
		{"negative max members", "a", []Option{WithDiscovery(DiscoveryOptions{MaxMembers: -1})}, "DiscoveryOptions.MaxMembers -1: negative"},
		// Both options named, with their defaults (a black-box audit).
		{"peer timeout within the heartbeat", "a", []Option{WithPeerTimeout(500 * time.Millisecond)}, "the peer timeout 500ms (WithPeerTimeout; default 5s) must exceed the heartbeat interval 1s (WithHeartbeat; default 1s)"},
		{"a nil option", "a", []Option{nil}, "option 1 of 2 is nil"}, // the logger below is the second
	} {
		if c.want == "32 bits" && strconv.IntSize < 64 {
			continue // an int cannot hold it
		}
		s, err := New(c.id, append(c.opts, WithLogger(newLogger(&logSink{})))...)
		if err == nil {
			s.Close()
			t.Errorf("%s: New accepted it", c.name)
			continue
		}
		require.ErrorIs(t, err, ErrBadConfig, c.name)
		require.Contains(t, err.Error(), c.want, c.name)
	}
	_, err := os.Stat(filepath.Join(dir, "new"))
	require.ErrorIs(t, err, os.ErrNotExist, "a refused configuration created an incarnation file")
}

// TestBackoffFirstAlone: WithReconnectBackoff(first, 0) with a first delay
// over the default max (10 s) is accepted (every delay is then first:
// fsm's TestConfigBackoffMaxFollowsALongerMin); it used to be refused as
// "backoff max 10s below min 20s", a max the user never set (black-box
// audit).
func TestBackoffFirstAlone(t *testing.T) {
	s, err := New("a", WithReconnectBackoff(20*time.Second, 0), WithLogger(newLogger(&logSink{})))
	require.NoError(t, err)
	require.NoError(t, s.Close())
}

// TestLongestAdvertiseHandshakes: an advertised address of exactly the limit
// is accepted and carried by the HELLO (the check and the codec agree).
func TestLongestAdvertiseHandshakes(t *testing.T) {
	logs := &logSink{}
	info := "tcp://" + strings.Repeat("h", 1024-len("tcp://:7000")) + ":7000"
	require.Len(t, info, 1024)
	a, _ := newServer(t, "a", WithAdvertise(info), WithLogger(newLogger(logs)))
	require.Equal(t, info, a.Info())
	b, _ := newServer(t, "b")
	id, err := b.Connect(ctxT(t), "tcp://"+a.n.Addr().String())
	require.NoError(t, err)
	require.Equal(t, "a", id)
	require.NotContains(t, logs.String(), "bug:")
}

func TestWithIncarnation(t *testing.T) {
	s, _ := newServer(t, "a", WithIncarnation(42))
	require.Equal(t, uint64(42), s.n.Incarnation())
}

// TestIncarnationFileOutrunsTheClock: a file holding an incarnation an hour
// ahead of the clock (as after the clock stepped back an hour) gives a
// greater one, and a restart a greater one again.
func TestIncarnationFileOutrunsTheClock(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a.incarnation")
	ahead := uint64(time.Now().Add(time.Hour).UnixNano())
	require.NoError(t, os.WriteFile(path, []byte(strconv.FormatUint(ahead, 10)+"\n"), 0o600))
	s, err := New("a", WithIncarnationFile(path), WithLogger(newLogger(&logSink{})))
	require.NoError(t, err)
	first := s.n.Incarnation()
	require.NoError(t, s.Close())
	require.Greater(t, first, ahead)

	s, err = New("a", WithIncarnationFile(path), WithLogger(newLogger(&logSink{})))
	require.NoError(t, err)
	second := s.n.Incarnation()
	require.NoError(t, s.Close())
	require.Greater(t, second, first)
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	require.Equal(t, strconv.FormatUint(second, 10)+"\n", string(b))

	// A missing file is created, starting from the clock.
	fresh := filepath.Join(t.TempDir(), "sub.incarnation")
	before := uint64(time.Now().UnixNano())
	s, err = New("a", WithIncarnationFile(fresh), WithLogger(newLogger(&logSink{})))
	require.NoError(t, err)
	require.GreaterOrEqual(t, s.n.Incarnation(), before)
	require.NoError(t, s.Close())
	_, err = os.Stat(fresh)
	require.NoError(t, err)
}

// TestNewListenErrorsWrapErrListen: New's errors wrap a sentinel, as every
// error of the package does (errors.go); a port already taken and a host
// that is not this machine's said so only in their text (a black-box audit
// found them wrapping nothing).
func TestNewListenErrorsWrapErrListen(t *testing.T) {
	a, _ := newServer(t, "a")
	_, port, err := net.SplitHostPort(strings.TrimPrefix(a.Info(), "tcp://"))
	require.NoError(t, err)
	p, err := strconv.Atoi(port)
	require.NoError(t, err)
	_, err = New("b", WithPort(p))
	require.ErrorIs(t, err, ErrListen, "port taken")
	require.NotErrorIs(t, err, ErrBadConfig, "a port taken is the machine's state, not a wrong option")
	_, err = New("b", WithHost("192.0.2.1")) // TEST-NET-1: no machine's own address (and no DNS lookup)
	require.ErrorIs(t, err, ErrListen, "host not this machine's")
	require.ErrorIs(t, err, ErrBadConfig, "a host not this machine's is an option wrong for it")
}
