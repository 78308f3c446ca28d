package main

import (
	"bytes"
	"context"
	"io"
	"net"
	"regexp"
	"strings"
	"testing"
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
