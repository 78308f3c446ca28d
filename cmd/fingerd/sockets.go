package main

import (
	"errors"
	"fmt"
	"io"
	"log/syslog"
	"net"
	"os"
	"syscall"
	"time"

	"github.com/coreos/go-systemd/v22/activation"
	"golang.org/x/sys/unix"
)

// activated holds the sockets systemd passed (LISTEN_FDS): listening
// sockets (Accept=no) and connected ones (Accept=yes).
type activated struct {
	listeners []net.Listener
	conns     []net.Conn
}

// activationSockets returns the sockets passed by systemd socket
// activation, if any, and unsets the LISTEN_* variables.
func activationSockets() (activated, error) {
	var a activated
	for _, f := range activation.Files(true) {
		listening, err := unix.GetsockoptInt(int(f.Fd()), unix.SOL_SOCKET, unix.SO_ACCEPTCONN)
		if err != nil {
			f.Close()
			return a, fmt.Errorf("socket activation: fd %d is not a socket: %w", f.Fd(), err)
		}
		if listening == 1 {
			l, err := net.FileListener(f)
			f.Close()
			if err != nil {
				return a, fmt.Errorf("socket activation: %w", err)
			}
			a.listeners = append(a.listeners, l)
			continue
		}
		c, err := net.FileConn(f)
		f.Close()
		if err != nil {
			return a, fmt.Errorf("socket activation: %w", err)
		}
		a.conns = append(a.conns, c)
	}
	return a, nil
}

// stdioConn returns the connection inetd passes on standard input and
// output: the socket itself when standard input is one, otherwise an
// adapter over the two descriptors (for pipes, as in tests or under
// tcpserver-like supervisors).
func stdioConn() (net.Conn, error) {
	if c, err := net.FileConn(os.Stdin); err == nil {
		return c, nil
	}
	in, err := pollable(0, "stdin")
	if err != nil {
		return nil, err
	}
	out, err := pollable(1, "stdout")
	if err != nil {
		return nil, err
	}
	return &pipeConn{in: in, out: out}, nil
}

// pollable returns a new *os.File for a duplicate of fd in non-blocking
// mode, so that deadlines work on pipes.
func pollable(fd int, name string) (*os.File, error) {
	nfd, err := unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, 3)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if err := unix.SetNonblock(nfd, true); err != nil {
		unix.Close(nfd)
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return os.NewFile(uintptr(nfd), name), nil
}

// pipeConn is a net.Conn over standard input and output.
type pipeConn struct {
	in, out *os.File
}

func (c *pipeConn) Read(p []byte) (int, error)  { return c.in.Read(p) }
func (c *pipeConn) Write(p []byte) (int, error) { return c.out.Write(p) }
func (c *pipeConn) Close() error {
	return errors.Join(c.in.Close(), c.out.Close())
}
func (c *pipeConn) CloseWrite() error { return c.out.Close() }
func (c *pipeConn) LocalAddr() net.Addr {
	return stdioAddr("stdout")
}
func (c *pipeConn) RemoteAddr() net.Addr { return stdioAddr("stdin") }
func (c *pipeConn) SetDeadline(t time.Time) error {
	return errors.Join(c.in.SetReadDeadline(t), c.out.SetWriteDeadline(t))
}
func (c *pipeConn) SetReadDeadline(t time.Time) error  { return c.in.SetReadDeadline(t) }
func (c *pipeConn) SetWriteDeadline(t time.Time) error { return c.out.SetWriteDeadline(t) }

type stdioAddr string

func (a stdioAddr) Network() string { return "stdio" }
func (a stdioAddr) String() string  { return string(a) }

// stderrIsStdin reports whether standard error is the same file as
// standard input (classic inetd passes the socket as all three).
func stderrIsStdin() bool {
	var a, b syscall.Stat_t
	if syscall.Fstat(0, &a) != nil || syscall.Fstat(2, &b) != nil {
		return false
	}
	return a.Dev == b.Dev && a.Ino == b.Ino
}

// syslogWriter returns a writer to the system log, or io.Discard.
func syslogWriter() io.Writer {
	w, err := syslog.New(syslog.LOG_DAEMON|syslog.LOG_INFO, "fingerd")
	if err != nil {
		return io.Discard
	}
	return w
}
