package safefile

import (
	"syscall"

	"golang.org/x/sys/unix"
)

// openDir opens the directory name (relative to dir when dir >= 0) only to
// walk through it: O_PATH needs no read permission on it, and O_NOFOLLOW
// with O_DIRECTORY refuses a symbolic link.
func openDir(dir int, name string) (int, error) {
	const flags = unix.O_PATH | unix.O_DIRECTORY | unix.O_NOFOLLOW | unix.O_CLOEXEC
	for {
		var fd int
		var err error
		if dir >= 0 {
			fd, err = syscall.Openat(dir, name, flags, 0)
		} else {
			fd, err = syscall.Open(name, flags, 0)
		}
		if err == syscall.EINTR {
			continue
		}
		return fd, err
	}
}
