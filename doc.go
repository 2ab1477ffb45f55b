// Package masterless is a peer-to-peer mesh over TCP in which no node is a
// server and none a client: every node listens and dials, and for every pair
// of nodes the protocol leaves exactly one connection, whoever dialed and
// however many times. It is a Go translation of the npm package masterless
// 0.4.1, with a new, specified wire protocol (spec/PROTOCOL.md).
//
// Why it is built this way: the protocol is a pure state machine (package
// fsm) that decides everything — which duplicate connection survives, when to
// ping, when to redial a kept peer — and is checked exhaustively and by
// simulation. Package netio is the thin adapter that runs it over real
// sockets. This package is the small, stable surface on top: a [Server] with
// the seed's calls (Connect, Disconnect, Keep, Send, Info, Close) and its
// events delivered to [Events] callbacks.
//
// Across machines, give every node an [Identity] and a [Trust]
// ([WithIdentity], [WithTrust]): every connection is then TLS 1.3 with both
// ends' certificates, and a node can speak only for the id its key is
// trusted for (spec/PROTOCOL.md, section 7).
//
// Events are delivered one at a time, in order, from one goroutine per
// Server; see [Events] for the contract. Sends never re-encode a payload per
// peer ([Server.SendMany]) and are coalesced into few syscalls per connection.
package masterless
