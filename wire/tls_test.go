package wire

import (
	"testing"
)

// TestDetectTLS: a TLS ClientHello is told apart from every other protocol's
// first byte, and no byte either of them can start with is taken for TLS.
func TestDetectTLS(t *testing.T) {
	if !DetectTLS(0x16) {
		t.Fatal("a TLS handshake record (0x16) was not detected")
	}
	for _, first := range [][]byte{Binary{}.AppendPreamble(nil), []byte(`{"id":"a"}`), []byte(" \t\r\n{")} {
		if DetectTLS(first[0]) {
			t.Fatalf("%q was taken for TLS", first)
		}
	}
	// Exactly one byte value is TLS: a plaintext dialer whose first byte is
	// anything else goes the plaintext way (and its codec judges it).
	n := 0
	for b := 0; b < 256; b++ {
		if DetectTLS(byte(b)) {
			n++
			if legacy, _ := DetectLegacy([]byte{byte(b)}); legacy {
				t.Fatalf("0x%02x is both TLS and 0.4.1", b)
			}
		}
	}
	if n != 1 {
		t.Fatalf("%d byte values detected as TLS, want 1", n)
	}
}
