package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/openfinger/finger/internal/fingertest"
)

// binary is the finger command built by TestMain for the process tests.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "finger-test")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary, err = fingertest.Build(dir, "github.com/openfinger/finger/cmd/finger")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// command runs the built binary with a clean environment and returns
// its output and exit status.
func command(t *testing.T, env []string, args ...string) result {
	t.Helper()
	cmd := exec.Command(binary, args...)
	// GODEBUG=netdns=go: the Go resolver refuses malformed names without
	// sending anything.
	cmd.Env = append([]string{"PATH=/usr/bin:/bin", "GODEBUG=netdns=go"}, env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return result{out.String(), errb.String(), code}
}

func TestProcessExitCodes(t *testing.T) {
	ok := newRawServer(t, sendAndClose("Login: alice\r\n\x1b[2Jhi"))
	big := newRawServer(t, bigReply(hundredMB))
	silent := newRawServer(t, hold(""))
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refused := l.Addr().String()
	l.Close()

	tests := []struct {
		name   string
		env    []string
		args   []string
		code   int
		stdout string // exact, when not ""
		stderr string // contained
	}{
		{"ok", nil, []string{"alice@" + ok.addr}, 0, "Login: alice\n^[[2Jhi\n", ""},
		{"help", nil, []string{"-h"}, 0, "", ""},
		{"usage", nil, []string{"-Z"}, 2, "", "unknown option -Z"},
		{"unknown host", nil, []string{"alice@nosuch..invalid"}, 3, "", "unknown host: nosuch..invalid"},
		{"refused", nil, []string{"alice@" + refused}, 4, "", "connection refused"},
		{"idle timeout", nil, []string{"-idle-timeout", "300ms", "alice@" + silent.addr}, 5, "", "idle timeout"},
		{"total timeout", nil, []string{"-T", "300ms", "alice@" + silent.addr}, 5, "", "total timeout"},
		{"truncated", nil, []string{"-max-bytes", "1M", "alice@" + big.addr}, 6, "", "finger: reply truncated at 1048576 bytes"},
		{"FINGER_FILTER", []string{"FINGER_FILTER=control"}, []string{"alice@" + ok.addr}, 0, "Login: alice\n\x1b[2Jhi\n", ""},
	}
	for _, tt := range tests {
		start := time.Now()
		r := command(t, tt.env, tt.args...)
		if d := time.Since(start); d > 10*time.Second {
			t.Errorf("%s: took %v", tt.name, d)
		}
		if r.code != tt.code {
			t.Errorf("%s: finger %q exit %d, want %d; stderr %q", tt.name, tt.args, r.code, tt.code, r.stderr)
		}
		if tt.stdout != "" && r.stdout != tt.stdout {
			t.Errorf("%s: stdout %q, want %q", tt.name, r.stdout, tt.stdout)
		}
		if !strings.Contains(r.stderr, tt.stderr) {
			t.Errorf("%s: stderr %q, want it to contain %q", tt.name, r.stderr, tt.stderr)
		}
	}
}

// TestProcessSignals interrupts the command while it waits on a server that
// holds the connection: the partial reply is shown, the next operand is not
// asked, and the exit status is 130.
func TestProcessSignals(t *testing.T) {
	for _, sig := range []os.Signal{os.Interrupt, syscall.SIGTERM} {
		conns := make(chan net.Conn, 1)
		s := newRawServer(t, func(c net.Conn, done <-chan struct{}) {
			io.WriteString(c, "Login: alice\r\npartial")
			conns <- c
			<-done
		})
		cmd := exec.Command(binary, "x@"+s.addr, "y@"+s.addr)
		cmd.Env = []string{"PATH=/usr/bin:/bin"}
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		// Signal once the client has read the first bytes of the reply.
		var c net.Conn
		select {
		case c = <-conns:
		case <-time.After(10 * time.Second): // against a hang only
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatalf("%v: the client did not connect", sig)
		}
		waitReplyRead(t, c)
		cmd.Process.Signal(sig)
		err := cmd.Wait()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != exitInterrupted {
			t.Errorf("%v: %v, want exit status %d; stderr %q", sig, err, exitInterrupted, errb.String())
		}
		if want := "Login: alice\npartial\n"; out.String() != want {
			t.Errorf("%v: stdout %q, want %q", sig, out.String(), want)
		}
		if !strings.Contains(errb.String(), "interrupted") {
			t.Errorf("%v: stderr %q, want it to say interrupted", sig, errb.String())
		}
		if n := len(s.requests()); n != 1 {
			t.Errorf("%v: %d requests, want 1", sig, n)
		}
	}
}

// waitReplyRead waits until everything the server wrote on c (a
// connection on 127.0.0.1) has been read by the client process: the
// server's socket has nothing left to send or to be acknowledged, and the
// client's socket has nothing left to be read.
func waitReplyRead(t *testing.T, c net.Conn) {
	t.Helper()
	server, client := c.LocalAddr().(*net.TCPAddr), c.RemoteAddr().(*net.TCPAddr)
	deadline := time.Now().Add(30 * time.Second) // against a hang only
	for {
		_, unacked, err := tcpQueues(server, client)
		if err != nil {
			t.Fatal(err)
		}
		unread, _, err := tcpQueues(client, server)
		if err != nil {
			t.Fatal(err)
		}
		if unacked == 0 && unread == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the client did not read the reply within 30 s: %d bytes unacknowledged, %d unread", unacked, unread)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
