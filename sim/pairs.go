package sim

// countPair counts a TCP connection opened between nodes i and j (either
// direction; a self-dial counts for the pair (i, i)).
func (w *World) countPair(i, j int) {
	if w.pairConns == nil {
		w.pairConns = map[[2]int]int{}
	}
	w.pairConns[[2]int{min(i, j), max(i, j)}]++
	if w.phase != PhaseSafety {
		if w.healConns == nil {
			w.healConns = map[[2]int]int{}
		}
		w.healConns[[2]int{min(i, j), max(i, j)}]++
	}
}

// PairConns returns how many TCP connections each pair of nodes opened so
// far, by node indexes (smaller first), whoever dialed.
func (w *World) PairConns() map[[2]int]int {
	out := make(map[[2]int]int, len(w.pairConns))
	for k, v := range w.pairConns {
		out[k] = v
	}
	return out
}

// HealPairConns returns how many TCP connections each pair opened since
// the healing phase began (faults stopped).
func (w *World) HealPairConns() map[[2]int]int {
	out := make(map[[2]int]int, len(w.healConns))
	for k, v := range w.healConns {
		out[k] = v
	}
	return out
}

// Alive reports whether node i is running.
func (w *World) Alive(i int) bool { return w.nodes[i].alive }
