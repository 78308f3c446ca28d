// Package safefile reads files that someone other than the daemon's
// operator may control: the files users publish in their home directories
// and the files of virtual users that a user maintains. Such a file is read
// only when it is what it claims to be, and reading it can neither block
// nor be redirected to another file.
//
// Read checks the path with lstat(2) first, so that nothing but a regular
// file is ever opened (opening a device can have side effects), opens it
// with O_NOFOLLOW|O_NONBLOCK|O_NOCTTY|O_CLOEXEC, checks the open
// descriptor again with fstat(2) and compares device and inode with what
// lstat saw, so a file swapped between the two steps is refused. Both
// checks apply the same Rules: regular file, owner, mode.
//
// Symbolic links: the last component of the path is never followed. With
// Rules.NoSymlinks, no component is: the path is walked one directory at a
// time, each opened relative to the previous one with O_NOFOLLOW, so
// replacing a directory of the path by a symbolic link (to /etc, say) is
// refused as well.
package safefile

import (
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"syscall"
)

// ErrRefused is wrapped by the errors of files that exist but that Rules
// do not allow to be read: a symbolic link, not a regular file, a wrong
// owner or mode, or a file replaced while it was being opened.
var ErrRefused = errors.New("refused")

// Rules say which files may be read.
type Rules struct {
	// Owners lists the UIDs the file may belong to. Empty: any owner.
	Owners []uint32
	// OthersRead requires the file to be readable by others (mode o+r):
	// its owner published it.
	OthersRead bool
	// NotWritable refuses a file that its group or others may write
	// (mode g+w or o+w): only its owner may have put its content there.
	NotWritable bool
	// NoSymlinks refuses a symbolic link in any component of the path,
	// not only in the last one. The path must then be absolute.
	NoSymlinks bool
	// Lstat replaces syscall.Lstat, for tests; nil means syscall.Lstat.
	Lstat func(path string, st *syscall.Stat_t) error
}

// Check returns why a file with stat st may not be read, or nil when it
// may. The error wraps ErrRefused.
func (r *Rules) Check(st *syscall.Stat_t) error {
	switch {
	case st.Mode&syscall.S_IFMT == syscall.S_IFLNK:
		return refused("a symbolic link")
	case st.Mode&syscall.S_IFMT != syscall.S_IFREG:
		return refused("not a regular file")
	case len(r.Owners) > 0 && !owned(st.Uid, r.Owners):
		return refused(fmt.Sprintf("owned by uid %d, not by %s", st.Uid, uids(r.Owners)))
	case r.OthersRead && st.Mode&syscall.S_IROTH == 0:
		return refused("not readable by others")
	case r.NotWritable && st.Mode&(syscall.S_IWGRP|syscall.S_IWOTH) != 0:
		return refused(fmt.Sprintf("writable by group or others (mode %04o)", st.Mode&0o7777))
	}
	return nil
}

func refused(why string) error { return fmt.Errorf("%s: %w", why, ErrRefused) }

func owned(uid uint32, owners []uint32) bool {
	for _, o := range owners {
		if o == uid {
			return true
		}
	}
	return false
}

func uids(owners []uint32) string {
	s := make([]string, len(owners))
	for i, o := range owners {
		s[i] = fmt.Sprintf("uid %d", o)
	}
	return strings.Join(s, " or ")
}

// Read returns the content of the file at path, at most limit bytes, and
// whether the file is longer than that; a limit below zero is taken as
// zero. The file must satisfy r (see the package documentation). Errors
// name the path and the step that failed, start with "safefile:", and wrap
// ErrRefused when r refused the file, or the system's error (ENOENT,
// ELOOP, EACCES...).
func Read(path string, r Rules, limit int64) (data []byte, truncated bool, err error) {
	limit = max(limit, 0)
	if limit == 1<<63-1 {
		limit-- // room for the extra byte below
	}
	lstat := r.Lstat
	if lstat == nil {
		lstat = syscall.Lstat
	}
	var lst syscall.Stat_t
	if err := lstat(path, &lst); err != nil {
		return nil, false, fail(path, "lstat", err)
	}
	if err := r.Check(&lst); err != nil {
		return nil, false, fail(path, "", err)
	}
	var fd int
	if r.NoSymlinks {
		fd, err = openNoSymlinks(path)
	} else {
		fd, err = openFile(-1, path)
	}
	if err != nil {
		return nil, false, fail(path, "open", err)
	}
	defer syscall.Close(fd)
	var st syscall.Stat_t
	if err := syscall.Fstat(fd, &st); err != nil {
		return nil, false, fail(path, "fstat", err)
	}
	if err := r.Check(&st); err != nil {
		return nil, false, fail(path, "", err)
	}
	if st.Dev != lst.Dev || st.Ino != lst.Ino {
		return nil, false, fail(path, "", refused("replaced while being opened"))
	}
	// Read up to limit+1 bytes to learn whether the file is longer.
	want := limit + 1
	if st.Size >= 0 && st.Size < want {
		want = st.Size + 1 // the file may grow; one more byte tells
	}
	buf := make([]byte, 0, min(want, 64*1024))
	lr := io.LimitReader(fdReader(fd), limit+1)
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := lr.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, false, fail(path, "read", err)
		}
	}
	if int64(len(buf)) > limit {
		return buf[:limit], true, nil
	}
	return buf, false, nil
}

func fail(path, step string, err error) error {
	if step == "" {
		return fmt.Errorf("safefile: %s: %w", path, err)
	}
	return fmt.Errorf("safefile: %s: %s: %w", path, step, err)
}

// openFile opens name (relative to dir when dir >= 0) for reading without
// following a symbolic link in its last component and without blocking.
func openFile(dir int, name string) (int, error) {
	flags := syscall.O_RDONLY | syscall.O_NOFOLLOW | syscall.O_NONBLOCK | syscall.O_CLOEXEC | syscall.O_NOCTTY
	return openAt(dir, name, flags)
}

// openAt opens name with flags, relative to dir when dir >= 0, retrying
// on EINTR.
func openAt(dir int, name string, flags int) (int, error) {
	for {
		var fd int
		var err error
		if dir >= 0 {
			fd, err = syscall.Openat(dir, name, flags, 0)
		} else {
			fd, err = syscall.Open(name, flags, 0)
		}
		if err != syscall.EINTR {
			return fd, err
		}
	}
}

// openNoSymlinks opens the absolute path one component at a time, never
// following a symbolic link.
func openNoSymlinks(path string) (int, error) {
	if !filepath.IsAbs(path) {
		return -1, fmt.Errorf("%q is not an absolute path", path)
	}
	clean := filepath.Clean(path)
	if clean == "/" {
		return -1, syscall.EISDIR
	}
	dir, err := openDir(-1, "/")
	if err != nil {
		return -1, err
	}
	parts := strings.Split(clean[1:], "/")
	for i, part := range parts[:len(parts)-1] {
		next, err := openDir(dir, part)
		syscall.Close(dir)
		if err != nil {
			if err == syscall.ELOOP || err == syscall.ENOTDIR {
				return -1, fmt.Errorf("%s: %w", "/"+strings.Join(parts[:i+1], "/"), refused("a symbolic link or not a directory"))
			}
			return -1, err
		}
		dir = next
	}
	defer syscall.Close(dir)
	return openFile(dir, parts[len(parts)-1])
}

// fdReader reads from a raw descriptor, retrying on EINTR.
type fdReader int

func (fd fdReader) Read(b []byte) (int, error) {
	if len(b) == 0 {
		return 0, nil
	}
	for {
		n, err := syscall.Read(int(fd), b)
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return 0, err
		}
		if n == 0 {
			return 0, io.EOF
		}
		return n, nil
	}
}
