package fsm_test

import (
	"fmt"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// impure returns the first import of imports that would let the state
// machine do I/O, read the clock, use global randomness or synchronise
// goroutines (fsm/doc.go: events in, actions out, now passed in).
func impure(imports []string) error {
	for _, p := range imports {
		for _, bad := range []string{"net", "os", "syscall", "sync", "math/rand", "crypto/rand", "runtime", "io", "log", "unsafe"} {
			if p == bad || strings.HasPrefix(p, bad+"/") {
				return fmt.Errorf("fsm imports %q", p)
			}
		}
	}
	return nil
}

// readsClock reports a call in src that reads the clock or waits.
func readsClock(name, src string) error {
	for _, call := range []string{"time.Now(", "time.Since(", "time.Until(", "time.Sleep(", "time.After(", "time.NewTimer(", "time.Tick("} {
		if strings.Contains(src, call) {
			return fmt.Errorf("%s calls %s", name, call)
		}
	}
	return nil
}

// TestPureImports: no file of package fsm (tests apart) imports a package
// that does I/O, reads the clock's source, draws global randomness or
// locks; "time" is allowed for time.Duration, and no file calls what reads
// the clock or waits.
func TestPureImports(t *testing.T) {
	files, err := filepath.Glob("*.go")
	require.NoError(t, err)
	var imports []string
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		ast, err := parser.ParseFile(token.NewFileSet(), f, nil, parser.ImportsOnly)
		require.NoError(t, err, f)
		for _, imp := range ast.Imports {
			p, _ := strconv.Unquote(imp.Path.Value)
			imports = append(imports, p)
		}
	}
	require.NotEmpty(t, imports)
	require.NoError(t, impure(imports))
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		b, err := os.ReadFile(f)
		require.NoError(t, err)
		require.NoError(t, readsClock(f, string(b)))
	}
	require.Error(t, readsClock("x.go", "now := time.Now()"), "the clock check's negative control")
	// The check's negative control: what source.go once imported.
	require.Error(t, impure([]string{"strings", "net/netip"}))
	require.Error(t, impure([]string{"sync"}))
}
