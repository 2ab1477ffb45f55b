package fsm

import (
	"net/netip"
	"strings"
)

// sourceOf groups the remote address of an accepted connection (Incoming's
// Source, as the adapter reports it: "host:port", "[v6]:port" or a bare
// host) into the source it counts against for the shares of the handshake
// slots (slots.go, spec/PROTOCOL.md 3.6): an IPv4 address (also when mapped
// into IPv6), or the /64 an IPv6 address belongs to, whose zone is dropped
// (one host commonly holds a whole /64, so counting its addresses one by one
// would bound nothing). The port is left out: one host dials from many. A
// host that is not an IP address (the simulator's host names) is its own
// source; an empty address is no source's.
func sourceOf(remote string) string {
	if remote == "" {
		return ""
	}
	host := remote
	if ap, err := netip.ParseAddrPort(remote); err == nil {
		return ipSource(ap.Addr())
	}
	if i := strings.LastIndexByte(remote, ':'); i >= 0 && !strings.Contains(remote[:i], ":") {
		host = remote[:i] // name:port (a name has no colon; a bare IPv6 address has several)
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if ip, err := netip.ParseAddr(host); err == nil {
		return ipSource(ip)
	}
	return host
}

// ipSource is the source of ip: itself for IPv4, its /64 for IPv6.
func ipSource(ip netip.Addr) string {
	ip = ip.Unmap().WithZone("")
	if ip.Is4() {
		return ip.String()
	}
	return netip.PrefixFrom(ip, 64).Masked().String()
}
