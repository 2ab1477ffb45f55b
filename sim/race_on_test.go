//go:build race

package sim_test

// raceEnabled: this test binary runs under the race detector.
const raceEnabled = true
