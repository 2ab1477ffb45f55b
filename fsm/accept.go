package fsm

import "fmt"

func (n *Node) accepted(id ConnID, legacy bool) {
	if n.shutdown {
		n.emit(Action{Kind: ActClose, Conn: id, Err: ErrClosed})
		return
	}
	if n.handshaking >= n.cfg.MaxHandshakes {
		n.emit(Action{Kind: ActClose, Conn: id, Err: fmt.Errorf("%w: %d already", ErrTooManyHandshakes, n.handshaking)})
		return
	}
	n.openConn(id, nil, legacy)
}
