package masterless

import (
	"net"
	"time"

	"github.com/masterless-go/masterless/fsm"
)

// PeerStats describes one peer a server knows. The counts run from when the
// server learned of the peer: a peer that neither end keeps is forgotten a
// while after its session ends (two peer timeouts), and its counts with it;
// one this server holds unacknowledged messages for, not before the
// reconnect grace has passed without it coming back.
type PeerStats struct {
	ID string
	// State is where the peer stands: "connected" (it has a session, the
	// one Connections lists), "connecting" (a dial or handshake with it is
	// under way, including a session this server granted that the peer has
	// not yet confirmed),
	// "reconnecting" (kept and waiting to redial, or not kept but waited for
	// because it has messages from this server not yet acknowledged, within
	// the reconnect grace),
	// "unreachable" (kept, away for longer than the grace) or "idle"
	// (neither kept nor connected; it will be forgotten).
	State string
	Kept  bool // this server reconnects to it (Keep, Connect)
	// Connected: the Connect event was emitted (the callback may not have
	// run yet) and no Disconnect since. The end that follows the pair's
	// handshake (spec/PROTOCOL.md 3.3) lists a new session (Connections,
	// State "connected") from the grant it adopted, a round trip before
	// its Connect event, which comes when the leading end confirms it.
	Connected bool
	// Incarnation is the peer's on its current session (the one State
	// "connected" shows) or, without one, its last: it changes when the
	// peer restarts.
	Incarnation uint64
	// Queued and QueuedBytes are the messages waiting for it (sent and not
	// yet acknowledged, or waiting for a session) and their payload bytes.
	Queued      int
	QueuedBytes int
	// SessionAge is how long the current session has lasted; 0 without
	// one, as while State is "connecting": a session this server granted
	// and the peer has not confirmed shows no age, no addresses and no wire
	// bytes, since the peer may still refuse it.
	SessionAge time.Duration
	// Reconnects counts the sessions with it after the first, each from
	// when State first shows it connected.
	Reconnects uint64
	// MessagesIn and BytesIn count the messages from it accepted into this
	// server's delivery queue, each once (a slow callback may not have been
	// handed them yet: the queue holds up to a window of them), and their
	// payload bytes; MessagesOut
	// and BytesOut the messages sent to it (a message resent after a
	// reconnect counts again) and theirs.
	MessagesIn, MessagesOut uint64
	BytesIn, BytesOut       uint64
	// WireIn and WireOut are the bytes read from and written to the current
	// session's connection: framing, handshake and heartbeats included (on a
	// TLS connection, the protocol's bytes inside TLS, without its records'
	// overhead or its handshake).
	WireIn, WireOut uint64
	// RTT is the latest round-trip time measured by the heartbeat, and
	// SmoothedRTT the moving average of the samples; 0 until the first
	// sample (about two heartbeat intervals into a session) and with
	// masterless 0.4.1 peers, whose heartbeat carries no time.
	RTT, SmoothedRTT time.Duration
	// Window is the credit window this server grants it now: how many
	// payload bytes (plus 32 a message) of its messages may wait for the
	// callbacks. It starts at WithWindow's and grows up to WithMaxWindow's
	// while the callbacks take its messages fast. (A masterless 0.4.1 peer
	// gets no credit: it shows the window a v2 peer would start with.)
	Window int
	// LastEnd is why the last session with it ended (nil if none did; test
	// it with errors.Is: ErrDisconnected after this server's Disconnect,
	// ErrPeerClosed when the peer disconnected or shut down,
	// ErrConnectionLost when the connection was reset or failed, ErrPeerTimeout,
	// ErrReplaced, ErrProtocol, ...), at LastEndTime.
	LastEnd     error
	LastEndTime time.Time
	// LocalAddr and RemoteAddr are the ends of the TCP connection that
	// carries the session; nil without one.
	LocalAddr, RemoteAddr net.Addr
}

// Stats is a snapshot of a server, for monitoring and diagnostics. The
// counts are totals since New.
type Stats struct {
	Peers       []PeerStats // every peer the server knows, sorted by id
	Handshaking int         // connections holding a handshake slot: handshake under way, or a session the other end has not confirmed yet
	// Connecting lists, sorted, the addresses this server keeps trying
	// because a Connect to them has not reached a node yet (see Connect,
	// StopConnecting and WithConnectOnce); an address leaves the list when
	// a node answers there (that node is then a kept peer).
	Connecting []string

	Handshakes       uint64 // sessions established, counted when Stats starts to show them connected (a leader's once the follower confirmed it, a follower's at the grant: spec/PROTOCOL.md 3.3)
	HandshakesFailed uint64 // connections closed before they became a session (the refused duplicates and grants among them)
	// Duplicates counts the connections this server refused because they
	// duplicated a session or could not be one, by reason: "duplicate",
	// "stale incarnation", "replaced" (an older session gave way to a newer
	// one), "self-connect", "duplicate id", "unauthenticated" (it did not
	// prove the id it claimed). They are also in Closed. A connection
	// from this server to itself through a relay (its own address not
	// recognized before the dial) is two connections here, the dial and
	// the accept, and counts twice as "self-connect", as does
	// HandshakesFailed.
	Duplicates map[string]uint64
	// Closed counts the connections this server closed, by reason (the
	// reasons of Duplicates, and "disconnected", "unwanted", "protocol
	// error", "handshake timeout", "peer timeout", "shutdown", "too many
	// handshakes", "evicted" (a silent handshake closed to make room for a
	// new connection), "other"); PeerClosed those a peer closed with a reason,
	// by that reason ("normal", "shutdown", "duplicate", ...); Lost those
	// that ended with no reason from either end (EOF, reset, a failed
	// write). Each connection counts once.
	Closed     map[string]uint64
	PeerClosed map[string]uint64
	Lost       uint64
	// ProtocolErrors counts the connections closed because the peer broke
	// the protocol (garbage, oversized or out-of-order frames); also in
	// Closed as "protocol error".
	ProtocolErrors uint64
	// PauseGraces counts the sessions this server did not time out when
	// its own timer ran more than a heartbeat late, or its reading of the
	// network lagged that much (its process starved of CPU, by other
	// processes or by its own goroutines, or stopped): each got as long
	// again as it was late, at most one more peer timeout (spec/PROTOCOL.md
	// 4). A count that grows says the machine is too loaded for the
	// heartbeat settings.
	PauseGraces uint64
	// Messages and payload bytes received (accepted into the delivery
	// queue, as PeerStats counts them: a slow callback may not have been
	// handed them yet) and sent, and the bytes of every socket, as in
	// PeerStats but for all peers.
	MessagesIn, MessagesOut uint64
	BytesIn, BytesOut       uint64
	WireIn, WireOut         uint64
}

// Stats returns a snapshot of the server's peers, connections and counts.
// It works after Close too, showing the counts as they ended: every peer
// the server knew then, "idle", not connected and not kept, with its counts
// and its last end (ErrClosed for a session Close ended).
func (s *Server) Stats() Stats {
	ns := s.n.Stats()
	k := ns.Counters
	st := Stats{
		Handshaking: ns.Handshaking, Peers: make([]PeerStats, len(ns.Peers)), Connecting: ns.Connecting,
		Handshakes: k.Handshakes, HandshakesFailed: k.HandshakesFailed,
		Duplicates: map[string]uint64{}, Closed: map[string]uint64{}, PeerClosed: map[string]uint64{},
		Lost: k.Lost, ProtocolErrors: k.Closed[fsm.ReasonProtocol], PauseGraces: k.PauseGraces,
		MessagesIn: k.MessagesIn, MessagesOut: k.MessagesOut, BytesIn: k.BytesIn, BytesOut: k.BytesOut,
		WireIn: ns.WireIn, WireOut: ns.WireOut,
	}
	for r, v := range k.Closed {
		st.Closed[r.String()] = v
		if r.Refusal() {
			st.Duplicates[r.String()] = v
		}
	}
	for c, v := range k.PeerClosed {
		st.PeerClosed[c.String()] = v
	}
	for i, p := range ns.Peers {
		st.Peers[i] = PeerStats{
			ID: p.ID, State: p.State.String(), Kept: p.Kept, Connected: p.Connected, Incarnation: p.Incarnation,
			Queued: p.Queued, QueuedBytes: p.QueuedBytes, SessionAge: p.SessionAge, Reconnects: max(p.Sessions, 1) - 1,
			MessagesIn: p.MessagesIn, MessagesOut: p.MessagesOut, BytesIn: p.BytesIn, BytesOut: p.BytesOut,
			WireIn: p.WireIn, WireOut: p.WireOut, RTT: p.RTT, SmoothedRTT: p.SmoothedRTT, Window: p.Window,
			LastEnd: p.LastEnd, LastEndTime: p.LastEndTime, LocalAddr: p.LocalAddr, RemoteAddr: p.RemoteAddr,
		}
	}
	return st
}
