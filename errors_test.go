package masterless

import (
	"encoding/json"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// wrapsSentinel reports whether err wraps one of the package's sentinels.
func wrapsSentinel(err error) bool {
	for _, s := range []error{
		ErrSelfConnect, ErrDuplicateID, ErrHandshakeTimeout, ErrPeerTimeout, ErrDuplicate, ErrUnwanted,
		ErrStaleIncarnation, ErrReplaced, ErrProtocol, ErrPeerClosed, ErrConnectionLost, ErrClosed,
		ErrUnknownPeer, ErrNotConnected, ErrQueueFull, ErrMessagesLost, ErrPayloadTooLarge,
		ErrNotJSONObject, ErrTooManyHandshakes, ErrEvicted, ErrDialFailed, ErrDisconnected,
		ErrBadConfig, ErrBadAddress, ErrListen, ErrVersionMismatch, ErrBadMagic, ErrFrameTooLarge,
		ErrMalformedFrame, ErrUnauthenticated, ErrIDMismatch, ErrUntrusted, ErrCertificateExpired,
		ErrJSON,
	} {
		if errors.Is(err, s) {
			return true
		}
	}
	return false
}

// TestResetWrapsConnectionLost: a session whose connection is reset (a
// proxy, a NAT, a peer that died with data unread) ends with a reason that
// wraps ErrConnectionLost, at the end that does not keep the pair (its
// Disconnect event) and at the end that does (Stats' LastEnd); it used to be
// the bare *net.OpError, which wraps no sentinel (black-box audit).
func TestResetWrapsConnectionLost(t *testing.T) {
	a, _, _, rb, relay := proxiedPair(t) // a keeps b; b does not keep a
	relay.reset()
	eventually(t, "b's Disconnect event", func() bool { return len(rb.disconnects("a")) > 0 })
	err := rb.disconnects("a")[0]
	require.ErrorIs(t, err, ErrConnectionLost, "b's Disconnect event: %v", err)
	eventually(t, "a saw the session end", func() bool {
		for _, p := range a.Stats().Peers {
			if p.ID == "b" && p.LastEnd != nil {
				return true
			}
		}
		return false
	})
	for _, p := range a.Stats().Peers {
		if p.ID == "b" {
			require.True(t, wrapsSentinel(p.LastEnd), "a's LastEnd wraps no sentinel: %v", p.LastEnd)
			require.ErrorIs(t, p.LastEnd, ErrConnectionLost, "a's LastEnd: %v", p.LastEnd)
		}
	}
}

// TestConnectResetWrapsConnectionLost: a Connect whose connection is reset
// during the handshake returns an error wrapping ErrConnectionLost.
func TestConnectResetWrapsConnectionLost(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			buf := make([]byte, 8)
			_, _ = c.Read(buf) // the preamble is in: a close now sends RST
			_ = c.(*net.TCPConn).SetLinger(0)
			_ = c.Close()
		}
	}()
	t.Cleanup(func() { ln.Close(); <-done })
	a, _ := newServer(t, "a", WithConnectOnce(), WithHandshakeTimeout(5*time.Second))
	_, err = a.Connect(ctxT(t), "tcp://"+ln.Addr().String())
	require.Error(t, err)
	require.ErrorIs(t, err, ErrConnectionLost, "Connect: %v", err)
}

// The JSON helpers' errors wrap a sentinel, ErrJSON, as every error the
// package returns must (README, "Errors"), and encoding/json's error (a
// black-box audit found encoding/json's alone).
func TestJSONErrorsWrapASentinel(t *testing.T) {
	a, _ := newServer(t, "a")
	var into struct{ A int }
	for what, err := range map[string]error{
		"SendJSON":     a.SendJSON("nobody", make(chan int)),
		"DecodeJSON":   DecodeJSON([]byte("{not json"), &into),
		"DecodeJSON 2": DecodeJSON([]byte(`{"A":"s"}`), &into),
	} {
		require.ErrorIs(t, err, ErrJSON, what)
		require.True(t, wrapsSentinel(err), what)
	}
	_, err := a.SendManyJSON([]string{"x"}, func() {})
	require.ErrorIs(t, err, ErrJSON)
	var syntax *json.SyntaxError
	require.ErrorAs(t, DecodeJSON([]byte("{not json"), &into), &syntax, "encoding/json's error is wrapped too")
}
