//go:build unix

package finger

import (
	"io"
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

// readNow reads what a connection whose reads are its socket's own
// (*net.TCPConn, *net.UnixConn) has already received, without waiting: the
// query usually arrives with the connection, and one system call then
// does what waiting (waitReadable) and reading take two for. It reports
// false, having read nothing and holding no buffer, when c is of another
// kind or nothing has arrived yet.
func readNow(c net.Conn, max int) (pre preRead, ok bool) {
	var rc syscall.RawConn
	var err error
	switch c := c.(type) {
	case *net.TCPConn:
		rc, err = c.SyscallConn()
	case *net.UnixConn:
		rc, err = c.SyscallConn()
	default:
		return pre, false
	}
	if err != nil {
		return pre, false
	}
	bp := lineBufs.Get().(*[]byte)
	buf := lineBuf(bp, max)
	var n int
	var rerr error
	if cerr := rc.Control(func(fd uintptr) { n, rerr = syscall.Read(int(fd), buf) }); cerr != nil ||
		rerr == syscall.EAGAIN || rerr == syscall.EINTR {
		lineBufs.Put(bp)
		return pre, false
	}
	switch {
	case rerr != nil:
		n = 0
	case n == 0:
		rerr = io.EOF
	}
	return preRead{bp: bp, n: n, err: rerr}, true
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
