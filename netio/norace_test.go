//go:build !race

package netio

// raceEnabled: this test binary runs under the race detector (race_test.go).
const raceEnabled = false
