//go:build !linux

package privilege

import "errors"

// Options change what Drop keeps.
type Options struct {
	// KeepDACReadSearch is supported on Linux only.
	KeepDACReadSearch bool
}

// Drop is supported on Linux only; elsewhere it refuses to run as root.
func Drop(id Identity, opt Options) error {
	if IsRoot() {
		return errors.New("privilege: dropping root is supported on Linux only")
	}
	return nil
}

// View lists what the process may still see after Restrict.
type View struct {
	Dirs, Files, Sockets, WriteDirs []string
}

// Restrict does nothing outside Linux.
func Restrict(v View) (int, error) { return 0, nil }

// Rules describes v; outside Linux nothing is applied.
func (v View) Rules() []string { return nil }

// ABI returns 0: Landlock is Linux only.
func ABI() int { return 0 }

// RestrictThreadReadOnly changes nothing where there is no Landlock.
func RestrictThreadReadOnly() error { return nil }

// CanKeepDACReadSearch is false outside Linux.
func CanKeepDACReadSearch() bool { return false }
