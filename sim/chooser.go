package sim

import "math/rand/v2"

// Chooser is the simulator's only source of nondeterminism: every latency,
// fault, command and knob is drawn from it, in a fixed order. A seeded PRNG
// makes a run reproducible from its seed; a rapid-driven Chooser lets rapid
// shrink a failing run to a small one.
type Chooser interface {
	// Intn returns a number in [0, n), n > 0.
	Intn(n int) int
}

// NewPRNG returns the Chooser of a seeded run: a PCG generator.
func NewPRNG(seed uint64) Chooser {
	return &prng{r: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))}
}

type prng struct{ r *rand.Rand }

func (p *prng) Intn(n int) int { return p.r.IntN(n) }

// chance reports true with probability perMille/1000.
func chance(c Chooser, perMille int) bool {
	return perMille > 0 && c.Intn(1000) < perMille
}

// between draws a value uniformly in [lo, hi].
func between[T ~int64 | ~int](c Chooser, lo, hi T) T {
	if hi <= lo {
		return lo
	}
	return lo + T(c.Intn(int(hi-lo)+1))
}
