package netio

import "github.com/masterless-go/masterless/fsm"

// Members returns the node's member table (discovery) as of now, sorted by
// id; empty without discovery.
func (n *Runtime) Members() []fsm.MemberStatus {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.fsm.MembersAt(n.now())
}

// StopConnecting stops retrying addr, an address a failed Connect left kept
// (unless fsm.Config.ConnectOnce without discovery: fsm/seeds.go).
func (n *Runtime) StopConnecting(addr string) error {
	return n.userStep(fsm.StopConnecting{Addr: addr})
}
