package fsm

// splitmix64 is the node's own pseudo-random generator: tiny, fast, seeded by
// Config.Seed, and owned by one Node, so a run is reproducible from its seed.
// The fsm uses it only for reconnect jitter; no decision about which
// connection survives depends on it.
type splitmix64 struct{ state uint64 }

func (r *splitmix64) next() uint64 {
	r.state += 0x9e3779b97f4a7c15
	z := r.state
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// below returns a value in [0, n) for n > 0.
func (r *splitmix64) below(n uint64) uint64 { return r.next() % n }
