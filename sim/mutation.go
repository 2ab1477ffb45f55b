//go:build masterless_mutation

package sim

import (
	"fmt"

	"github.com/masterless-go/masterless/fsm"
)

// Mutation is a deliberately wrong fsm rule (fsm.Mutation), for the
// checkers' negative controls. It exists only in builds with the
// masterless_mutation tag; see mutation_off.go for the others.
type Mutation = fsm.Mutation

// withMutation returns c with the deliberately wrong rule m.
func withMutation(c fsm.Config, m Mutation) fsm.Config { return c.WithMutation(m) }

// checkMutation refuses a mutation fsm does not define.
func checkMutation(m Mutation) error {
	if m > fsm.MutationSizedPastCredit {
		return fmt.Errorf("sim: unknown mutation %d (%s)", m, mutationNames)
	}
	return nil
}

// mutationTags is what a go command needs to rebuild a run with mutation m.
func mutationTags(m Mutation) string {
	if m == 0 {
		return ""
	}
	return " -tags masterless_mutation"
}
