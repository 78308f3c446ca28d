//go:build unix

package finger

import (
	"io"
	"net"
	"os"
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

// readNow reads the start of the query from a connection whose reads are
// its socket's own (*net.TCPConn, *net.UnixConn), waiting for it in the
// runtime's poller without holding a buffer: the buffer is taken when
// something has arrived (usually with the connection: one system call)
// and given back while nothing has. The wait ends, as c.Read's would, at
// the read deadline (an eviction's included) or when c is closed: waitErr.
// It reports false, having done nothing, for any other kind of connection.
func readNow(c net.Conn, max int) (pre preRead, waitErr error, ok bool) {
	var rc syscall.RawConn
	var err error
	switch c := c.(type) {
	case *net.TCPConn:
		rc, err = c.SyscallConn()
	case *net.UnixConn:
		rc, err = c.SyscallConn()
	default:
		return pre, nil, false
	}
	if err != nil {
		return pre, nil, false
	}
	waitErr = rc.Read(func(fd uintptr) bool {
		pre.bp = lineBufs.Get().(*[]byte)
		pre.n, pre.err = syscall.Read(int(fd), lineBuf(pre.bp, max))
		if pre.err == syscall.EAGAIN || pre.err == syscall.EINTR {
			lineBufs.Put(pre.bp)
			pre.bp = nil
			return false
		}
		return true
	})
	switch {
	case waitErr != nil:
	case pre.err != nil:
		// As c.Read would report it.
		pre.n = 0
		pre.err = &net.OpError{Op: "read", Net: c.LocalAddr().Network(), Source: c.LocalAddr(), Addr: c.RemoteAddr(), Err: os.NewSyscallError("read", pre.err)}
	case pre.n == 0:
		pre.err = io.EOF
	}
	return pre, waitErr, true
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
