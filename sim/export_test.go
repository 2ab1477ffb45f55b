package sim

// WithUnauthenticatedAdversary returns opt allowing adversaries in a world
// without authentication: the negative control of the adversary invariants
// (TestSweepCatchesUnauthenticatedAdversary). Only tests can call it.
func WithUnauthenticatedAdversary(opt Options) Options {
	opt.unauthAdversary = true
	return opt
}
