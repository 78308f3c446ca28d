//go:build linux

package main

import (
	"container/heap"
	"context"
	"fmt"
	"net/netip"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The flood runs on one OS thread: non-blocking sockets in epoll and raw
// system calls, which the Go scheduler does not see. A benchmark runs the
// flood on the cores whose share of the server it measures, and a
// connection dialled and watched through Go's net package cost the
// generator about 100-130 µs of CPU time (goroutines, their timers and
// the runtime's threads waking for each one), where an attacker on other
// machines would take nothing from the server's cores.

// flood holds idle connections from many source addresses.
type flood struct {
	cancel                                                   context.CancelFunc
	wg                                                       sync.WaitGroup
	open, opened, evicted, refused, timedOut, other, dialErr atomic.Int64
}

func (f *flood) stop() {
	f.cancel()
	f.wg.Wait()
}

// slot is one held connection, reopened as the server closes it.
type slot struct {
	src   int // index of its source address
	fd    int // -1 while closed
	first bool
	conn  bool // connect still in progress
}

// reopen is a slot due to dial again at a time.
type reopen struct {
	at   time.Time
	slot int
}

type reopens []reopen

func (h reopens) Len() int           { return len(h) }
func (h reopens) Less(i, j int) bool { return h[i].at.Before(h[j].at) }
func (h reopens) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *reopens) Push(x any)        { *h = append(*h, x.(reopen)) }
func (h *reopens) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// floodLoop is the state of the flood's thread.
type floodLoop struct {
	f       *flood
	epfd    int
	dst     unix.RawSockaddrAny
	dstLen  uintptr
	srcs    []unix.RawSockaddrAny
	srcLen  uintptr
	family  int
	slots   []slot
	byFD    map[int]int // fd → slot
	next    []time.Time // each address's next allowed dial
	gap     time.Duration
	due     reopens
	pending int // first dials not yet counted
	ready   chan struct{}
	readyOK bool // ready is closed
	buf     [64]byte
	events  [256]unix.EpollEvent
}

// startFlood opens c.hold connections over c.holdAddrs addresses and keeps
// them open until stop: each, when the server closes it, is opened again,
// no address opening more than c.holdRate a second. It returns once the
// first c.hold are open (or have failed).
func startFlood(ctx context.Context, c config) (*flood, error) {
	srcs, err := holdSources(c.holdFrom, c.holdAddrs)
	if err != nil {
		return nil, err
	}
	dst, err := netip.ParseAddrPort(c.addr)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	f := &flood{cancel: cancel}
	l := &floodLoop{f: f, byFD: map[int]int{}, next: make([]time.Time, len(srcs)),
		gap: time.Duration(float64(time.Second) / c.holdRate), ready: make(chan struct{})}
	l.family, l.dst, l.dstLen = sockaddr(dst.Addr(), dst.Port())
	for _, s := range srcs {
		fam, sa, n := sockaddr(s, 0)
		if fam != l.family {
			cancel()
			return nil, fmt.Errorf("%w: -hold-from and -addr must be of one address family", errUsage)
		}
		l.srcs, l.srcLen = append(l.srcs, sa), n
	}
	if l.epfd, err = unix.EpollCreate1(unix.EPOLL_CLOEXEC); err != nil {
		cancel()
		return nil, err
	}
	l.slots = make([]slot, c.hold)
	for k := range l.slots {
		l.slots[k] = slot{src: k % len(srcs), fd: -1, first: true}
	}
	l.pending = c.hold
	ready := l.ready
	var stopped atomic.Bool
	context.AfterFunc(ctx, func() { stopped.Store(true) })
	f.wg.Add(1)
	go func() {
		defer f.wg.Done()
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		l.run(stopped.Load)
	}()
	select {
	case <-ready:
	case <-ctx.Done():
	}
	return f, nil
}

// sockaddr encodes a and port for the raw system calls.
func sockaddr(a netip.Addr, port uint16) (family int, sa unix.RawSockaddrAny, n uintptr) {
	if a.Is4() {
		p := (*unix.RawSockaddrInet4)(unsafe.Pointer(&sa))
		p.Family = unix.AF_INET
		p.Port = port<<8 | port>>8
		p.Addr = a.As4()
		return unix.AF_INET, sa, unix.SizeofSockaddrInet4
	}
	p := (*unix.RawSockaddrInet6)(unsafe.Pointer(&sa))
	p.Family = unix.AF_INET6
	p.Port = port<<8 | port>>8
	p.Addr = a.As16()
	return unix.AF_INET6, sa, unix.SizeofSockaddrInet6
}

func (l *floodLoop) run(stopped func() bool) {
	defer func() {
		for fd := range l.byFD {
			unix.Close(fd)
		}
		unix.Close(l.epfd)
	}()
	for k := range l.slots {
		l.dial(k)
	}
	l.checkReady()
	for !stopped() {
		now := time.Now()
		for len(l.due) > 0 && !l.due[0].at.After(now) {
			l.dial(heap.Pop(&l.due).(reopen).slot)
		}
		// Wait at most 10 ms: the runtime cannot stop this thread for a
		// garbage collection while it waits in a raw system call.
		timeout := 10
		if len(l.due) > 0 {
			if ms := int(time.Until(l.due[0].at)/time.Millisecond) + 1; ms < timeout {
				timeout = ms
			}
		}
		n, _, errno := unix.RawSyscall6(unix.SYS_EPOLL_PWAIT, uintptr(l.epfd), uintptr(unsafe.Pointer(&l.events[0])),
			uintptr(len(l.events)), uintptr(timeout), 0, 0)
		if errno != 0 {
			continue // EINTR: the runtime's signals
		}
		for _, ev := range l.events[:n] {
			if k, ok := l.byFD[int(ev.Fd)]; ok {
				l.event(k, ev.Events)
			}
		}
		l.checkReady()
	}
}

func (l *floodLoop) checkReady() {
	if l.pending == 0 && !l.readyOK {
		close(l.ready)
		l.readyOK = true
	}
}

// counted marks slot k's first dial as done.
func (l *floodLoop) counted(k int) {
	if l.slots[k].first {
		l.slots[k].first = false
		l.pending--
	}
}

// dial opens slot k's connection.
func (l *floodLoop) dial(k int) {
	s := &l.slots[k]
	fd, _, errno := unix.RawSyscall(unix.SYS_SOCKET, uintptr(l.family), unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if errno != 0 {
		l.dialFailed(k)
		return
	}
	one := int32(1)
	unix.RawSyscall6(unix.SYS_SETSOCKOPT, fd, unix.IPPROTO_IP, unix.IP_BIND_ADDRESS_NO_PORT, uintptr(unsafe.Pointer(&one)), 4, 0)
	if _, _, errno = unix.RawSyscall(unix.SYS_BIND, fd, uintptr(unsafe.Pointer(&l.srcs[s.src])), l.srcLen); errno != 0 {
		unix.RawSyscall(unix.SYS_CLOSE, fd, 0, 0)
		l.dialFailed(k)
		return
	}
	ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLOUT | unix.EPOLLRDHUP | unix.EPOLLET, Fd: int32(fd)}
	if _, _, errno = unix.RawSyscall6(unix.SYS_EPOLL_CTL, uintptr(l.epfd), unix.EPOLL_CTL_ADD, fd, uintptr(unsafe.Pointer(&ev)), 0, 0); errno != 0 {
		unix.RawSyscall(unix.SYS_CLOSE, fd, 0, 0)
		l.dialFailed(k)
		return
	}
	s.fd, s.conn = int(fd), true
	l.byFD[s.fd] = k
	switch _, _, errno = unix.RawSyscall(unix.SYS_CONNECT, fd, uintptr(unsafe.Pointer(&l.dst)), l.dstLen); errno {
	case 0:
		l.connected(k)
	case unix.EINPROGRESS, unix.EINTR:
		// EPOLLOUT tells.
	default:
		l.closeSlot(k)
		l.dialFailed(k)
	}
}

func (l *floodLoop) connected(k int) {
	l.slots[k].conn = false
	l.f.opened.Add(1)
	l.f.open.Add(1)
	l.counted(k)
}

func (l *floodLoop) dialFailed(k int) {
	l.f.dialErr.Add(1)
	l.counted(k)
	l.schedule(k)
}

// schedule queues slot k's next dial within its address's rate.
func (l *floodLoop) schedule(k int) {
	i := l.slots[k].src
	now := time.Now()
	at := l.next[i]
	if at.Before(now) {
		at = now
	}
	l.next[i] = at.Add(l.gap)
	heap.Push(&l.due, reopen{at: at, slot: k})
}

func (l *floodLoop) closeSlot(k int) {
	s := &l.slots[k]
	delete(l.byFD, s.fd)
	unix.RawSyscall(unix.SYS_CLOSE, uintptr(s.fd), 0, 0)
	s.fd = -1
}

// event handles epoll's events for slot k.
func (l *floodLoop) event(k int, events uint32) {
	s := &l.slots[k]
	if s.conn {
		if events&(unix.EPOLLOUT|unix.EPOLLERR|unix.EPOLLHUP) == 0 {
			return
		}
		v, vlen := int32(0), uint32(4)
		_, _, errno := unix.RawSyscall6(unix.SYS_GETSOCKOPT, uintptr(s.fd), unix.SOL_SOCKET, unix.SO_ERROR,
			uintptr(unsafe.Pointer(&v)), uintptr(unsafe.Pointer(&vlen)), 0)
		if errno != 0 || v != 0 {
			l.closeSlot(k)
			l.dialFailed(k)
			return
		}
		l.connected(k)
	}
	if events&(unix.EPOLLIN|unix.EPOLLRDHUP|unix.EPOLLHUP|unix.EPOLLERR) == 0 {
		return
	}
	// The server ended the connection (or said why first): what it said
	// names how, as it would to a client.
	n, _, errno := unix.RawSyscall(unix.SYS_READ, uintptr(s.fd), uintptr(unsafe.Pointer(&l.buf[0])), uintptr(len(l.buf)))
	if errno == unix.EAGAIN {
		return
	}
	reply := ""
	if errno == 0 {
		reply = string(l.buf[:n])
	}
	l.closeSlot(k)
	l.f.open.Add(-1)
	switch {
	case errno == unix.ECONNRESET, strings.HasPrefix(reply, "finger: server busy"):
		// fingerd resets a TCP connection it evicts; other servers say so.
		l.f.evicted.Add(1)
	case strings.HasPrefix(reply, "finger: too many"):
		l.f.refused.Add(1)
	case strings.HasPrefix(reply, "finger: input timeout"):
		l.f.timedOut.Add(1)
	default:
		l.f.other.Add(1)
	}
	l.schedule(k)
}
