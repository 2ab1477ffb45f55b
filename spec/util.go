package spec

import (
	"cmp"
	"slices"
)

// sortedKeys returns m's keys in order: checkers must report the same
// violation in the same words on every run.
func sortedKeys[K cmp.Ordered, V any](m map[K]V) []K {
	out := make([]K, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
