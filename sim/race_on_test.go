//go:build race

package sim_test

// raceOn: built with the race detector, which makes a simulated step about
// ten times slower; the large discovery scenarios shrink under it (make
// test runs them at full size without it, in the sweep target).
const raceOn = true
