package masterless

import (
	"context"
	"fmt"

	"github.com/masterless-go/masterless/netio"
)

type netioEvents = netio.Events

// Server is one node of a masterless mesh: it listens, dials, and keeps at
// most one connection with every other node. All its methods are safe for
// concurrent use and from its own event callbacks, where Close and the
// waiting senders behave as Events says.
type Server struct {
	n *netio.Runtime
}

// New creates a Server with the given id, unique among the nodes that will
// meet (1 to 255 bytes), and starts listening (by default on 127.0.0.1, any
// free port). The Listening event follows.
func New(id string, opts ...Option) (*Server, error) {
	var st settings
	st.cfg.FSM.ID = id
	for i, o := range opts {
		if o == nil {
			return nil, fmt.Errorf("%w: option %d of %d is nil", ErrBadConfig, i+1, len(opts))
		}
		if err := o(&st); err != nil {
			return nil, err
		}
	}
	if err := st.secure(); err != nil {
		return nil, err
	}
	s := &Server{}
	ready := make(chan struct{})
	st.cfg.Events = st.events.bind(s)
	st.cfg.EventsGate = ready
	n, err := netio.Start(st.cfg)
	if err != nil {
		return nil, err
	}
	s.n = n
	close(ready)
	return s, nil
}

// ID returns the server's id.
func (s *Server) ID() string { return s.n.ID() }

// Info returns the tcp://host:port address other servers Connect to.
func (s *Server) Info() string { return s.n.Info() }

// Connect dials uri (tcp://host:port, as another server's Info returns),
// waits for the handshake and returns the id of the server there. That peer
// is now kept: if its connection is lost, this server reconnects to it. If a
// connection with that server already exists — it dialed us first, or our
// dial duplicated a session — Connect returns its id and nil. It fails with
// ErrSelfConnect for this server's own address, ErrHandshakeTimeout,
// ErrDialFailed, ErrVersionMismatch and the like, or ctx's error. With an
// identity (WithIdentity) it also fails with ErrUntrusted (the peer's
// certificate is not trusted here, or this server's is not there),
// ErrCertificateExpired, ErrIDMismatch (the peer's HELLO names another id
// than its certificate) or ErrUnauthenticated (the peer speaks no TLS).
//
// A failed Connect still leaves uri kept: the server dials it again with
// the reconnect backoff (WithReconnectBackoff) until a node answers there,
// which is then kept as if this Connect had reached it, so a cluster started
// from a static list of addresses converges after refused dials, timeouts
// and peers that start late. The retries end with StopConnecting(uri), when
// a node answers (Disconnect that node to stop keeping it), or at once when
// the first failure says retrying cannot help without a change of
// configuration: ErrSelfConnect, ErrDuplicateID, ErrVersionMismatch,
// ErrUntrusted, ErrCertificateExpired, ErrIDMismatch, ErrUnauthenticated.
// When ctx ends first, Connect stops waiting but the address stays kept, as
// after a handshake timeout. WithConnectOnce turns the retries off.
func (s *Server) Connect(ctx context.Context, uri string) (peerID string, err error) {
	return s.n.Connect(ctx, uri)
}

// Disconnect closes the connection with peer id and stops keeping it. A
// peer that keeps this server will reconnect. It fails with ErrUnknownPeer
// for an id this server does not know, its own included.
func (s *Server) Disconnect(id string) error { return s.n.Disconnect(id) }

// Keep sets whether this server keeps peer id: reconnects to it whenever its
// connection is lost. When neither end keeps a pair, its connection is closed.
// Ceasing to keep a peer whose connection is down does not end the wait
// for it while messages to it are not yet acknowledged: it may keep the
// pair and come back for them within the reconnect grace.
// Keeping an id this server does not know yet makes a record for it, as for
// a kept peer away: sends to it are queued until it connects (it dials this
// server, or discovery finds it) or the reconnect grace ends them with Lost.
// A peer this server knew and has since forgotten (the 4,096 most recent)
// is redialed where it was last reached, as a kept peer away.
// Keeping an id no node can have (empty, or over 255 bytes) or this
// server's own fails with ErrUnknownPeer.
func (s *Server) Keep(id string, keep bool) error { return s.n.SetKeep(id, keep) }

// IsKept reports whether this server keeps peer id.
func (s *Server) IsKept(id string) bool { return s.n.IsKept(id) }

// Connections returns the sorted ids of the peers with a live connection.
func (s *Server) Connections() []string { return s.n.Sessions() }

// Send sends payload to peer id and reports whether it was accepted. It
// never waits (but see 0.4.1 peers below), so it is safe from any event
// callback. Accepted, the message is delivered exactly once and in order,
// across reconnects, unless the peer restarts, stays away past the
// reconnect grace or cannot take it (see Events.Lost), in which case the
// Lost event hands it back. Send returns
// false for an unknown or disconnected peer, a closed server, or a full
// send queue: the messages not yet acknowledged by the peer fill it
// (WithSendQueue); retry, or wait for room with SendContext. SendErr says
// which. payload may be reused as soon as Send returns.
//
// On a session with a masterless 0.4.1 peer, which has no flow control,
// Send waits while the connection's output buffer is over its bound
// (WithSendBuffer), until the peer reads; a peer that reads nothing for the
// peer timeout is disconnected, which ends the wait. 0.4.1 neither
// acknowledges nor resends: there a message is delivered at most once, and
// those in flight when the connection drops are lost without a Lost event
// (see the README, "Talking to masterless 0.4.1 nodes").
func (s *Server) Send(id string, payload []byte) bool { return s.n.Send(id, payload) == nil }

// SendErr is Send with the reason for a refusal: an error wrapping
// ErrUnknownPeer (this server's own id among the ids it does not know),
// ErrNotConnected, ErrQueueFull, ErrPayloadTooLarge, ErrNotJSONObject or
// ErrClosed.
func (s *Server) SendErr(id string, payload []byte) error { return s.n.Send(id, payload) }

// SendManyContext is SendMany for producers that can wait: it waits for room
// where a peer's queue is full (see SendContext), and returns how many peers
// got payload and the first error other than a full queue. When ctx ends
// or the server closes while it waits, the error wraps ctx's error and
// ErrQueueFull, or ErrClosed, and that first error too. Called from an event
// callback it never waits, as SendContext: the error then wraps ErrQueueFull.
func (s *Server) SendManyContext(ctx context.Context, ids []string, payload []byte) (int, error) {
	return s.n.SendManyContext(ctx, ids, payload)
}

// SendContext is Send for producers that can wait: while the peer's send
// queue is full it waits for room until ctx is done (returning an error
// wrapping ctx.Err()) or the server closes. Toward a masterless 0.4.1 peer,
// which has no credit, the message is accepted first and the call then
// waits while that connection's output buffer is over its bound (see Send);
// ctx ends that wait, and the call returns nil: the message is sent. Called
// from an event callback it never waits for room: where it would, it returns
// the refusal (an error wrapping ErrQueueFull) at once, since the room could
// depend on that callback returning. It leaves free the room kept for
// replies sent from callbacks.
func (s *Server) SendContext(ctx context.Context, id string, payload []byte) error {
	return s.n.SendContext(ctx, id, payload)
}

// SendMany sends payload to every peer in ids, encoding it once, and returns
// how many accepted it (see Send). A payload of 512 bytes or more is kept
// once for all of them until the last acknowledges it, not once per peer.
func (s *Server) SendMany(ids []string, payload []byte) int { return s.n.SendMany(ids, payload) }

// Close says goodbye to every peer, closes all connections and the listener,
// and returns once every goroutine of the Server has ended: the goodbyes take
// at most 200 ms, even toward a peer that has stopped reading, and an event
// callback that is running is waited for. Events not yet delivered are
// dropped. Close is idempotent. Called from an event callback, it returns
// once every other goroutine has ended; the callbacks' goroutine ends when
// that callback returns, and no event is delivered after it.
func (s *Server) Close() error { return s.n.Close() }

// String describes the server for logs.
func (s *Server) String() string { return fmt.Sprintf("masterless.Server(%s at %s)", s.ID(), s.Info()) }
