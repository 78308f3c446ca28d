//go:build linux

package main

import (
	"errors"
	"net"
	"os"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// sink starts serve on a loopback port and returns its address; the
// cleanup stops it and checks that it ended without an error.
func sink(t *testing.T, capN int, timeout time.Duration) string {
	t.Helper()
	fd, err := listenFD("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	done, ended := make(chan struct{}), make(chan error, 1)
	go func() { ended <- serve(fd, capN, timeout, done) }()
	t.Cleanup(func() {
		close(done)
		if err := <-ended; err != nil {
			t.Errorf("serve: %v", err)
		}
		syscall.Close(fd)
	})
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(sa.(*syscall.SockaddrInet4).Port))
}

// state reads c within wait: "reset", "held" (nothing came), or what else
// happened.
func state(t *testing.T, c net.Conn, wait time.Duration) string {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(wait))
	n, err := c.Read(make([]byte, 1))
	switch {
	case errors.Is(err, syscall.ECONNRESET):
		return "reset"
	case errors.Is(err, os.ErrDeadlineExceeded):
		return "held"
	}
	return "read " + strconv.Itoa(n) + " bytes, " + err.Error()
}

// TestResetsOldestAtCap: at the cap, a new connection resets the one held
// longest, and the others stay open without a byte.
func TestResetsOldestAtCap(t *testing.T) {
	addr := sink(t, 3, time.Hour)
	var conns []net.Conn
	for i := 0; i < 4; i++ {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		// The listener's queue hands them to accept in this order.
		conns = append(conns, c)
	}
	// Waits for a reset are long (one comes at once when it is due), so
	// that a loaded machine cannot fail them.
	if got := state(t, conns[0], time.Minute); got != "reset" {
		t.Errorf("the oldest connection at the cap: %s; want reset", got)
	}
	for i, c := range conns[1:] {
		if got := state(t, c, 300*time.Millisecond); got != "held" {
			t.Errorf("connection %d: %s; want held", i+1, got)
		}
	}
}

// TestResetsAfterTimeout: a connection held for the timeout is reset, with
// no other connection arriving.
func TestResetsAfterTimeout(t *testing.T) {
	addr := sink(t, 10, 300*time.Millisecond)
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	start := time.Now()
	if got := state(t, c, time.Minute); got != "reset" {
		t.Fatalf("after the timeout: %s; want reset", got)
	}
	if d := time.Since(start); d < 250*time.Millisecond {
		t.Errorf("reset after %v, before the 300ms timeout", d)
	}
}
