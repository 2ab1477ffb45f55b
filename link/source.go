package link

import (
	"net/netip"
	"strings"

	"github.com/masterless-go/masterless/fsm"
)

// IncomingEvent is the state machine's Incoming for accepted connection id
// from remote address source, as an adapter reports it: "host:port",
// "[v6]:port" or a bare host. When the host is an IP address it is parsed
// into Incoming.IP (IPv4 in its IPv4-mapped form, the zone dropped); the
// rule that groups addresses into sources is the state machine's
// (fsm/source.go). Parsing is done here so that fsm needs no address
// parser.
func IncomingEvent(id fsm.ConnID, source string) fsm.Incoming {
	ev := fsm.Incoming{Conn: id, Source: source}
	if ip, ok := parseIP(source); ok {
		ev.IP, ev.HasIP = ip.Unmap().WithZone("").As16(), true
	}
	return ev
}

// parseIP reads the IP address of source, with or without a port and
// brackets.
func parseIP(source string) (netip.Addr, bool) {
	if source == "" {
		return netip.Addr{}, false
	}
	if ap, err := netip.ParseAddrPort(source); err == nil {
		return ap.Addr(), true
	}
	host := source
	if i := strings.LastIndexByte(source, ':'); i >= 0 && !strings.Contains(source[:i], ":") {
		host = source[:i] // name:port (a name has no colon; a bare IPv6 address has several)
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	ip, err := netip.ParseAddr(host)
	return ip, err == nil
}
