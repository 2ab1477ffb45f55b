package main

import (
	"fmt"
	"time"

	"github.com/masterless-go/masterless"
)

// The heartbeat of a large mesh on one machine.
//
// Every session end sends a PING each heartbeat interval (1 s by default,
// spec/PROTOCOL.md 4). A node of a real cluster has its machine to itself,
// and a thousand sessions cost it little (the idle CPU in the README). This
// example puts every node of the mesh on one machine: a formed 256-mesh
// holds 65,280 session ends, 65,280 PINGs a second, and on two cores that
// is most of the machine, which leaves the handshakes of the pairs still
// forming what remains (README, "The two commands"). From bigMesh nodes
// on, the example halves that work: a heartbeat of 2 s and a peer timeout
// of 10 s, the same ratio as the defaults. -heartbeat and -peer-timeout
// set them at any size; 0 picks as above.

// bigMesh is the size from which the example lengthens the heartbeat.
const bigMesh = 192

// Set by the flags, then by heartbeatFor: the heartbeat interval and peer
// timeout every node of the mesh uses, 0 for the library's defaults.
var heartbeat, peerTimeout time.Duration

// heartbeatFor resolves -heartbeat and -peer-timeout for a mesh of n nodes.
func heartbeatFor(n int) {
	if heartbeat == 0 && n >= bigMesh {
		heartbeat = 2 * time.Second
	}
	if peerTimeout == 0 && heartbeat != 0 {
		peerTimeout = 5 * heartbeat
	}
}

// heartbeatOptions returns the options that set them, if any.
func heartbeatOptions() []masterless.Option {
	var opts []masterless.Option
	if heartbeat != 0 {
		opts = append(opts, masterless.WithHeartbeat(heartbeat))
	}
	if peerTimeout != 0 {
		opts = append(opts, masterless.WithPeerTimeout(peerTimeout))
	}
	return opts
}

// heartbeatLine says which heartbeat the mesh uses, for the run's header.
func heartbeatLine() string {
	if heartbeat == 0 && peerTimeout == 0 {
		return "heartbeat and peer timeout: the library's defaults"
	}
	return fmt.Sprintf("heartbeat %v, peer timeout %v (-heartbeat, -peer-timeout; by default 2s and 10s from %d nodes on)", heartbeat, peerTimeout, bigMesh)
}
