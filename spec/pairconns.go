package spec

import (
	"fmt"
	"sort"
)

// CheckPairConns states the bound on TCP connections per pair of nodes
// (pair-conns, spec/PROTOCOL.md 5.1): opened counts the connections each
// pair of nodes opened (by node index, smaller first, whoever dialed), and
// no pair may have opened more than most. With all true, every one of the
// nodes·(nodes−1)/2 pairs must also have opened at least one (the mesh was
// formed by these connections, not by ones counted elsewhere).
//
// Without faults, a mesh where every node Connects to every other at once
// opens at most 2 connections per pair (both ends dial; the handshake keeps
// one, 3.5 and 6.2), and exactly 1 when the two ends of every pair Connect
// at least a dial and a HELLO apart (the later end finds the earlier one's
// connection past its HELLO and opens none, section 5); after faults stop,
// at most 2 more per pair (both ends redial a lost session once, section 5).
func CheckPairConns(opened map[[2]int]int, nodes, most int, all bool) error {
	pairs := make([][2]int, 0, len(opened))
	for p := range opened {
		pairs = append(pairs, p)
	}
	sort.Slice(pairs, func(i, j int) bool {
		if pairs[i][0] != pairs[j][0] {
			return pairs[i][0] < pairs[j][0]
		}
		return pairs[i][1] < pairs[j][1]
	})
	for _, p := range pairs {
		if c := opened[p]; c > most {
			return fmt.Errorf("pair-conns: nodes %d and %d opened %d connections, bound %d", p[0], p[1], c, most)
		}
	}
	if want := nodes * (nodes - 1) / 2; all && len(opened) != want {
		return fmt.Errorf("pair-conns: %d pairs opened a connection, want all %d", len(opened), want)
	}
	return nil
}
