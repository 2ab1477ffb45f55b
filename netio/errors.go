package netio

import "errors"

// ErrBadAddress: an address is not of the form tcp://host:port. Use the
// string another node's Info returns.
var ErrBadAddress = errors.New("masterless: bad address; want tcp://host:port, as returned by Info")
