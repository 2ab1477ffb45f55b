package fsm

import (
	"fmt"
	"strings"
)

// sourceOf groups the dialer of an accepted connection into the source it
// counts against for the shares of the handshake slots (slots.go,
// spec/PROTOCOL.md 3.6): an IPv4 address (also when mapped into IPv6), or
// the /64 an IPv6 address belongs to (one host commonly holds a whole /64,
// so counting its addresses one by one would bound nothing). The port is
// left out: one host dials from many. The connection layer parses the
// address (Incoming.IP, link.IncomingEvent); a host that is not an IP
// address (the simulator's host names) is its own source, without a port;
// an empty address is no source's.
func sourceOf(ev Incoming) string {
	if ev.HasIP {
		return ipSource(ev.IP)
	}
	host := ev.Source
	if i := strings.LastIndexByte(host, ':'); i >= 0 && !strings.Contains(host[:i], ":") {
		host = host[:i] // name:port (a name has no colon)
	}
	return host
}

// ipSource is the source of ip (16 bytes, IPv4 in its IPv4-mapped form):
// the dotted IPv4 address, or the IPv6 /64 written as netip writes a
// prefix ("2001:db8:1:2::/64", "fe80::/64").
func ipSource(ip [16]byte) string {
	if ip[10] == 0xff && ip[11] == 0xff && isZero(ip[:10]) {
		return fmt.Sprintf("%d.%d.%d.%d", ip[12], ip[13], ip[14], ip[15])
	}
	groups := make([]string, 0, 4)
	for i := 0; i < 8; i += 2 {
		groups = append(groups, fmt.Sprintf("%x", uint16(ip[i])<<8|uint16(ip[i+1])))
	}
	for len(groups) > 0 && groups[len(groups)-1] == "0" {
		groups = groups[:len(groups)-1] // trailing zero groups join the "::" of the host half
	}
	return strings.Join(groups, ":") + "::/64"
}

func isZero(b []byte) bool {
	for _, x := range b {
		if x != 0 {
			return false
		}
	}
	return true
}
