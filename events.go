package masterless

import "github.com/masterless-go/masterless/fsm"

// Events are a Server's callbacks, set with WithEvents. Any of them may be nil.
//
// Concurrency contract:
//   - Each Server has one dispatcher goroutine. It calls the callbacks one at
//     a time, never concurrently, in the order the events happened. For one
//     peer that order is Connect, then its Messages in the order the peer
//     sent them, then Disconnect.
//   - Listening is the first event of every Server.
//   - A callback may call any Server method. Calling Send from Message is
//     the normal way to reply. Close from a callback returns once every
//     goroutine of the Server but the callbacks' own has ended; that one
//     ends when the callback returns, and nothing more is delivered.
//     SendContext and SendManyContext from a callback never wait for room
//     (it could depend on the callbacks' progress): where they would, they
//     return an error wrapping ErrQueueFull.
//   - While a callback runs no other event is delivered, so a slow callback
//     delays all of them. It costs no session: the Server keeps reading its
//     sockets (heartbeats included), and each peer may have at most its
//     credit (WithWindow, default 1 MiB, grown to 4 MiB at most while the
//     callbacks keep up with it, WithMaxWindow; plus one message) waiting
//     for the callbacks; a peer that has used its credit holds further messages in
//     its own send queue until the callbacks catch up. (0.4.1 peers have no
//     credit: for them the queue is bounded by WithDispatchQueue, past which
//     the Server stops reading them.)
//   - A peer that reconnects transparently (within the reconnect grace)
//     gets no second Connect and no Disconnect: one this Server keeps, and
//     one it does not keep but holds messages for that the peer has not
//     acknowledged, when the session ended without a user saying stop (its
//     own Disconnect, the peer's Disconnect or Close) or, as leader, the
//     peer finding that neither end keeps the pair: the peer may keep the
//     pair and come back for them. Without such messages, a peer this
//     Server does not keep is reported gone when its session ends.
//   - Close drops the events not yet delivered.
type Events struct {
	// Listening is called once, with the address from Info.
	Listening func(s *Server, info string)
	// Connect is called when a peer gets a session: id is its id, info the
	// address it advertises.
	Connect func(s *Server, id, info string)
	// Disconnect is called when a connected peer is gone. err says why: it
	// is nil when this Server called Disconnect, and otherwise wraps a
	// sentinel such as ErrPeerClosed, ErrConnectionLost, ErrPeerTimeout,
	// ErrUnwanted or ErrNotConnected.
	Disconnect func(s *Server, id string, err error)
	// Message is called for every payload a peer sent. The callback owns
	// payload: it may keep or modify it.
	Message func(s *Server, from string, payload []byte)
	// Lost is called with messages Send accepted for peer id that the peer
	// has not acknowledged and that this node will not send again: the peer
	// restarted (a new incarnation) before acknowledging them, stayed away
	// longer than the reconnect grace, was disconnected while this node
	// does not keep it, or announced a max frame size too small for a
	// message queued while it was away (err then also wraps
	// ErrPayloadTooLarge). A message already on its way when that happened
	// may still have reached the peer (the old process, or the peer's user
	// just before a Disconnect): Lost means "not known to be delivered",
	// never "delivered twice". They come in the order they were sent; err
	// wraps ErrMessagesLost and says why. The callback owns the payloads.
	// Nothing else is ever lost on a v1 session; a masterless 0.4.1 peer
	// neither acknowledges nor resends, so there the messages in flight
	// when its connection drops are lost without this event.
	Lost func(s *Server, id string, payloads [][]byte, err error)
	// Member is called, with WithDiscovery, when a member joins (or is
	// known in a newer incarnation), leaves gracefully, or is forgotten
	// after the member timeout (err says so). m carries its id, address,
	// incarnation and Left; its Kept and Connected are not filled in (they
	// read false): Members gives the whole table with them.
	Member func(s *Server, m Member, change MemberChange, err error)
}

// bind turns e into netio's callbacks for s. (New holds events back with
// netio's EventsGate until s is fully built.)
func (e Events) bind(s *Server) (out netioEvents) {
	if f := e.Listening; f != nil {
		out.Listening = func(info string) { f(s, info) }
	}
	if f := e.Connect; f != nil {
		out.Connected = func(id, info string) { f(s, id, info) }
	}
	if f := e.Disconnect; f != nil {
		out.Disconnected = func(id string, err error) { f(s, id, err) }
	}
	if f := e.Message; f != nil {
		out.Message = func(from string, p []byte) { f(s, from, p) }
	}
	if f := e.Lost; f != nil {
		out.Lost = func(id string, p [][]byte, err error) { f(s, id, p, err) }
	}
	if f := e.Member; f != nil {
		out.Member = func(k fsm.ActionKind, id string, inc uint64, addr string, err error) {
			f(s, Member{ID: id, Addr: addr, Incarnation: inc, Left: k == fsm.ActMemberLeft}, memberChange(k), err)
		}
	}
	return out
}
