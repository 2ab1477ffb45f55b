package main

import "time"

// How many Connect calls each server has under way, and how long the
// example waits, by the size of the mesh.
//
// Every server dials every other, at most -inflight at once. With 32 per
// server a 256-mesh has 8,192 handshakes under way at once, more than two
// cores get through in a handshake timeout (5 s) when the sessions already
// formed also want the CPU: on a 2-vCPU AMD EPYC VM of this machine kind
// (2026-12-02) thousands of handshakes timed out and were tried again, the
// mesh opened 1.39-1.46 TCP connections per pair, and it converged in
// 32-38 s (two runs), or not within 30 s (two more runs). With 16 per
// server it converged in 24 and 28 s (1.07-1.12 connections per pair),
// with 8 in 26 and 30 s (1.04). At 128 nodes 16 and 32 were within the
// runs' spread (3.3-3.9 s). So a mesh shares a budget of connectBudget
// Connect calls under way, at most 32 and at least 8 per server, and from
// bigMesh nodes on the example waits longer, since the same VM needs most
// of the 30 s that suffice below.

// connectBudget is the number of Connect calls under way across the mesh
// that -inflight 0 aims at.
const connectBudget = 4096

// bigMeshTimeout is the default -timeout from bigMesh nodes on.
const bigMeshTimeout = 90 * time.Second

// inflightFor is -inflight for a mesh of n nodes when the flag is 0.
func inflightFor(n int) int {
	return min(32, max(8, connectBudget/n))
}

// timeoutFor is -timeout for a mesh of n nodes when the flag is 0.
func timeoutFor(n int) time.Duration {
	if n >= bigMesh {
		return bigMeshTimeout
	}
	return 30 * time.Second
}
