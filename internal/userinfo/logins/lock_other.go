//go:build !linux

package logins

import (
	"context"
	"errors"
	"os"
)

// sharedLock is available on Linux only: elsewhere a WAL-mode database
// without its -shm file is not read.
func sharedLock(context.Context, *os.File) error {
	return errors.New("logins: a WAL database without -shm can be read on Linux only")
}
