package wire

// TLSRecordHandshake is the first byte of every TLS connection: the content
// type of the record that carries the dialer's ClientHello (RFC 8446, 5.1).
const TLSRecordHandshake = 0x16

// DetectTLS tells from the first byte of an accepted connection whether the
// dialer starts a TLS handshake (spec/PROTOCOL.md, section 7.2). The other
// protocols an acceptor serves cannot start with that byte: a v1 dialer
// starts with the magic "MLSS", a masterless 0.4.1 one with '{' or JSON
// whitespace. So one byte decides, and an acceptor that serves TLS and
// plaintext dialers reads exactly one byte before it chooses.
func DetectTLS(first byte) bool { return first == TLSRecordHandshake }
