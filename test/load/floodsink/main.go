//go:build linux

// Command floodsink is the least a server can do for a flood of
// connections that send nothing: accept each, hold it, and reset the one
// held longest when a new one arrives at the cap or when it has waited the
// read timeout. It runs on one OS thread, keeps no goroutine, buffer or
// timer per connection and reads nothing.
//
// The flood benchmark (test/load/bench.sh -flood) aims the same flood at it
// as at fingerd, while the same fast clients query fingerd: what the flood
// then still takes from them is what the flood's own process and the
// kernel's TCP work cost the machine, which no server can avoid.
//
//	floodsink -listen 127.0.0.1:7977 -cap 10000 -timeout 10s
package main

import (
	"flag"
	"fmt"
	"net/netip"
	"os"
	"runtime"
	"syscall"
	"time"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:7977", "listen `address` (IPv4 or IPv6, with a port)")
	capN := flag.Int("cap", 10000, "connections held at most: a new one at the cap resets the oldest")
	timeout := flag.Duration("timeout", 10*time.Second, "a connection held this long is reset")
	flag.Parse()
	if *capN < 1 || *timeout <= 0 {
		fmt.Fprintln(os.Stderr, "floodsink: -cap must be at least 1 and -timeout positive")
		os.Exit(2)
	}
	fd, err := listenFD(*listen)
	if err != nil {
		fmt.Fprintln(os.Stderr, "floodsink:", err)
		os.Exit(1)
	}
	runtime.LockOSThread()
	if err := serve(fd, *capN, *timeout, nil); err != nil {
		fmt.Fprintln(os.Stderr, "floodsink:", err)
		os.Exit(1)
	}
}

// acceptWake bounds each accept, so that the read timeout is applied
// while no connection arrives.
const acceptWake = 100 * time.Millisecond

// listenFD returns a blocking listening socket on addr whose accept
// returns EAGAIN after acceptWake.
func listenFD(addr string) (int, error) {
	ap, err := netip.ParseAddrPort(addr)
	if err != nil {
		return -1, err
	}
	var sa syscall.Sockaddr
	family := syscall.AF_INET
	if ap.Addr().Is4() {
		sa = &syscall.SockaddrInet4{Port: int(ap.Port()), Addr: ap.Addr().As4()}
	} else {
		family = syscall.AF_INET6
		sa = &syscall.SockaddrInet6{Port: int(ap.Port()), Addr: ap.Addr().As16()}
	}
	fd, err := syscall.Socket(family, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, err
	}
	if err := listenOn(fd, sa); err != nil {
		syscall.Close(fd)
		return -1, err
	}
	return fd, nil
}

// listenOn binds fd to sa, listens, and bounds each accept by acceptWake.
func listenOn(fd int, sa syscall.Sockaddr) error {
	if err := syscall.SetsockoptInt(fd, syscall.SOL_SOCKET, syscall.SO_REUSEADDR, 1); err != nil {
		return err
	}
	if err := syscall.Bind(fd, sa); err != nil {
		return err
	}
	if err := syscall.Listen(fd, syscall.SOMAXCONN); err != nil {
		return err
	}
	tv := syscall.NsecToTimeval(int64(acceptWake))
	return syscall.SetsockoptTimeval(fd, syscall.SOL_SOCKET, syscall.SO_RCVTIMEO, &tv)
}

// held is one accepted connection.
type held struct {
	fd int
	at time.Time
}

// serve accepts on the listening socket fd until done is closed (never,
// if done is nil), holding at most capN connections in the order they
// came, each for at most timeout.
func serve(fd, capN int, timeout time.Duration, done <-chan struct{}) error {
	ring := make([]held, capN)
	first, n := 0, 0
	resetFirst := func() {
		reset(ring[first].fd)
		first = (first + 1) % capN
		n--
	}
	defer func() {
		for n > 0 {
			resetFirst()
		}
	}()
	for {
		select {
		case <-done:
			return nil
		default:
		}
		nfd, _, err := syscall.Accept4(fd, syscall.SOCK_CLOEXEC)
		now := time.Now()
		for n > 0 && now.Sub(ring[first].at) >= timeout {
			resetFirst()
		}
		switch err {
		case nil:
		case syscall.EAGAIN, syscall.EINTR, syscall.ECONNABORTED:
			continue
		case syscall.EMFILE, syscall.ENFILE, syscall.ENOBUFS, syscall.ENOMEM:
			// Out of descriptors or memory: make room, as at the cap.
			if n > 0 {
				resetFirst()
			}
			continue
		default:
			return err
		}
		if n == capN {
			resetFirst()
		}
		ring[(first+n)%capN] = held{fd: nfd, at: now}
		n++
	}
}

// reset closes a connection with a reset, as fingerd ends a connection it
// evicts: no FIN exchange, no TIME_WAIT.
func reset(fd int) {
	syscall.SetsockoptLinger(fd, syscall.SOL_SOCKET, syscall.SO_LINGER, &syscall.Linger{Onoff: 1})
	syscall.Close(fd)
}
