package netio

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/masterless-go/masterless/fsm"
)

func readInc(t *testing.T, path string) uint64 {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	v, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
	require.NoError(t, err, "file holds %q", b)
	return v
}

func TestNextIncarnationCreatesAndGrows(t *testing.T) {
	path := filepath.Join(t.TempDir(), "inc")
	now := time.Unix(1_800_000_000, 0)
	first, err := nextIncarnation(path, now)
	require.NoError(t, err)
	require.Equal(t, uint64(now.UnixNano()), first, "a missing file: the clock")
	require.Equal(t, first, readInc(t, path), "the incarnation is recorded")

	// The clock stepped back an hour across the restart: the file wins.
	second, err := nextIncarnation(path, now.Add(-time.Hour))
	require.NoError(t, err)
	require.Equal(t, first+1, second)
	require.Equal(t, second, readInc(t, path))

	// The clock is ahead again: the clock wins.
	third, err := nextIncarnation(path, now.Add(time.Hour))
	require.NoError(t, err)
	require.Equal(t, uint64(now.Add(time.Hour).UnixNano()), third)

	entries, err := os.ReadDir(filepath.Dir(path))
	require.NoError(t, err)
	require.Len(t, entries, 1, "no temporary file is left behind")
}

func TestNextIncarnationRefusesABadFile(t *testing.T) {
	dir := t.TempDir()
	for name, content := range map[string]string{
		"garbage":  "not a number\n",
		"empty":    "",
		"negative": "-5\n",
		"overflow": "18446744073709551615\n", // the next one would not fit
	} {
		path := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(path, []byte(content), 0o600))
		_, err := nextIncarnation(path, time.Now())
		require.ErrorIs(t, err, fsm.ErrBadConfig, name)
		require.Contains(t, err.Error(), path, name)
		b, err := os.ReadFile(path)
		require.NoError(t, err)
		require.Equal(t, content, string(b), "%s: a bad file is left as it was", name)
	}
	// A directory cannot be read as the file.
	_, err := nextIncarnation(dir, time.Now())
	require.ErrorIs(t, err, fsm.ErrBadConfig)
}

func TestStartWithIncarnationFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "inc")
	future := uint64(time.Now().Add(time.Hour).UnixNano())
	require.NoError(t, os.WriteFile(path, []byte(strconv.FormatUint(future, 10)+"\n"), 0o600))
	n, err := Start(Config{FSM: fsm.Config{ID: "x"}, IncarnationFile: path, Logger: quiet()})
	require.NoError(t, err)
	require.Greater(t, n.Incarnation(), future, "a restart must present a greater incarnation than the file's")
	require.Equal(t, n.Incarnation(), readInc(t, path))
	require.NoError(t, n.Close())

	// A second start, as after a restart: strictly greater again.
	m, err := Start(Config{FSM: fsm.Config{ID: "x"}, IncarnationFile: path, Logger: quiet()})
	require.NoError(t, err)
	require.Greater(t, m.Incarnation(), n.Incarnation())
	require.NoError(t, m.Close())

	// A bad configuration fails before the file is touched.
	before := readInc(t, path)
	_, err = Start(Config{FSM: fsm.Config{ID: ""}, IncarnationFile: path, Logger: quiet()})
	require.ErrorIs(t, err, fsm.ErrBadConfig)
	require.Equal(t, before, readInc(t, path))

	_, err = Start(Config{FSM: fsm.Config{ID: "x", Incarnation: 7}, IncarnationFile: path, Logger: quiet()})
	require.ErrorIs(t, err, fsm.ErrBadConfig)
	require.Contains(t, err.Error(), "use one")
}
