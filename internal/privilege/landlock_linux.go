package privilege

import (
	"fmt"
	"path/filepath"

	"github.com/landlock-lsm/go-landlock/landlock"
	llsys "github.com/landlock-lsm/go-landlock/landlock/syscall"
)

// View lists what the process may still see after Restrict: everything
// read-only except WriteDirs. Missing paths are ignored.
type View struct {
	// Dirs are directory trees readable (and, for programs, executable).
	Dirs []string
	// Files are single files readable (and executable).
	Files []string
	// Sockets are directories holding Unix sockets the process connects
	// to (the D-Bus system bus).
	Sockets []string
	// WriteDirs are directory trees readable and writable: files in them
	// may be created, written, renamed and removed (the store's SQLite
	// file with its journal).
	WriteDirs []string
}

// Restrict confines the filesystem view of every thread to v with Landlock,
// using the best ABI the kernel offers; on a kernel without Landlock it
// changes nothing. It reports the ABI version in use (0: none).
func Restrict(v View) (int, error) {
	var rules []landlock.Rule
	if d := clean(v.Dirs); len(d) > 0 {
		rules = append(rules, landlock.RODirs(d...).IgnoreIfMissing())
	}
	if f := clean(v.Files); len(f) > 0 {
		rules = append(rules, landlock.ROFiles(f...).IgnoreIfMissing())
	}
	if s := clean(v.Sockets); len(s) > 0 {
		rules = append(rules, landlock.RODirs(s...).WithResolveUnix().IgnoreIfMissing())
	}
	if w := clean(v.WriteDirs); len(w) > 0 {
		rules = append(rules, landlock.RWDirs(w...).IgnoreIfMissing())
	}
	if err := landlock.V11.BestEffort().RestrictPaths(rules...); err != nil {
		return 0, fmt.Errorf("privilege: landlock: %w", err)
	}
	return abiVersion(), nil
}

// clean returns the absolute paths of ps, without duplicates, in order.
func clean(ps []string) []string {
	seen := make(map[string]bool)
	var out []string
	for _, p := range ps {
		if p == "" || !filepath.IsAbs(p) {
			continue
		}
		p = filepath.Clean(p)
		if !seen[p] {
			seen[p] = true
			out = append(out, p)
		}
	}
	return out
}

// abiVersion returns the Landlock ABI of the running kernel, 0 without.
func abiVersion() int {
	v, err := llsys.LandlockGetABIVersion()
	if err != nil {
		return 0
	}
	return v
}

// Rules describes v as Restrict applies it, one rule a line: "dir PATH",
// "file PATH", "unix-sockets PATH" or "rw-dir PATH" (readable and
// writable), after cleaning and removing duplicates.
func (v View) Rules() []string {
	var out []string
	for _, p := range clean(v.Dirs) {
		out = append(out, "dir "+p)
	}
	for _, p := range clean(v.Files) {
		out = append(out, "file "+p)
	}
	for _, p := range clean(v.Sockets) {
		out = append(out, "unix-sockets "+p)
	}
	for _, p := range clean(v.WriteDirs) {
		out = append(out, "rw-dir "+p)
	}
	return out
}

// ABI returns the Landlock ABI version the kernel offers, 0 without
// Landlock.
func ABI() int { return abiVersion() }
