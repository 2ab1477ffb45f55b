//go:build unix

package netio

import (
	"sync"
	"syscall"
)

// inlineSupported: a non-blocking write(2) is at hand (tryWrite).
const inlineSupported = true

// tryWrite writes to c's socket what it takes of buf without waiting and
// returns how many bytes that was; 0 on any error, which the writer then
// meets with its own write.
//
// It goes through RawConn.Control, not RawConn.Write: Write fails at once
// once the socket's write deadline has passed, and the writer leaves its
// last one set (armWrite), a slice of the peer timeout after its last
// write, so every inline write after such a pause went to the writer.
// Control only keeps the descriptor open during the call; no other write
// runs meanwhile, because the writer does not write while an inline write
// is in flight (conn.inflight). The socket is non-blocking, so the write
// never waits.
func (c *conn) tryWrite(buf []byte) int {
	w := inlineWriteArgs.Get().(*inlineWrite)
	w.buf, w.k = buf, 0
	_ = c.raw.Control(w.call)
	k := w.k
	w.buf = nil
	inlineWriteArgs.Put(w)
	return k
}

// inlineWrite is one inline write's bytes and result, with the function
// Control calls for it, made once: a closure made for each call escaped
// (Control is an interface's method), two allocations per inline write.
type inlineWrite struct {
	buf  []byte
	k    int
	call func(fd uintptr)
}

// inlineWriteArgs holds the inlineWrite values not in use (Runtime's
// inlineWrites is the count of inline writes).
var inlineWriteArgs = sync.Pool{New: func() any {
	w := new(inlineWrite)
	w.call = w.write
	return w
}}

// write makes the write(2), for Control.
func (w *inlineWrite) write(fd uintptr) {
	m, err := syscall.Write(int(fd), w.buf)
	if err == nil && m > 0 {
		w.k = m
	}
}

// tryRead reads into buf what c's socket holds, without waiting, and
// returns how many bytes that was; 0 when it holds none or on any error,
// which the reader then meets with its own read. Only before the reader
// starts (readEarly): nothing else reads the socket then.
func (c *conn) tryRead(buf []byte) int {
	k := 0
	_ = c.raw.Control(func(fd uintptr) {
		if m, err := syscall.Read(int(fd), buf); err == nil && m > 0 {
			k = m
		}
	})
	return k
}
