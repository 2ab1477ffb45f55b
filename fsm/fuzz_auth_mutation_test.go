//go:build masterless_mutation

package fsm_test

import (
	"strings"
	"testing"

	"github.com/masterless-go/masterless/fsm"
	"github.com/masterless-go/masterless/wire"
)

// TestAuthFramesCatchesNoIDCheck is the negative control of FuzzAuthFrames
// against a broken rule: with the HELLO id check skipped
// (fsm.MutationNoIDCheck), a connection authenticated as B that says HELLO as
// A gets A's session, which the fuzz target's check must report.
func TestAuthFramesCatchesNoIDCheck(t *testing.T) {
	var c wire.Binary
	b, err := c.AppendFrame([]byte{0x80 | 1}, &wire.Frame{Type: wire.Hello, ID: "A", Incarnation: 9})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := authFrames(0, b, fsm.Config{}); err != nil {
		t.Fatalf("the real rule fails: %v", err)
	}
	_, err = authFrames(0, b, fsm.Config{}.WithMutation(fsm.MutationNoIDCheck))
	if err == nil || !strings.Contains(err.Error(), "authenticated as B") {
		t.Fatalf("a session with A over B's connection was not caught: %v", err)
	}
}
