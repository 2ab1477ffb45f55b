package masterless

// Events are a Server's callbacks, set with WithEvents. Any of them may be nil.
//
// Concurrency contract:
//   - Each Server has one dispatcher goroutine. It calls the callbacks one at
//     a time, never concurrently, in the order the events happened. For one
//     peer that order is Connect, then its Messages in the order the peer
//     sent them, then Disconnect.
//   - Listening is the first event of every Server.
//   - A callback may call any Server method except Close, which waits for
//     the callback to return. Calling Send from Message is the normal way to
//     reply.
//   - While a callback runs no other event is delivered, so a slow callback
//     delays all of them. Events wait in a bounded queue (WithDispatchQueue);
//     when it is full the Server stops reading from its peers, and TCP makes
//     their Sends wait in turn. A callback that blocks for longer than the
//     peer timeout may therefore cost sessions their heartbeat: unread, a
//     live peer's PINGs look like silence. This is the price of bounded
//     memory.
//   - A kept peer that reconnects transparently (within the reconnect grace)
//     gets no second Connect and no Disconnect.
//   - Close drops the events not yet delivered.
type Events struct {
	// Listening is called once, with the address from Info.
	Listening func(s *Server, info string)
	// Connect is called when a peer gets a session: id is its id, info the
	// address it advertises.
	Connect func(s *Server, id, info string)
	// Disconnect is called when a connected peer is gone. err says why: it
	// is nil when this Server called Disconnect, and otherwise wraps a
	// sentinel such as ErrPeerClosed, ErrPeerTimeout, ErrUnwanted or
	// ErrNotConnected.
	Disconnect func(s *Server, id string, err error)
	// Message is called for every payload a peer sent. The callback owns
	// payload: it may keep or modify it.
	Message func(s *Server, from string, payload []byte)
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
	return out
}
