//go:build unix

package netio

import "syscall"

// tryWrite writes to c's socket what it takes of buf without waiting and
// returns how many bytes that was; 0 on any error, which the writer then
// meets with its own write.
func (c *conn) tryWrite(buf []byte) int {
	k := 0
	_ = c.raw.Write(func(fd uintptr) bool {
		m, err := syscall.Write(int(fd), buf)
		if err == nil && m > 0 {
			k = m
		}
		return true // never wait for the socket
	})
	return k
}
