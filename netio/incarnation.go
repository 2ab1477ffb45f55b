package netio

import (
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/masterless-go/masterless/fsm"
)

// Incarnations. Peers refuse a HELLO whose incarnation is below that of the
// session they hold with the same id (fsm.ErrStaleIncarnation): a restarted
// process must present a greater one than its previous life did.
//
// The default is the wall clock in nanoseconds, which holds as long as the
// clock does not step back across a restart. If it does, the new process is
// refused as stale by every peer that still holds a session with the old
// one, until that session times out (one peer timeout), and then it is
// accepted. Config.IncarnationFile removes that window: the incarnation is
// the greater of the clock and the last one used plus one, kept in a file.

// nextIncarnation returns the incarnation of a process starting at now with
// incarnation file path, and records it there before returning: the greater
// of now in nanoseconds and the number in the file plus one. A missing file
// is created. The write is atomic (a temporary file in the same directory,
// synced, renamed over the old one, and the directory synced), so a crash
// leaves the old number or the new one, never a torn one. A file that cannot
// be read or does not hold a number is an error wrapping fsm.ErrBadConfig.
func nextIncarnation(path string, now time.Time) (uint64, error) {
	inc := uint64(max(now.UnixNano(), 1))
	data, err := os.ReadFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return 0, fmt.Errorf("%w: incarnation file: %w", fsm.ErrBadConfig, err)
	default:
		last, err := strconv.ParseUint(strings.TrimSpace(string(data)), 10, 64)
		if err != nil || last == math.MaxUint64 {
			return 0, fmt.Errorf("%w: incarnation file %s holds %q, not the decimal incarnation masterless writes there; "+
				"if nothing else wrote it, the file is damaged: remove it, and this start's incarnation comes from the clock alone",
				fsm.ErrBadConfig, path, truncate(data, 40))
		}
		inc = max(inc, last+1)
	}
	if err := writeFileAtomic(path, []byte(strconv.FormatUint(inc, 10)+"\n")); err != nil {
		return 0, fmt.Errorf("%w: incarnation file: %w", fsm.ErrBadConfig, err)
	}
	return inc, nil
}

func truncate(b []byte, n int) string {
	if len(b) > n {
		return string(b[:n]) + "..."
	}
	return string(b)
}

// writeFileAtomic replaces path with data: temporary file in the same
// directory, fsync, rename, fsync of the directory.
func writeFileAtomic(path string, data []byte) (err error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	tmp, err := os.CreateTemp(dir, "."+base+".tmp*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if _, err = tmp.Write(data); err != nil {
		return err
	}
	if err = tmp.Sync(); err != nil {
		return err
	}
	if err = tmp.Close(); err != nil {
		return err
	}
	if err = os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	if runtime.GOOS == "windows" {
		return nil // directories cannot be opened for syncing there; the rename is durable enough
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
