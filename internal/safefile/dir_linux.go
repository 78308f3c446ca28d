package safefile

import "golang.org/x/sys/unix"

// openDir opens the directory name (relative to dir when dir >= 0) only to
// walk through it: O_PATH needs no read permission on it, and O_NOFOLLOW
// with O_DIRECTORY refuses a symbolic link.
func openDir(dir int, name string) (int, error) {
	return openAt(dir, name, unix.O_PATH|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC)
}
