package link

import "github.com/masterless-go/masterless/fsm"

// Transport is what a driver gives the Layer: the effects the Layer cannot
// have itself. The Layer calls it while the driver is inside one of the
// Layer's methods, so the driver's own lock is already held; an
// implementation must not block and must not call back into the Layer.
type Transport interface {
	// Write queues head and then body (either may be empty) on connection
	// id, after everything queued on it before. Both slices are valid only
	// during the call: copy them.
	Write(id fsm.ConnID, head, body []byte)
	// Close flushes what was queued on id, then closes it; why is the
	// reason, for logs. The Layer reports nothing more about id, and the
	// driver must not either: Received and Closed for id are ignored.
	Close(id fsm.ConnID, why error)
	// Dial starts a TCP connection to addr (tcp://host:port). The driver
	// later reports Dialed or DialFailed for id.
	Dial(id fsm.DialID, addr string)
	// Notify hands over an action meant for the user: fsm.ActConnected,
	// ActDisconnected, ActMessage, ActMessages or ActConnectDone (and the
	// other kinds fsm.Action lists for the adapter). *a and the payload of
	// a message are valid only during the call.
	Notify(a *fsm.Action)
}

// StepObserver, when set on a Layer, is called after every step of its state
// machine, once the step's actions have been carried out: ev is the event,
// err what Step returned, acts the actions (valid only during the call). The
// simulator checks its invariants and writes its trace there.
type StepObserver func(ev fsm.Event, err error, acts []fsm.Action)
