package netio

// A new goroutine starts with a small stack (2 KiB) that the runtime
// doubles, by copying, each time a call needs more. A connection's reader
// and a dial's goroutine go deep at once: the handshake's steps (parsing a
// HELLO, the state machine's handshake and session rules, the writes they
// order) need about 8 KiB, so each such goroutine grew its stack twice,
// and each copy walked every frame on it to adjust its pointers. In
// BenchmarkChurn (Connect, a message, Disconnect) that was 12% of the
// process's CPU (runtime.copystack, 2026-12-02 profile). growStack, called
// first thing, makes the one growth happen while the stack holds a frame
// or two, which costs almost nothing to copy. A stack that is larger than
// its goroutine needs once parked is shrunk back by the garbage collector,
// so an idle connection keeps what it kept before (TestIdlePeerMemory).

// stackPad is the frame growStack asks for: with the frames above it, the
// stack grows to 8 KiB, which the handshake fits in (in the churn profile,
// no other call grew a stack).
const stackPad = 5 << 10

// growStack grows the calling goroutine's stack, at once and while it
// holds only a frame or two, to what a connection's handshake takes.
//
//go:noinline
func growStack() {
	var pad [stackPad]byte
	touch(pad[:])
}

// touch uses b, so that growStack's frame is not optimized away.
//
//go:noinline
func touch(b []byte) { b[0] = 1 }
