package link

import (
	"time"

	"github.com/masterless-go/masterless/fsm"
)

// Authenticated connections (spec/PROTOCOL.md, section 7). The driver runs
// the security handshake before it hands a connection to the Layer and
// reports the node id it proved the remote holds the key of; the Layer passes
// it to the state machine on the connection's Accepted or Dialed event, where
// the authentication rule (fsm/auth.go) holds every HELLO to it.

// IncomingAuth is Incoming for a connection from source whose security
// handshake proved that the dialer holds the key of node peer ("" for
// plaintext).
func (l *Layer) IncomingAuth(now time.Duration, id fsm.ConnID, source, peer string) {
	c := l.register(id, protoUnknown)
	c.peer = peer
	l.step(now, IncomingEvent(id, source))
}

// DialedAuth is Dialed for a connection whose security handshake proved that
// the acceptor holds the key of node peer ("" for plaintext).
func (l *Layer) DialedAuth(now time.Duration, dial fsm.DialID, id fsm.ConnID, peer string) {
	legacy := l.dials[dial]
	delete(l.dials, dial)
	c := l.register(id, protoBinary)
	c.peer = peer
	if legacy {
		c.proto = protoLegacy
	} else {
		l.tr.Write(id, l.v1.AppendPreamble(l.enc[:0]), nil)
	}
	l.step(now, fsm.Dialed{Dial: dial, Conn: id, Peer: peer})
}

// Authenticated reports that the driver ran a security handshake (TLS) on
// accepted connection id after reporting it with Incoming, while the dialer's
// first plaintext bytes are still to come, and that it proved node peer.
// netio works this way: the connection holds a handshake slot (Incoming)
// from the accept, before its first byte tells a TLS dialer from a
// plaintext one. The Accepted the Layer steps once the decrypted bytes tell
// the protocol carries peer (fsm.Accepted.Peer). Ignored for a connection
// the Layer no longer holds or whose protocol is already known.
func (l *Layer) Authenticated(id fsm.ConnID, peer string) {
	if c := l.conns[id]; c != nil && c.proto == protoUnknown {
		c.peer = peer
	}
}

// DialLegacy reports whether dial, started by the state machine and not yet
// reported Dialed or DialFailed, speaks masterless 0.4.1. A 0.4.1 peer
// speaks plaintext only, so the driver runs no security handshake on it.
func (l *Layer) DialLegacy(dial fsm.DialID) bool { return l.dials[dial] }
