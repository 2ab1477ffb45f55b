package link

import (
	"fmt"
	"time"

	"github.com/masterless-go/masterless/fsm"
	"github.com/masterless-go/masterless/internal/recent"
	"github.com/masterless-go/masterless/wire"
)

// Layer drives one fsm.Node with bytes. It is not safe for concurrent use:
// one goroutine at a time calls its methods (netio holds its core lock).
type Layer struct {
	node     *fsm.Node
	tr       Transport
	observe  StepObserver
	v1       wire.Binary
	maxFrame int

	conns map[fsm.ConnID]*conn
	// recent holds the connections written on lately (writing); forget
	// clears a connection's slot.
	recent recent.Conns[*conn]
	// dials maps a dial in flight to whether it speaks 0.4.1, which decides
	// the codec of the connection it opens.
	dials map[fsm.DialID]bool

	enc []byte // scratch for encoding control frames
	hdr []byte // scratch for a DATA header
	// During SendMany, the payload and its encodings, each made once for all
	// the peers that speak it.
	many        bool
	manyPayload []byte
	manyFrame   []byte     // v1 DATA frame
	legacyEnc   []byte     // 0.4.1 JSON line
	errs        []error    // scratch for SendMany's results
	frame       wire.Frame // the frame being received: the node reads it in place
	// run gathers the small DATA frames a step writes on one connection,
	// runConn, back to back, so that they reach the driver in one Write
	// (an Admit's batch, a resend after an ACK): flushRun hands it over.
	run     []byte
	runConn fsm.ConnID
}

// New returns a Layer that drives node and carries out its actions through
// tr. The node must be fresh: the Layer must see every connection event.
func New(node *fsm.Node, tr Transport) *Layer {
	mf := node.Config().MaxFrameSize
	return &Layer{
		node:     node,
		tr:       tr,
		v1:       wire.Binary{MaxFrameSize: mf, Features: node.Features()},
		maxFrame: mf,
		conns:    make(map[fsm.ConnID]*conn),
		dials:    make(map[fsm.DialID]bool),
		hdr:      make([]byte, 0, 8),
	}
}

// SetObserver sets the function called after every step (nil: none).
func (l *Layer) SetObserver(o StepObserver) { l.observe = o }

// Node returns the state machine, for read-only views (status, tests).
func (l *Layer) Node() *fsm.Node { return l.node }

// Step feeds the state machine an event that concerns no connection's bytes:
// a user command (Connect, CancelConnect, Disconnect, SetKeep, Send,
// SendMany, Shutdown), Listening or Tick. Connection events have methods of
// their own. It returns what fsm.Node.Step returns.
func (l *Layer) Step(now time.Duration, ev fsm.Event) error {
	switch e := ev.(type) {
	case fsm.Incoming, fsm.Accepted, fsm.Dialed, fsm.DialFailed, fsm.FrameReceived, fsm.DataReceived, fsm.Malformed, fsm.ConnClosed:
		panic("link: Step: connection events go through the Layer's own methods")
	case fsm.SendMany:
		return l.sendMany(now, e)
	}
	return l.step(now, ev)
}

// Send steps a Send of payload to peer. On a session the DATA goes out
// without copying payload beyond the driver's Write.
func (l *Layer) Send(now time.Duration, peer string, payload []byte) error {
	return l.send(now, fsm.Send{Peer: peer, Payload: payload})
}

// SendAfter is Send after the messages staged in after (fsm.Send.After),
// in one step; after may be nil.
func (l *Layer) SendAfter(now time.Duration, peer string, payload []byte, after *fsm.Admit) error {
	return l.send(now, fsm.Send{Peer: peer, Payload: payload, After: after})
}

// SendReserve is Send for a producer that can wait for room
// (fsm.Send.Reserve): it leaves alone the room kept for answers.
func (l *Layer) SendReserve(now time.Duration, peer string, payload []byte) error {
	return l.send(now, fsm.Send{Peer: peer, Payload: payload, Reserve: true})
}

// send is step for a Send, through fsm.Node.Send (no event boxed).
func (l *Layer) send(now time.Duration, e fsm.Send) error {
	err := l.node.Send(now, &e)
	acts := l.carryOut()
	if l.observe != nil {
		l.observe(e, err, acts)
	}
	l.node.Release()
	return err
}

// SendMany sends payload to each of peers in one step (fsm.SendMany) and
// returns how many accepted it.
func (l *Layer) SendMany(now time.Duration, peers []string, payload []byte) int {
	if cap(l.errs) < len(peers) {
		l.errs = make([]error, len(peers))
	}
	errs := l.errs[:len(peers)]
	_ = l.sendMany(now, fsm.SendMany{Peers: peers, Payload: payload, Errs: errs})
	sent := 0
	for _, err := range errs {
		if err == nil {
			sent++
		}
	}
	clear(errs)
	return sent
}

// sendMany steps e with the payload encoded once: the state machine writes
// the new message's DATA with e.Payload itself to every peer whose credit
// allows it; v1 peers get the same encoded frame, 0.4.1 peers share one
// JSON-line encoding.
func (l *Layer) sendMany(now time.Duration, e fsm.SendMany) error {
	l.many, l.manyPayload = true, e.Payload
	l.manyFrame, l.legacyEnc = l.manyFrame[:0], l.legacyEnc[:0]
	err := l.step(now, e)
	l.many, l.manyPayload = false, nil
	if cap(l.manyFrame) > 64<<10 {
		l.manyFrame = nil // do not keep a big payload's buffer
	}
	if cap(l.legacyEnc) > 64<<10 {
		l.legacyEnc = nil
	}
	return err
}

// sameBytes reports whether a and b are the same slice of memory.
func sameBytes(a, b []byte) bool {
	return len(a) == len(b) && (len(a) == 0 || &a[0] == &b[0])
}

// Incoming reports a TCP connection the listener accepted, with a fresh id,
// from source (the dialer's address without its port; see fsm.Incoming).
// Nothing is written on it until the dialer's first bytes tell its protocol.
// It is IncomingAuth for a plaintext connection.
func (l *Layer) Incoming(now time.Duration, id fsm.ConnID, source string) {
	l.IncomingAuth(now, id, source, "")
}

// Dialed reports that dial succeeded with a connection of a fresh id. The
// preamble (v1) goes out before anything the state machine writes. It is
// DialedAuth for a plaintext connection.
func (l *Layer) Dialed(now time.Duration, dial fsm.DialID, id fsm.ConnID) {
	l.DialedAuth(now, dial, id, "")
}

// DialFailed reports that dial failed with err.
func (l *Layer) DialFailed(now time.Duration, dial fsm.DialID, err error) {
	delete(l.dials, dial)
	l.step(now, fsm.DialFailed{Dial: dial, Err: err})
}

// Closed reports that connection id was closed by the peer or failed (EOF,
// reset, a write error); err says why. It is ignored for a connection the
// Layer already closed (and returns nil). It returns the reason the state
// machine was given: err, or, when the connection ended in the middle of a
// frame, err wrapped with wire.ErrMalformedFrame and saying so (a truncated
// frame: the peer's mistake, its crash mid-write, or a cut).
func (l *Layer) Closed(now time.Duration, id fsm.ConnID, err error) error {
	c := l.conns[id]
	if c == nil {
		return nil
	}
	if k := c.end - c.start; k > 0 && c.proto != protoUnknown {
		err = fmt.Errorf("%w: %w: the connection ended %d bytes into a frame", err, wire.ErrMalformedFrame, k)
	}
	l.forget(id, c)
	l.step(now, fsm.ConnClosed{Conn: id, Err: err})
	return err
}

// Open reports whether the Layer still holds connection id: false once it
// closed it or the driver reported it closed.
func (l *Layer) Open(id fsm.ConnID) bool { return l.conns[id] != nil }

// forget drops connection id: nothing more is parsed or written on it.
func (l *Layer) forget(id fsm.ConnID, c *conn) {
	delete(l.conns, id)
	l.recent.Forget(id)
	c.closed, c.in = true, nil
}

func (l *Layer) register(id fsm.ConnID, p proto) *conn {
	if id == 0 || l.conns[id] != nil {
		panic(fmt.Sprintf("link: connection id c%d is zero or in use", id))
	}
	c := &conn{proto: p}
	l.conns[id] = c
	return c
}

// step feeds ev to the state machine and carries out its actions.
func (l *Layer) step(now time.Duration, ev fsm.Event) error {
	err := l.node.Step(now, ev)
	acts := l.carryOut()
	if l.observe != nil {
		l.observe(rebox(ev), err, acts)
	}
	l.node.Release() // no payload of a Lost action stays referenced (fsm.Node.Release)
	return err
}

// receiveFrame steps a FrameReceived of *f on connection id
// (fsm.Node.ReceiveFrame: no copy of the frame in an event) and carries out
// the actions.
func (l *Layer) receiveFrame(now time.Duration, id fsm.ConnID, f *wire.Frame) {
	l.node.ReceiveFrame(now, id, f)
	acts := l.carryOut()
	if l.observe != nil {
		l.observe(fsm.FrameReceived{Conn: id, Frame: *f}, nil, acts)
	}
	l.node.Release()
}

// receiveData steps a DataReceived of frames on connection id
// (fsm.Node.ReceiveData: no event boxed) and carries out the actions.
func (l *Layer) receiveData(now time.Duration, id fsm.ConnID, frames []byte, size int) {
	l.node.ReceiveData(now, id, frames, size)
	acts := l.carryOut()
	if l.observe != nil {
		l.observe(fsm.DataReceived{Conn: id, Frames: frames, FrameSize: size}, nil, acts)
	}
	l.node.Release()
}

// carryOut carries out the actions of the step just taken and returns them
// (for the observer).
func (l *Layer) carryOut() []fsm.Action {
	acts := l.node.Ready()
	for i := range acts {
		l.apply(&acts[i])
	}
	l.flushRun()
	return acts
}

// runMax is the largest payload whose DATA frame joins a run: a larger one
// is written from where it is, as copying it twice would cost more than
// the Write it saves.
const runMax = 2 << 10

// runKeep bounds the run buffer: a run that reaches it is handed over, and
// the buffer, reused from step to step, stays at about that size.
const runKeep = 256 << 10

// flushRun hands the gathered DATA frames to the driver.
func (l *Layer) flushRun() {
	if len(l.run) == 0 {
		return
	}
	l.tr.Write(l.runConn, l.run, nil)
	l.run = l.run[:0]
	if cap(l.run) > 2*runKeep {
		l.run = nil
	}
}

// rebox returns a copy of ev in a box of its own. Handing ev itself to the
// observer would make every event escape to the heap, an allocation per
// step (the box of a FrameReceived is 150 bytes) on the data path of every
// node, observed or not; the copy costs only when an observer is set.
func rebox(ev fsm.Event) fsm.Event {
	switch e := ev.(type) {
	case fsm.FrameReceived:
		return e
	case fsm.DataReceived:
		return e
	case fsm.Send:
		return e
	case fsm.SendMany:
		return e
	case fsm.Consumed:
		return e
	case fsm.Tick:
		return e
	case fsm.Incoming:
		return e
	case fsm.Accepted:
		return e
	case fsm.Dialed:
		return e
	case fsm.DialFailed:
		return e
	case fsm.Malformed:
		return e
	case fsm.ConnClosed:
		return e
	case fsm.Listening:
		return e
	case fsm.Connect:
		return e
	case fsm.CancelConnect:
		return e
	case fsm.Disconnect:
		return e
	case fsm.SetKeep:
		return e
	case fsm.Shutdown:
		return e
	case fsm.Admit:
		return e
	case fsm.ReadPaused:
		return e
	case fsm.FrameInProgress:
		return e
	}
	panic("link: rebox: an event kind is missing from its list")
}

func (l *Layer) apply(a *fsm.Action) {
	if len(l.run) > 0 && (a.Kind != fsm.ActWrite || a.Conn != l.runConn || a.Frame.Type != wire.Data || len(a.Frame.Payload) > runMax || l.many) {
		l.flushRun() // the frames of a run go out before anything that follows them
	}
	switch a.Kind {
	case fsm.ActWrite:
		l.write(a.Conn, &a.Frame)
	case fsm.ActWriteData:
		l.writeFrames(a.Conn, a.Frame.Payload)
	case fsm.ActClose:
		if c := l.conns[a.Conn]; c != nil {
			l.forget(a.Conn, c)
			l.tr.Close(a.Conn, a.Err)
		}
	case fsm.ActDial:
		l.dials[a.Dial] = a.Legacy
		l.tr.Dial(a.Dial, a.Addr)
	default:
		l.tr.Notify(a)
	}
}

// writing returns the connection id that the state machine writes on, nil
// if the Layer does not hold it (a stream writes on one connection over and
// over, a SendMany on the same few: package recent).
func (l *Layer) writing(id fsm.ConnID) *conn {
	if c := l.recent.Get(id); c != nil {
		return c
	}
	c := l.conns[id]
	if c != nil {
		l.recent.Put(id, c)
	}
	return c
}

// writeFrames queues frames, DATA frames the state machine holds encoded,
// on connection id as they are.
func (l *Layer) writeFrames(id fsm.ConnID, frames []byte) {
	c := l.writing(id)
	if c == nil || c.proto != protoBinary {
		panic(fmt.Sprintf("link: fsm wrote %d bytes of DATA frames on c%d, which the layer does not hold in the binary protocol", len(frames), id))
	}
	l.tr.Write(id, frames, nil)
}

// write encodes f for connection id's protocol and queues it. A frame the
// codec refuses is a bug of this module (the configuration was checked when
// the node started), so it panics with the frame.
func (l *Layer) write(id fsm.ConnID, f *wire.Frame) {
	c := l.writing(id)
	if c == nil {
		panic(fmt.Sprintf("link: fsm wrote %s on c%d, which the layer does not hold", f.String(), id))
	}
	var err error
	switch {
	case c.proto == protoBinary && f.Type == wire.Data && l.many && sameBytes(f.Payload, l.manyPayload):
		if len(l.manyFrame) == 0 {
			l.manyFrame = wire.AppendData(l.manyFrame, f.Payload)
		}
		l.tr.Write(id, l.manyFrame, nil) // one copy per peer, of a frame encoded once
		return
	case c.proto == protoBinary && f.Type == wire.Data && len(f.Payload) <= runMax:
		l.runConn = id
		l.run = wire.AppendData(l.run, f.Payload)
		if len(l.run) >= runKeep {
			l.flushRun()
		}
		return
	case c.proto == protoBinary && f.Type == wire.Data:
		l.hdr = wire.AppendDataHeader(l.hdr[:0], len(f.Payload))
		l.tr.Write(id, l.hdr, f.Payload)
		return
	case c.proto == protoBinary:
		l.enc, err = l.v1.AppendFrame(l.enc[:0], f)
	case c.proto == protoLegacy && f.Type == wire.Data && l.many && sameBytes(f.Payload, l.manyPayload):
		if len(l.legacyEnc) == 0 {
			l.legacyEnc, err = wire.Legacy{}.AppendFrame(l.legacyEnc[:0], f)
		}
		if err == nil {
			l.tr.Write(id, l.legacyEnc, nil)
			return
		}
	case c.proto == protoLegacy:
		l.enc, err = wire.Legacy{}.AppendFrame(l.enc[:0], f)
	default:
		err = fmt.Errorf("the connection's protocol is not known yet")
	}
	if err != nil {
		panic(fmt.Sprintf("link: fsm %s wrote %s on c%d, which its codec refuses: %v", l.node.ID(), f.String(), id, err))
	}
	if len(l.enc) > 0 { // a 0.4.1 BYE encodes to nothing: the FIN says it all
		l.tr.Write(id, l.enc, nil)
	}
	if cap(l.enc) > 64<<10 {
		l.enc = nil
	}
}
