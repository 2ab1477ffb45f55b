package netio

import (
	"bytes"
	"runtime"
	"strconv"
)

// goid returns the id of the calling goroutine, as the first line of its
// stack trace gives it ("goroutine 42 [running]:"), or 0 if that line does
// not parse.
//
// It is how Close, SendContext and SendManyContext know that an event
// callback called them, so that they neither wait for the dispatcher
// goroutine they run on (Close) nor park it until a peer acknowledges
// (the senders): either would wait for ever. The Go runtime keeps the
// goroutine's id to itself on purpose (identity is not meant to carry
// meaning), so this reads it from the trace, which costs a microsecond or
// two; it runs only where a call would otherwise wait, never on a send
// that goes through.
func goid() uint64 {
	var buf [64]byte
	b := buf[:runtime.Stack(buf[:], false)]
	b, ok := bytes.CutPrefix(b, []byte("goroutine "))
	if !ok {
		return 0
	}
	if i := bytes.IndexByte(b, ' '); i > 0 {
		b = b[:i]
	}
	id, err := strconv.ParseUint(string(b), 10, 64)
	if err != nil {
		return 0
	}
	return id
}
