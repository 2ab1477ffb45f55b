//go:build race

package masterless

const raceEnabled = true
