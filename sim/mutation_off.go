//go:build !masterless_mutation

package sim

import (
	"fmt"

	"github.com/masterless-go/masterless/fsm"
)

// Mutation would select a deliberately wrong fsm rule, for the checkers'
// negative controls; in a build without the masterless_mutation tag fsm has
// none, so 0 (the real protocol) is the only valid value. See mutation.go.
type Mutation uint8

// withMutation returns c; a nonzero m is refused by NewWorld before.
func withMutation(c fsm.Config, m Mutation) fsm.Config {
	if m != 0 {
		panic(fmt.Sprintf("sim: mutation %d needs a build with -tags masterless_mutation", m))
	}
	return c
}

// checkMutation refuses any mutation: this build has none.
func checkMutation(m Mutation) error {
	if m != 0 {
		return fmt.Errorf("sim: -mutation=%d needs a build with -tags masterless_mutation", m)
	}
	return nil
}

// mutationTags is what a go command needs to rebuild a run with mutation m.
func mutationTags(Mutation) string { return "" }
