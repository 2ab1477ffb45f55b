package fsm_test

import (
	"net"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/masterless-go/masterless/fsm"
	"github.com/masterless-go/masterless/link"
)

// TestSourceOf: what counts as one source for the shares of the handshake
// slots, from a remote address as an adapter reports it and the connection
// layer parses it: net.Addr.String() of a TCP connection (netio), or a host
// name (the simulator).
func TestSourceOf(t *testing.T) {
	tcp := map[string]string{
		"127.0.0.1:5000":            "127.0.0.1",
		"127.0.0.1:5001":            "127.0.0.1",
		"10.1.2.3:80":               "10.1.2.3",
		"[::ffff:10.1.2.3]:80":      "10.1.2.3",
		"[2001:db8:1:2:3:4:5:6]:9":  "2001:db8:1:2::/64",
		"[2001:db8:1:2:ffff::1]:10": "2001:db8:1:2::/64",
		"[fe80::1%eth0]:7":          "fe80::/64",
		"[2001:db8:1:3::1]:9":       "2001:db8:1:3::/64",
	}
	for addr, want := range tcp {
		a, err := net.ResolveTCPAddr("tcp", addr)
		require.NoError(t, err, addr)
		require.Equal(t, want, fsm.SourceOf(link.IncomingEvent(1, a.String())), addr)
	}
	for addr, want := range map[string]string{
		"":                  "",
		"10.1.2.3":          "10.1.2.3",
		"2001:db8:1:2::7":   "2001:db8:1:2::/64",
		"[2001:db8:1:2::7]": "2001:db8:1:2::/64",
		"fe80::1%eth0":      "fe80::/64",
		"n1":                "n1",
		"n1:4000":           "n1",
		"host.example:80":   "host.example",
		"adversary-3":       "adversary-3",
	} {
		require.Equal(t, want, fsm.SourceOf(link.IncomingEvent(1, addr)), addr)
	}
	// Without the connection layer's parse, an address is a host name.
	require.Equal(t, "10.1.2.3", fsm.SourceOf(fsm.Incoming{Source: "10.1.2.3:80"}))
}
