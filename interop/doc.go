// Package interop runs the real masterless 0.4.1 (the npm package) next to
// this module, for the interop tests of issue 5.
//
// Why: masterless 0.4.1 is the system this project reimplements, and a peer
// nobody here wrote is the best check of our reading of its protocol
// (spec/LEGACY-0.4.1.md). A Go node that joins a mesh of Node.js nodes also
// gives users a migration path, so the tests drive Go Servers from the public
// API against real Node.js processes, never a mock.
//
// install.sh puts masterless@0.4.1 in interop/.node (ignored by git); Start
// runs testdata/interop/driver.js, one 0.4.1 server per Node.js process, and
// turns its JSON-lines protocol into Go calls and events. Tests call Require
// first: it installs the package once per test binary, and skips the test
// loudly when node or npm is missing, except under CI=true, where that fails.
package interop
