package logins

import (
	"context"
	"errors"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// SQLite's lock bytes (os_unix.c): a reader holds a read lock on the
// shared range; a writer needs a write lock on all of it to change the
// database file, and takes the pending byte first.
const (
	pendingByte = 0x40000000
	sharedFirst = pendingByte + 2
	sharedSize  = 510
)

// sharedLock takes a shared lock on the database file f the way a SQLite
// reader does, retrying while a writer holds or waits for the file until
// ctx is done. It uses open file description locks, which conflict with
// the POSIX locks of SQLite in other processes and are released when f is
// closed, not when another descriptor of the file is.
func sharedLock(ctx context.Context, f *os.File) error {
	lock := func(typ int16, start, n int64) error {
		lk := unix.Flock_t{Type: typ, Whence: 0, Start: start, Len: n}
		return unix.FcntlFlock(f.Fd(), unix.F_OFD_SETLK, &lk)
	}
	for {
		err := lock(unix.F_RDLCK, pendingByte, 1)
		if err == nil {
			err = lock(unix.F_RDLCK, sharedFirst, sharedSize)
			if uerr := lock(unix.F_UNLCK, pendingByte, 1); err == nil {
				err = uerr
			}
			if err == nil {
				return nil
			}
		}
		if !errors.Is(err, unix.EAGAIN) && !errors.Is(err, unix.EACCES) {
			return err
		}
		if err := sleep(ctx, 5*time.Millisecond); err != nil {
			return errBusy
		}
	}
}
