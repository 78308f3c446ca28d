//go:build linux

package main

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"net/netip"
	"runtime"
	"strconv"
	"strings"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The sender is an HTTP/1.1 client on one OS thread: its sockets are
// non-blocking, it waits in epoll and times the publishes with a timerfd,
// and its system calls on the way of a publish are raw, unseen by the Go
// scheduler. On this benchmark's machine the publishers run on the cores
// whose share of fingerd they measure; net/http on the Go scheduler took
// about 330 µs of CPU time per publish at 500 a second, most of it the
// runtime waking its threads (and its monitor thread, 50 times in the
// millisecond after each wake-up) between requests 2 ms apart, which
// publishers on other machines would not take from fingerd. The requests
// are the same: keep-alive connections, Basic authentication, a body with
// its Content-Length; every answer is read whole and its status checked.

// requestTimeout bounds a publish from its sending to its answer.
const requestTimeout = 10 * time.Second

type pconn struct {
	fd         int
	connecting bool
	out        []byte // request bytes not yet written
	in         []byte // answer bytes read so far
	due, sent  time.Time
	busy       bool
}

type sender struct {
	addr     unix.SockaddrInet4
	host     string
	plan     string
	epfd     int
	timerfd  int
	conns    map[int]*pconn
	idle     []*pconn
	inflight int
	rec      func(due time.Time, status int, body string, err error)
	events   [128]unix.EpollEvent
	rbuf     [16 << 10]byte
	auth     []byte
}

func newSender(ap netip.AddrPort, plan string, rec func(time.Time, int, string, error)) (*sender, error) {
	if !ap.Addr().Is4() {
		return nil, errors.New("-addr must be an IPv4 loopback address")
	}
	s := &sender{addr: unix.SockaddrInet4{Port: int(ap.Port()), Addr: ap.Addr().As4()}, host: ap.String(),
		plan: plan, conns: map[int]*pconn{}, rec: rec}
	var err error
	if s.epfd, err = unix.EpollCreate1(unix.EPOLL_CLOEXEC); err != nil {
		return nil, fmt.Errorf("epoll: %w", err)
	}
	if s.timerfd, err = unix.TimerfdCreate(unix.CLOCK_MONOTONIC, unix.TFD_NONBLOCK|unix.TFD_CLOEXEC); err != nil {
		unix.Close(s.epfd)
		return nil, fmt.Errorf("timerfd: %w", err)
	}
	ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(s.timerfd)}
	if err := unix.EpollCtl(s.epfd, unix.EPOLL_CTL_ADD, s.timerfd, &ev); err != nil {
		s.close()
		return nil, fmt.Errorf("epoll: %w", err)
	}
	return s, nil
}

func (s *sender) close() {
	for fd := range s.conns {
		unix.Close(fd)
	}
	unix.Close(s.timerfd)
	unix.Close(s.epfd)
}

// dial opens one more keep-alive connection.
func (s *sender) dial() (*pconn, error) {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("socket: %w", err)
	}
	c := &pconn{fd: fd}
	switch err := unix.Connect(fd, &s.addr); err {
	case nil:
	case unix.EINPROGRESS:
		c.connecting = true
	default:
		unix.Close(fd)
		return nil, fmt.Errorf("connect: %w", err)
	}
	ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLOUT | unix.EPOLLRDHUP | unix.EPOLLET, Fd: int32(fd)}
	if err := unix.EpollCtl(s.epfd, unix.EPOLL_CTL_ADD, fd, &ev); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("epoll: %w", err)
	}
	s.conns[fd] = c
	return c, nil
}

// drop closes c; a publish it carried is reported with err.
func (s *sender) drop(c *pconn, err error) {
	if c.busy {
		c.busy = false
		s.inflight--
		s.rec(c.due, 0, "", err)
	}
	delete(s.conns, c.fd)
	unix.Close(c.fd) // also leaves the epoll set
	for i, ic := range s.idle {
		if ic == c {
			s.idle = append(s.idle[:i], s.idle[i+1:]...)
			break
		}
	}
}

// publish sends user i's plan (with counter n) on an idle connection, a
// new one while fewer than max are open; it reports false when every
// connection is busy.
func (s *sender) publish(i, n int, due time.Time, max int) (bool, error) {
	var c *pconn
	if k := len(s.idle); k > 0 {
		c, s.idle = s.idle[k-1], s.idle[:k-1]
	} else if len(s.conns) < max {
		var err error
		if c, err = s.dial(); err != nil {
			return true, err
		}
	} else {
		return false, nil
	}
	name := Name(i)
	body := s.plan + "publish " + strconv.Itoa(n) + "\n"
	cred := name + ":" + Token(i)
	s.auth = s.auth[:0]
	s.auth = base64.StdEncoding.AppendEncode(s.auth, []byte(cred))
	b := c.out[:0]
	b = append(b, "PUT /~"...)
	b = append(b, name...)
	b = append(b, "/plan HTTP/1.1\r\nHost: "...)
	b = append(b, s.host...)
	b = append(b, "\r\nAuthorization: Basic "...)
	b = append(b, s.auth...)
	b = append(b, "\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: "...)
	b = strconv.AppendInt(b, int64(len(body)), 10)
	b = append(b, "\r\n\r\n"...)
	b = append(b, body...)
	c.out, c.in = b, c.in[:0]
	c.due, c.sent, c.busy = due, time.Now(), true
	s.inflight++
	if !c.connecting {
		s.flush(c)
	}
	return true, nil
}

// flush writes what c still has to send.
func (s *sender) flush(c *pconn) {
	for len(c.out) > 0 {
		n, errno := rawRW(unix.SYS_WRITE, c.fd, c.out)
		switch {
		case errno == unix.EINTR:
		case errno == unix.EAGAIN:
			return // EPOLLOUT says when to go on
		case errno != 0:
			s.drop(c, fmt.Errorf("request: write: %w", errno))
			return
		default:
			c.out = c.out[n:]
		}
	}
}

// readable reads what c's server sent and reports a whole answer.
func (s *sender) readable(c *pconn) {
	for {
		n, errno := rawRW(unix.SYS_READ, c.fd, s.rbuf[:])
		switch {
		case errno == unix.EINTR:
			continue
		case errno == unix.EAGAIN:
			return
		case errno != 0:
			s.drop(c, fmt.Errorf("request: read: %w", errno))
			return
		case n == 0:
			err := errors.New("request: the server closed the connection")
			if len(c.in) > 0 {
				err = errors.New("request: the server closed the connection within an answer")
			}
			s.drop(c, err)
			return
		}
		if !c.busy {
			s.drop(c, errors.New("request: bytes from the server with no request in flight"))
			return
		}
		c.in = append(c.in, s.rbuf[:n]...)
		if !s.answer(c) {
			return
		}
	}
}

// answer reports c's answer if it is whole; it returns false when c was
// closed.
func (s *sender) answer(c *pconn) bool {
	end := bytes.Index(c.in, []byte("\r\n\r\n"))
	if end < 0 {
		if len(c.in) > 64<<10 {
			s.drop(c, errors.New("request: answer header over 64 KiB"))
			return false
		}
		return true
	}
	head := string(c.in[:end])
	lines := strings.Split(head, "\r\n")
	status := 0
	if f := strings.Fields(lines[0]); len(f) >= 2 && len(f[0]) >= 5 && f[0][:5] == "HTTP/" {
		status, _ = strconv.Atoi(f[1])
	}
	if status < 100 {
		s.drop(c, fmt.Errorf("request: bad status line %q", lines[0]))
		return false
	}
	length, closing := 0, false
	for _, l := range lines[1:] {
		k, v, ok := strings.Cut(l, ":")
		if !ok {
			continue
		}
		switch strings.ToLower(strings.TrimSpace(k)) {
		case "content-length":
			n, err := strconv.Atoi(strings.TrimSpace(v))
			if err != nil || n < 0 {
				s.drop(c, fmt.Errorf("request: bad Content-Length %q", v))
				return false
			}
			length = n
		case "transfer-encoding":
			s.drop(c, fmt.Errorf("request: answer with Transfer-Encoding %q", strings.TrimSpace(v)))
			return false
		case "connection":
			closing = strings.EqualFold(strings.TrimSpace(v), "close")
		}
	}
	if len(c.in) < end+4+length {
		return true
	}
	if len(c.in) > end+4+length {
		s.drop(c, errors.New("request: bytes after the answer"))
		return false
	}
	body := string(c.in[end+4:])
	c.busy = false
	s.inflight--
	s.rec(c.due, status, body, nil)
	if closing {
		s.drop(c, nil)
		return false
	}
	c.in = c.in[:0]
	s.idle = append(s.idle, c)
	return true
}

// wait arms the timer for d (none when d < 0) and waits for events.
func (s *sender) wait(d time.Duration) ([]unix.EpollEvent, error) {
	if d >= 0 {
		if d < time.Microsecond {
			d = time.Microsecond // zero would disarm it
		}
		spec := unix.ItimerSpec{Value: unix.NsecToTimespec(int64(d))}
		if _, _, errno := unix.RawSyscall6(unix.SYS_TIMERFD_SETTIME, uintptr(s.timerfd), 0,
			uintptr(unsafe.Pointer(&spec)), 0, 0, 0); errno != 0 {
			return nil, fmt.Errorf("timerfd_settime: %w", errno)
		}
	}
	// Without a publish due, come back within 50 ms to check timeouts.
	timeout := -1
	if d < 0 {
		timeout = 50
	}
	for {
		n, _, errno := unix.RawSyscall6(unix.SYS_EPOLL_PWAIT, uintptr(s.epfd), uintptr(unsafe.Pointer(&s.events[0])),
			uintptr(len(s.events)), uintptr(timeout), 0, 0)
		switch errno {
		case 0:
			return s.events[:n], nil
		case unix.EINTR:
			// The runtime's signals (preemption): wait again.
			if timeout >= 0 {
				return nil, nil
			}
		default:
			return nil, fmt.Errorf("epoll_pwait: %w", errno)
		}
	}
}

// handle processes one epoll event.
func (s *sender) handle(ev unix.EpollEvent) {
	fd := int(ev.Fd)
	if fd == s.timerfd {
		var b [8]byte
		rawRW(unix.SYS_READ, fd, b[:])
		return
	}
	c := s.conns[fd]
	if c == nil {
		return
	}
	if c.connecting && ev.Events&(unix.EPOLLOUT|unix.EPOLLERR|unix.EPOLLHUP) != 0 {
		if v, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ERROR); err != nil || v != 0 {
			if err == nil {
				err = unix.Errno(v)
			}
			s.drop(c, fmt.Errorf("request: connect: %w", err))
			return
		}
		c.connecting = false
	}
	if ev.Events&unix.EPOLLOUT != 0 && !c.connecting && len(c.out) > 0 {
		s.flush(c)
		if s.conns[fd] == nil {
			return
		}
	}
	if ev.Events&(unix.EPOLLIN|unix.EPOLLRDHUP|unix.EPOLLHUP|unix.EPOLLERR) != 0 {
		s.readable(c)
	}
}

// expire fails the publishes in flight for longer than requestTimeout.
func (s *sender) expire(now time.Time) {
	for _, c := range s.conns {
		if c.busy && now.Sub(c.sent) > requestTimeout {
			s.drop(c, errors.New("request: no answer within "+requestTimeout.String()))
		}
	}
}

// rawLoad publishes at rate for dur from one OS thread; see load.
func rawLoad(stop func() bool, ap netip.AddrPort, users int, rate float64, dur time.Duration, conc int, plan string,
	rec func(due time.Time, status int, body string, err error)) (sent, late int, elapsed time.Duration, err error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	s, err := newSender(ap, plan, rec)
	if err != nil {
		return 0, 0, 0, err
	}
	defer s.close()
	interval := time.Duration(float64(time.Second) / rate)
	start := time.Now()
	deadline := start.Add(dur)
	next := start
	lastExpire := start
	for {
		now := time.Now()
		for next.Before(deadline) && !next.After(now) {
			i := sent % users
			sent++
			ok, derr := s.publish(i, sent, next, conc)
			switch {
			case derr != nil:
				rec(next, 0, "", derr)
			case !ok:
				late++
			}
			next = next.Add(interval)
		}
		if now.Sub(lastExpire) > 100*time.Millisecond {
			s.expire(now)
			lastExpire = now
			if stop() {
				return sent, late, time.Since(start), errors.New("interrupted")
			}
		}
		more := next.Before(deadline)
		if !more && s.inflight == 0 {
			return sent, late, time.Since(start), nil
		}
		d := time.Duration(-1)
		if more {
			d = time.Until(next)
		}
		evs, werr := s.wait(d)
		if werr != nil {
			return sent, late, time.Since(start), werr
		}
		for _, ev := range evs {
			s.handle(ev)
		}
	}
}

// rawRW is read(2) or write(2) on fd without the Go scheduler.
func rawRW(trap uintptr, fd int, b []byte) (int, unix.Errno) {
	if len(b) == 0 {
		return 0, 0
	}
	n, _, errno := unix.RawSyscall(trap, uintptr(fd), uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)))
	return int(n), errno
}
