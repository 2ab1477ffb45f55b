//go:build race

package netio

// raceEnabled: this test binary runs under the race detector, which slows
// every goroutine by 5-10x: tests that assert timing targets scale down.
const raceEnabled = true
