package privilege

import (
	"fmt"
	"path/filepath"

	"golang.org/x/sys/unix"

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

// RestrictThreadReadOnly confines the calling thread, and what it executes,
// to reading and executing files: a new Landlock layer, on top of any the
// process has, that denies every other file system right the kernel
// handles, and, from ABI 6 on, signals and abstract Unix sockets to
// processes outside it. It is for a thread that executes a program next:
// the caller must have locked its goroutine to the thread and call exec
// from it, since the process's other threads keep their domain. On a
// kernel without Landlock it changes nothing.
func RestrictThreadReadOnly() error {
	abi := abiVersion()
	if abi == 0 {
		return nil
	}
	var handled uint64 = llsys.AccessFSMakeSym<<1 - 1 // ABI 1: execute to make_sym
	if abi >= 2 {
		handled |= llsys.AccessFSRefer
	}
	if abi >= 3 {
		handled |= llsys.AccessFSTruncate
	}
	if abi >= 5 {
		handled |= llsys.AccessFSIoctlDev
	}
	attr := llsys.RulesetAttr{HandledAccessFS: handled}
	if abi >= 6 {
		attr.Scoped = llsys.ScopeAbstractUnixSocket | llsys.ScopeSignal
	}
	fd, err := llsys.LandlockCreateRuleset(&attr, 0)
	if err != nil {
		return fmt.Errorf("privilege: landlock: create ruleset: %w", err)
	}
	defer unix.Close(fd)
	root, err := unix.Open("/", unix.O_PATH|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("privilege: landlock: open /: %w", err)
	}
	defer unix.Close(root)
	rule := llsys.PathBeneathAttr{
		AllowedAccess: llsys.AccessFSExecute | llsys.AccessFSReadFile | llsys.AccessFSReadDir,
		ParentFd:      root,
	}
	if err := llsys.LandlockAddPathBeneathRule(fd, &rule, 0); err != nil {
		return fmt.Errorf("privilege: landlock: add rule: %w", err)
	}
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("privilege: no_new_privs: %w", err)
	}
	if err := llsys.LandlockRestrictSelf(fd, 0); err != nil {
		return fmt.Errorf("privilege: landlock: restrict self: %w", err)
	}
	return nil
}
