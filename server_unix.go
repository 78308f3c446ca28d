//go:build unix

package finger

import (
	"net"
	"syscall"
)

// waitReadable blocks until c has something to read (or its read deadline
// passes, or the client closes), for connections that expose their
// descriptor; others return at once and are read directly. It peeks
// rather than reads, so no buffer is held while the client is silent.
func waitReadable(c net.Conn) error {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return nil
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	// The socket is non-blocking: a peek with nothing to read fails with
	// EAGAIN, and Read then waits for the poller.
	return rc.Read(func(fd uintptr) bool {
		var b [1]byte
		_, _, err := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK)
		return err != syscall.EAGAIN && err != syscall.EINTR
	})
}

// descriptorLimit returns the process's soft limit on open descriptors, or
// 0 when it is unknown or unlimited.
func descriptorLimit() int {
	var r syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &r); err != nil || r.Cur > 1<<30 {
		return 0
	}
	return int(r.Cur)
}
