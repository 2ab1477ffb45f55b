package netio

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/masterless-go/masterless/fsm"
	"github.com/masterless-go/masterless/wire"
)

// ParseAddr turns a tcp://host:port address into the host:port net.Dial
// wants, or an error wrapping ErrBadAddress: one that no dial could reach
// (no host, a port outside 1-65535, a host that is not UTF-8, a bracketed
// host that is not an IP address) or that no HELLO could advertise (longer
// than wire.MaxInfoLen) is refused here, so that Connect fails at once
// instead of keeping it to redial forever.
//
// An IPv6 address goes in brackets, with its zone if it has one, as
// net.Dial takes it (tcp://[fe80::1%eth0]:7000) or escaped as in a URL
// (RFC 6874: tcp://[fe80::1%25eth0]:7000, "%25" for the "%"); a zone that
// starts with "25" followed by more is read as escaped.
func ParseAddr(addr string) (string, error) {
	if len(addr) > wire.MaxInfoLen {
		return "", fmt.Errorf("%w: %d bytes, at most %d", ErrBadAddress, len(addr), wire.MaxInfoLen)
	}
	rest, ok := strings.CutPrefix(addr, "tcp://")
	if !ok {
		return "", fmt.Errorf("%w: %q does not start with tcp://", ErrBadAddress, addr)
	}
	host, port, err := net.SplitHostPort(rest)
	if err != nil || port == "" || strings.ContainsAny(rest, "/?#@") {
		return "", fmt.Errorf("%w: %q is not tcp://host:port", ErrBadAddress, addr)
	}
	if host == "" || !utf8.ValidString(host) {
		return "", fmt.Errorf("%w: %q has no host, or one that is not UTF-8", ErrBadAddress, addr)
	}
	if p, err := strconv.ParseUint(port, 10, 16); err != nil || p == 0 {
		return "", fmt.Errorf("%w: %q: the port must be a number from 1 to 65535", ErrBadAddress, addr)
	}
	if strings.HasPrefix(rest, "[") {
		ip, err := parseBracketed(host)
		if err != nil {
			return "", fmt.Errorf("%w: %q: %v", ErrBadAddress, addr, err)
		}
		return net.JoinHostPort(ip, port), nil
	}
	if _, err := url.Parse("tcp://" + rest); err != nil {
		return "", fmt.Errorf("%w: %q: %v", ErrBadAddress, addr, err)
	}
	return net.JoinHostPort(host, port), nil
}

// parseBracketed checks the host of a tcp://[host]:port address, an IP
// address with an optional zone, raw (%eth0) or URL-escaped (%25eth0), and
// returns it as net.Dial takes it: the zone unescaped.
func parseBracketed(host string) (string, error) {
	if ip, zone, ok := strings.Cut(host, "%"); ok {
		if escaped, ok := strings.CutPrefix(zone, "25"); ok && escaped != "" {
			var err error
			if zone, err = url.PathUnescape(escaped); err != nil {
				return "", fmt.Errorf("the zone: %v", err)
			}
			host = ip + "%" + zone
		}
		if strings.ContainsFunc(zone, func(r rune) bool { return r <= ' ' || r == 0x7f }) {
			return "", fmt.Errorf("the zone %q holds a space or a control character", zone)
		}
	}
	if _, err := netip.ParseAddr(host); err != nil {
		return "", err
	}
	return host, nil
}

// dial carries out the layer's Dial: connect within the handshake timeout,
// then report Dialed or DialFailed. Close cancels it.
func (n *Runtime) dial(id fsm.DialID, addr string) {
	defer n.wg.Done()
	growStack()
	hostport, err := ParseAddr(addr)
	var nc net.Conn
	var sc *tls.Conn
	var peer string
	if err == nil {
		ctx, cancel := context.WithTimeout(n.dialCtx, n.fcfg.HandshakeTimeout)
		d := net.Dialer{KeepAlive: noTCPKeepAlive}
		nc, err = d.DialContext(ctx, "tcp", hostport)
		if err == nil && n.cfg.TLS != nil && !n.dialLegacy(id) {
			// The handshake runs here, off the core lock; Close cancels it.
			sc, peer, err = n.clientHandshake(ctx, nc)
			if err != nil {
				nc.Close()
				nc = nil
			}
		}
		cancel()
	}
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		if nc != nil {
			nc.Close()
		}
		return
	}
	if err != nil {
		if n.logging(slog.LevelDebug) {
			n.log.Debug("dial failed", "dial", uint64(id), "addr", addr, "err", err)
		}
		n.link.DialFailed(n.now(), id, err)
	} else {
		c := n.newConn(nc)
		c.sc = sc
		c.steady.Store(true) // no detection deadline on a dialed connection: its HELLO may go inline
		if n.logging(slog.LevelDebug) {
			n.log.Debug("dialed", "dial", uint64(id), "addr", addr, "conn", uint64(c.id), "tls", sc != nil, "peer", peer)
		}
		n.allowInline(maxInline, inlineOnce) // the preamble and HELLO (inline.go)
		n.link.DialedAuth(n.now(), id, c.id, peer)
		n.noInline()
		c.run(false)
	}
	n.settle()
	n.unlockInline()
}

// dialLegacy reports whether dial speaks masterless 0.4.1, which has no TLS.
func (n *Runtime) dialLegacy(id fsm.DialID) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.link.DialLegacy(id)
}
