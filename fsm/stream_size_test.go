package fsm

import (
	"testing"
	"unsafe"
)

// TestOutMsgIsSmall holds outMsg to the 32 bytes its comment states: a
// stream appends one per message, so each byte more is a byte more of every
// message's bookkeeping (the shared pointer fit in only with n in 32 bits).
func TestOutMsgIsSmall(t *testing.T) {
	if got := unsafe.Sizeof(outMsg{}); got != 32 && unsafe.Sizeof(0) == 8 {
		t.Fatalf("outMsg is %d bytes, want 32", got)
	}
}
