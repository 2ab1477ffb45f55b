package netio

import (
	"net"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestSourceOf(t *testing.T) {
	for addr, want := range map[string]string{
		"127.0.0.1:5000":            "127.0.0.1",
		"127.0.0.1:5001":            "127.0.0.1",
		"10.1.2.3:80":               "10.1.2.3",
		"[::ffff:10.1.2.3]:80":      "10.1.2.3",
		"[2001:db8:1:2:3:4:5:6]:9":  "2001:db8:1:2::/64",
		"[2001:db8:1:2:ffff::1]:10": "2001:db8:1:2::/64",
		"[fe80::1%eth0]:7":          "fe80::/64",
		"[2001:db8:1:3::1]:9":       "2001:db8:1:3::/64",
	} {
		tcp, err := net.ResolveTCPAddr("tcp", addr)
		require.NoError(t, err, addr)
		require.Equal(t, want, sourceOf(tcp), addr)
	}
}
