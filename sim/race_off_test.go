//go:build !race

package sim_test

// raceOn: built with the race detector (see race_on_test.go).
const raceOn = false
