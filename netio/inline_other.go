//go:build !unix

package netio

// inlineSupported: there is no non-blocking write(2) to make an inline write
// with, so nothing is registered for one (inlineFor) and the writer writes
// everything, as before inline writes; a connection's writer then starts at
// its first write and stays.
const inlineSupported = false

// tryWrite is never called where inlineSupported is false.
func (c *conn) tryWrite([]byte) int { return 0 }

// tryRead reads nothing without a non-blocking read at hand: the reader
// reads.
func (c *conn) tryRead([]byte) int { return 0 }
