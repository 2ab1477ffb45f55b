//go:build !unix

package main

// raiseFileLimit leaves the limit alone where there is no RLIMIT_NOFILE.
func raiseFileLimit() uint64 { return 0 }
