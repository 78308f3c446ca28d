package passwd

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"

	"github.com/openfinger/finger/internal/safefile"
	"github.com/openfinger/finger/internal/userinfo"
)

// DefaultMaxPending is the default bound on file operations that are still
// running after their context ended (see Files).
const DefaultMaxPending = 64

var _ userinfo.Files = (*Files)(nil)

// Files is a userinfo.Files that reads dot-files from the accounts' home
// directories with the privileges of the running process.
//
// A file is published only when it is a regular file, owned by the
// account's UID, and readable by others (mode o+r). It is read with
// safefile.Read: opened with O_NOFOLLOW|O_NONBLOCK|O_CLOEXEC|O_NOCTTY after
// an lstat(2) that refuses anything but a regular file, and checked again
// with fstat(2) on the open descriptor: a symlink (even to a
// world-readable file), a FIFO, a socket or a device is never read and
// never blocks; a file swapped between the two checks is caught by
// comparing device and inode. The home directory itself may be reached
// through symbolic links (/home -> /srv/home): only the user's own
// entries in it are the user's to change.
//
// Home directories can hang (an unresponsive NFS server). Every file-system
// access runs in its own goroutine and the call returns when ctx is done;
// the goroutine then lingers until the kernel returns, and closes what it
// opened. At most MaxPending such operations may be outstanding; beyond
// that, calls fail at once instead of piling up blocked threads.
//
// Errors from ReadFile always wrap userinfo.ErrNotFound (they may also wrap
// the context's error); their text names paths and is meant for the log,
// never for the remote user.
//
// A Files is safe for concurrent use; its fields must not be changed after
// first use.
type Files struct {
	// HideUnreadableHomes decides what Hidden reports when it cannot know:
	// the home directory cannot be searched (typically mode 0700 and a
	// daemon running as an unprivileged user), does not respond in time,
	// or the account's home is not an absolute path. When false (the
	// default, netkit's behaviour) such users are shown, and their files
	// are simply not readable; when true they are treated as having a
	// .nofinger file, which hides every user with a private home.
	HideUnreadableHomes bool

	// MaxPending bounds the file-system operations still running after
	// their caller gave up; DefaultMaxPending when 0.
	MaxPending int

	pending atomic.Int64

	// lstat replaces syscall.Lstat in tests (hung or private homes).
	lstat func(string, *syscall.Stat_t) error
}

func (f *Files) lstatFunc() func(string, *syscall.Stat_t) error {
	if f.lstat != nil {
		return f.lstat
	}
	return syscall.Lstat
}

func (f *Files) maxPending() int64 {
	if f.MaxPending > 0 {
		return int64(f.MaxPending)
	}
	return DefaultMaxPending
}

// errBusy is returned when too many operations are pending.
var errBusy = errors.New("too many pending home-directory operations")

// run calls fn in a goroutine and waits for it or for ctx. fn must clean up
// after itself: its result is dropped when ctx ends first.
func run[T any](ctx context.Context, f *Files, fn func() (T, error)) (T, error) {
	var zero T
	if err := ctx.Err(); err != nil {
		return zero, err
	}
	if f.pending.Add(1) > f.maxPending() {
		f.pending.Add(-1)
		return zero, errBusy
	}
	type result struct {
		v   T
		err error
	}
	ch := make(chan result, 1)
	go func() {
		defer f.pending.Add(-1)
		v, err := fn()
		ch <- result{v, err}
	}()
	select {
	case r := <-ch:
		return r.v, r.err
	case <-ctx.Done():
		return zero, ctx.Err()
	}
}

// userPath returns the path of name in a's home directory, or an error
// when the home is not absolute or name is not a plain file name.
func userPath(a *userinfo.Account, name string) (string, error) {
	if a == nil {
		return "", errors.New("no account")
	}
	if !filepath.IsAbs(a.Home) {
		return "", fmt.Errorf("home directory %q of %q is not absolute", a.Home, a.Login)
	}
	if name == "" || name == "." || name == ".." || strings.ContainsAny(name, "/\x00") {
		return "", fmt.Errorf("bad file name %q", name)
	}
	return filepath.Join(filepath.Clean(a.Home), name), nil
}

func notFound(path, why string, err error) error {
	if err != nil {
		return fmt.Errorf("passwd: %s: %s: %w: %w", path, why, userinfo.ErrNotFound, err)
	}
	return fmt.Errorf("passwd: %s: %s: %w", path, why, userinfo.ErrNotFound)
}

// ReadFile returns the published file name (".plan", ".project",
// ".pgpkey", ...) of a's home directory, at most limit bytes; Truncated is
// set when the file is longer. A limit below zero is treated as zero.
func (f *Files) ReadFile(ctx context.Context, a *userinfo.Account, name string, limit int64) (userinfo.UserFile, error) {
	p, err := userPath(a, name)
	if err != nil {
		return userinfo.UserFile{}, notFound(name, "refused", err)
	}
	lstat := f.lstatFunc()
	rules := safefile.Rules{Owners: []uint32{a.UID}, OthersRead: true, Lstat: lstat}
	uf, err := run(ctx, f, func() (userinfo.UserFile, error) {
		data, truncated, err := safefile.Read(p, rules, limit)
		if err != nil {
			return userinfo.UserFile{}, fmt.Errorf("passwd: %w: %w", userinfo.ErrNotFound, err)
		}
		return userinfo.UserFile{Data: data, Truncated: truncated}, nil
	})
	if err != nil && !errors.Is(err, userinfo.ErrNotFound) {
		return userinfo.UserFile{}, notFound(p, "not read", err)
	}
	return uf, err
}

// Hidden reports whether a has a ~/.nofinger entry of any type (lstat, so
// a dangling symlink counts too). When the home cannot be searched (EACCES:
// a private home the daemon may not look into) it returns
// f.HideUnreadableHomes. Any other failure to know (a hung or failing
// file system, too many lookups pending, the query's time up) hides the
// user: an opt-out is never lost to a fault.
func (f *Files) Hidden(ctx context.Context, a *userinfo.Account) bool {
	p, err := userPath(a, ".nofinger")
	if err != nil {
		return f.HideUnreadableHomes
	}
	lstat := f.lstatFunc()
	hidden, err := run(ctx, f, func() (bool, error) {
		var st syscall.Stat_t
		err := lstat(p, &st)
		switch err {
		case nil:
			return true, nil
		case syscall.ENOENT, syscall.ENOTDIR:
			// No such file, or no such home: nothing asks to hide.
			return false, nil
		}
		return false, err
	})
	switch {
	case err == nil:
		return hidden
	case errors.Is(err, syscall.EACCES):
		return f.HideUnreadableHomes
	}
	return true
}
