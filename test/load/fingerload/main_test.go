//go:build linux

package main

import (
	"bytes"
	"context"
	"io"
	"net"
	"os"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/openfinger/finger/internal/fingertest"
)

// server answers every connection with reply after reading the query line.
func server(t *testing.T, reply string) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				b := make([]byte, 512)
				c.Read(b)
				io.WriteString(c, reply)
			}()
		}
	}()
	return l.Addr().String()
}

func TestExpect(t *testing.T) {
	good := server(t, "Login: alice\r\nPlan:\r\nhello\r\n")
	empty := server(t, "")
	other := server(t, "finger: service temporarily unavailable.\r\n")
	tests := []struct {
		addr, expect string
		okRE, errRE  string
	}{
		{good, "Login: alice", `requests: [1-9]\d* ok, 0 errors`, ""},
		{empty, "Login: alice", `requests: 0 ok, [1-9]\d* errors`, `error empty-reply: `},
		{other, "Login: alice", `requests: 0 ok, [1-9]\d* errors`, `error unexpected-reply: .*service temporarily unavailable`},
		{empty, "", `requests: [1-9]\d* ok, 0 errors`, ""}, // without -expect any reply counts
	}
	for _, tt := range tests {
		args := []string{"-addr", tt.addr, "-query", "alice", "-c", "2", "-n", "20", "-d", "30s"}
		if tt.expect != "" {
			args = append(args, "-expect", tt.expect)
		}
		var out bytes.Buffer
		if err := run(context.Background(), args, &out); err != nil {
			t.Fatalf("run(%q) = %v", args, err)
		}
		if !regexp.MustCompile(tt.okRE).MatchString(out.String()) {
			t.Errorf("run(%q) printed %q, want a line matching %q", args, out.String(), tt.okRE)
		}
		if tt.errRE != "" && !regexp.MustCompile(tt.errRE).MatchString(out.String()) {
			t.Errorf("run(%q) printed %q, want a line matching %q", args, out.String(), tt.errRE)
		}
	}
	var out bytes.Buffer
	if err := run(context.Background(), []string{"-addr", good, "-expect", "("}, &out); err == nil || !strings.Contains(err.Error(), "-expect") {
		t.Errorf("run(-expect \"(\") = %v, want a usage error naming -expect", err)
	}
}

// TestHoldReport: at SIGUSR1 the flood prints how many connections it has
// opened so far, for a caller measuring a window of the flood.
func TestHoldReport(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() { // holds every connection until the listener closes
		var conns []net.Conn
		defer func() {
			for _, c := range conns {
				c.Close()
			}
		}()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			conns = append(conns, c)
		}
	}()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out fingertest.Buffer
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"-addr", l.Addr().String(), "-c", "0", "-d", "60s",
			"-hold", "3", "-hold-addrs", "3", "-hold-from", "127.2.0.0/16"}, &out)
	}()
	waitOut := func(re string) {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); !regexp.MustCompile(re).MatchString(out.String()); {
			if time.Now().After(deadline) {
				t.Fatalf("output %q has no line matching %q within 10s", out.String(), re)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	waitOut(`(?m)^hold: 3 connections open`)
	syscall.Kill(os.Getpid(), syscall.SIGUSR1)
	waitOut(`(?m)^hold-opened: 3$`)
	cancel()
	if err := <-done; err != nil {
		t.Errorf("run = %v", err)
	}
}
