package netio

import (
	"net"
	"net/netip"
)

// sourceOf names the address an accepted connection comes from, for the
// state machine's shares of the handshake slots (fsm.Incoming): the remote IPv4
// address, or the /64 an IPv6 address belongs to (a single host commonly
// holds a whole /64, so counting its addresses one by one would bound
// nothing). The port is left out: one host dials from many.
func sourceOf(a net.Addr) string {
	ap, err := netip.ParseAddrPort(a.String())
	if err != nil {
		return a.String()
	}
	ip := ap.Addr().Unmap().WithZone("")
	if ip.Is4() {
		return ip.String()
	}
	return netip.PrefixFrom(ip, 64).Masked().String()
}
