package masterless

import (
	"bufio"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestLegacyConcurrentSendersWaitFirst: many goroutines sending at once to
// a 0.4.1 peer that reads nothing leave at most the send buffer's bound and
// one message in its output buffer (and as much in the write under way,
// beyond what the socket took): once a
// send passed the bound, the others wait before they add theirs. Each used
// to add its message and then wait, so 32 goroutines sending 1 MiB each put
// 35 MiB in a buffer bound to 4 MiB, and 64 passed the bound past which a
// node closes a connection (a black-box audit: an honest 0.4.1 peer closed
// as a protocol error within a second).
func TestLegacyConcurrentSendersWaitFirst(t *testing.T) {
	const bound, size, senders = 256 << 10, 64 << 10, 32
	a, _ := newServer(t, "a", WithSendBuffer(bound), WithPeerTimeout(2*time.Second), WithHeartbeat(200*time.Millisecond))
	nc := legacyJoined(t, a.Info(), "j")
	eventually(t, "j's 0.4.1 session", func() bool { return sameSet(a.Connections(), "j") })
	// j reads nothing more, and keeps its session alive meanwhile.
	stop := every(100*time.Millisecond, func() error { _, err := io.WriteString(nc, "true\r\n"); return err })
	defer stop()

	var accepted atomic.Int64
	var done atomic.Bool
	var wg sync.WaitGroup
	payload := map[string]string{"p": strings.Repeat("w", size)} // 0.4.1 messages are objects
	for range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !done.Load() {
				if a.SendJSON("j", payload) != nil {
					return // j is gone (the end of the test)
				}
				accepted.Add(1)
			}
		}()
	}
	// Every 5 ms for a second (within the peer timeout: j is still there),
	// what the node holds for j: accepted, not yet written to the socket.
	const line = uint64(size + len(`{"p":""}`+"\r\n")) // a message on the wire
	var most, wire uint64
	for deadline := time.Now().Add(time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		in := uint64(accepted.Load()) * line // before the socket's count, which can only add
		for _, p := range a.Stats().Peers {
			if p.ID == "j" {
				require.Nil(t, p.LastEnd, "the session is still up")
				wire = p.WireOut
			}
		}
		most = max(most, in-min(wire, in))
	}
	// The buffer the writer is writing (bound and a message at most) and the
	// one senders fill meanwhile.
	require.LessOrEqual(t, most, 2*(bound+line), "%d sends of %d bytes accepted, %d bytes written to the socket", accepted.Load(), size, wire)
	done.Store(true)
	require.NoError(t, nc.Close()) // let the waiting senders go
	wg.Wait()
}

// TestLegacyMessageOverTheOutputBound: the bound past which a connection's
// output buffer means a lying peer (acknowledgements of what it never read)
// is for sessions with acknowledgements: a 0.4.1 session has none, and a
// message larger than the send queue's bytes is legal there. It closed
// such a session as a protocol error (the review of the bound: a send queue
// of 64 KiB, a 1 MiB message).
func TestLegacyMessageOverTheOutputBound(t *testing.T) {
	a, _ := newServer(t, "a", WithSendQueue(16, 64<<10), WithSendBuffer(64<<10))
	nc := legacyJoined(t, a.Info(), "j")
	eventually(t, "j's 0.4.1 session", func() bool { return sameSet(a.Connections(), "j") })
	require.NoError(t, a.SendJSON("j", map[string]string{"p": strings.Repeat("w", 1<<20)}))
	r := bufio.NewReaderSize(nc, 4<<20)
	require.NoError(t, nc.SetReadDeadline(time.Now().Add(waitFor)))
	line, err := r.ReadString('\n')
	for err == nil && len(line) < 16 { // the node's keep flag and heartbeats, when legacyJoined's reader did not take them
		line, err = r.ReadString('\n')
	}
	require.NoError(t, err, "the message")
	require.Greater(t, len(line), 1<<20)
	require.True(t, sameSet(a.Connections(), "j"), "the session is still up")
}
