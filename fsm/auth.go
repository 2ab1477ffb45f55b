package fsm

import (
	"fmt"

	"github.com/masterless-go/masterless/wire"
)

// Authentication (spec/PROTOCOL.md, section 7). The adapter runs the security
// handshake (TLS 1.3 with both sides' certificates) before the preamble and
// reports the id it proved on Dialed.Peer or Accepted.Peer; the node checks
// the HELLO against it here, the first thing on every HELLO, so nothing the
// handshake rule decides (who leads, which connection is the session, which
// incarnation is newer) is ever decided for a connection that speaks for a
// node it cannot prove it is:
//
//   - An authenticated connection must name its authenticated id in HELLO
//     (ErrIDMismatch otherwise): a node holding one key speaks only for the
//     node of that key, so it can neither take another pair's session nor
//     forge another node's incarnation.
//   - With Config.RequireAuth, a connection without an authenticated id is
//     refused (ErrUnauthenticated), except a masterless 0.4.1 one under
//     Config.PlaintextLegacy.
//   - Such a plaintext 0.4.1 connection names a node nobody has proven: it is
//     refused for an id that has authenticated here while the peer's record
//     lives, and it cannot evict a session (0.4.1's rule refuses a second
//     connection while one is established; onLegacyHello). An authenticated
//     node with the same id, on the other hand, replaces it at once: its
//     incarnation is never 0, the one 0.4.1 reports. What such an impostor can
//     do is to receive messages sent to an id no authenticated node holds
//     yet; PlaintextLegacy is the user's acceptance of that.
func (n *Node) authentic(c *conn, id string) bool {
	switch {
	case c.authID != "" && c.authID != id && !n.cfg.mutation.noIDCheck(): // see MutationNoIDCheck
		n.closeConn(c, wire.CodeUnauthenticated, fmt.Errorf("%w: HELLO says %q, key is %q's", ErrIDMismatch, id, c.authID))
		return false
	case c.authID != "":
		return true // the caller marks the peer authed once it takes the HELLO
	case n.cfg.RequireAuth && !(c.legacy() && n.cfg.PlaintextLegacy):
		n.closeConn(c, wire.CodeUnauthenticated, fmt.Errorf("%w: plaintext HELLO from %q", ErrUnauthenticated, id))
		return false
	}
	if p := n.peers[id]; p != nil && p.authed {
		n.closeConn(c, wire.CodeUnauthenticated, fmt.Errorf("%w: plaintext HELLO from %q, which has authenticated before", ErrUnauthenticated, id))
		return false
	}
	return true
}

// admit refuses an accepted v1 connection without an authenticated id as soon
// as its protocol is known, when the node requires authentication: the
// HELLO check would refuse it whatever id it names, and a v1 acceptor sends
// its HELLO first, so waiting for the dialer's would hand a dialer that
// proved nothing this node's id, incarnation and address, and would let such
// a dialer, when it leads the pair, grant itself a session with this node
// for a moment before the BYE. A 0.4.1 acceptor sends nothing before the
// dialer's HELLO, which authentic checks (PlaintextLegacy may let it in).
func (n *Node) admit(c *conn) bool {
	if !n.cfg.RequireAuth || c.authID != "" || c.legacy() {
		return true
	}
	n.closeConn(c, wire.CodeUnauthenticated, fmt.Errorf("%w: plaintext connection", ErrUnauthenticated))
	return false
}
