package link_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/masterless-go/masterless/fsm"
	"github.com/masterless-go/masterless/link"
)

// authAcceptor is acceptor with RequireAuth: only connections the driver
// reports authenticated may say HELLO.
func authAcceptor(t *testing.T) (*link.Layer, *recorder) {
	t.Helper()
	n, err := fsm.New(fsm.Config{ID: "b", Incarnation: 2, Seed: 1, MaxFrameSize: maxFrame, RequireAuth: true})
	require.NoError(t, err)
	r := newRecorder()
	l := link.New(n, r)
	require.NoError(t, l.Step(0, fsm.Listening{Info: "tcp://b:1"}))
	return l, r
}

// The id IncomingAuth reports reaches the state machine with Accepted: "a"
// authenticated as "a" gets its session, plaintext and another key's holder
// are refused.
func TestIncomingAuthReportsThePeer(t *testing.T) {
	for _, tc := range []struct {
		peer    string
		session bool
	}{{"a", true}, {"", false}, {"z", false}} {
		l, r := authAcceptor(t)
		l.IncomingAuth(0, 1, "", tc.peer)
		feed(t, l, 1, v1Stream(t), 1<<10, 1<<20)
		_, ok := l.Node().SessionConn("a")
		require.Equal(t, tc.session, ok, "peer %q: %v", tc.peer, r.log)
		_, closed := r.closed[1]
		require.Equal(t, !tc.session, closed, "peer %q: %v", tc.peer, r.log)
	}
}

// DialedAuth reports the acceptor's authenticated id with Dialed: a HELLO
// naming another id is refused.
func TestDialedAuthReportsThePeer(t *testing.T) {
	l, r := authAcceptor(t)
	require.NoError(t, l.Step(0, fsm.Connect{Req: 1, Addr: "tcp://a:1"}))
	l.DialedAuth(0, 1, 1, "z")
	feed(t, l, 1, v1Stream(t), 1<<10, 1<<20)
	require.Contains(t, r.closed, fsm.ConnID(1), "%v", r.log)
	require.ErrorIs(t, r.closed[1], fsm.ErrIDMismatch)
}
