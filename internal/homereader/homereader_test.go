package homereader

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/openfinger/finger/internal/userinfo"
)

// pair returns a Client talking to a reader served on the other end of a
// connected socket pair.
func pair(t *testing.T) (*Client, net.Conn) {
	t.Helper()
	a, b := net.Pipe()
	go Serve(b)
	c := NewClient(a)
	t.Cleanup(func() { c.Close() })
	return c, b
}

func home(t *testing.T) *userinfo.Account {
	t.Helper()
	dir := t.TempDir()
	for name, content := range map[string]string{".plan": "the plan\n", ".bashrc": "secret\n", ".project": "0123456789"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return &userinfo.Account{Login: "alice", UID: uint32(os.Getuid()), Home: dir}
}

func TestReadFile(t *testing.T) {
	c, _ := pair(t)
	f := c.Files(false)
	a := home(t)
	ctx := context.Background()
	tests := []struct {
		acc       userinfo.Account
		name      string
		limit     int64
		want      string
		truncated bool
		found     bool
	}{
		{*a, ".plan", 100, "the plan\n", false, true},
		{*a, ".project", 4, "0123", true, true},
		{*a, ".pgpkey", 100, "", false, false},                                                           // no such file
		{*a, ".bashrc", 100, "", false, false},                                                           // not a published name
		{*a, "../.plan", 100, "", false, false},                                                          // not a published name
		{userinfo.Account{Login: "alice", UID: a.UID + 1, Home: a.Home}, ".plan", 100, "", false, false}, // not the owner
		{userinfo.Account{Login: "alice", UID: a.UID, Home: "relative/home"}, ".plan", 100, "", false, false},
		{userinfo.Account{Login: "alice", UID: a.UID, Home: a.Home + "/../" + filepath.Base(a.Home)}, ".plan", 100, "", false, false},
	}
	for _, tt := range tests {
		uf, err := f.ReadFile(ctx, &tt.acc, tt.name, tt.limit)
		if tt.found {
			if err != nil || string(uf.Data) != tt.want || uf.Truncated != tt.truncated {
				t.Errorf("ReadFile(%q, %q, %d) = %q, %v, %v; want %q, %v", tt.acc.Home, tt.name, tt.limit, uf.Data, uf.Truncated, err, tt.want, tt.truncated)
			}
			continue
		}
		if !errors.Is(err, userinfo.ErrNotFound) || len(uf.Data) != 0 {
			t.Errorf("ReadFile(%q, %q) = %q, %v; want no data and ErrNotFound", tt.acc.Home, tt.name, uf.Data, err)
		}
	}
}

func TestHidden(t *testing.T) {
	c, _ := pair(t)
	a := home(t)
	ctx := context.Background()
	if c.Files(false).Hidden(ctx, a) {
		t.Errorf("Hidden(no .nofinger) = true, want false")
	}
	if err := os.WriteFile(filepath.Join(a.Home, ".nofinger"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if !c.Files(false).Hidden(ctx, a) {
		t.Errorf("Hidden(.nofinger) = false, want true")
	}
	if !c.Files(false).Hidden(ctx, &userinfo.Account{Login: "x", Home: "relative"}) {
		t.Errorf("Hidden(relative home) = false, want true")
	}
}

// TestReaderGone: when the reader stops answering, users are hidden, files
// are not found, and OnFailure is called once.
func TestReaderGone(t *testing.T) {
	c, server := pair(t)
	var calls atomic.Int32
	c.OnFailure = func(error) { calls.Add(1) }
	a := home(t)
	server.Close()
	ctx := context.Background()
	for range 3 {
		if !c.Files(false).Hidden(ctx, a) {
			t.Errorf("Hidden with the reader gone = false, want true")
		}
		if _, err := c.Files(false).ReadFile(ctx, a, ".plan", 10); !errors.Is(err, userinfo.ErrNotFound) {
			t.Errorf("ReadFile with the reader gone = %v, want ErrNotFound", err)
		}
	}
	if n := calls.Load(); n != 1 {
		t.Errorf("OnFailure called %d times, want 1", n)
	}
}

func TestContextEnds(t *testing.T) {
	// A reader that never answers: the call ends with the context.
	a, b := net.Pipe()
	defer b.Close()
	c := NewClient(a)
	defer c.Close()
	got := make(chan struct{})
	go func() { // read and discard requests, never answer
		buf := make([]byte, 4096)
		once := false
		for {
			if _, err := b.Read(buf); err != nil {
				return
			}
			if !once {
				once = true
				close(got)
			}
		}
	}()
	ctx, cancel := context.WithCancel(context.Background())
	acc := home(t)
	done := make(chan bool)
	go func() { done <- c.Files(false).Hidden(ctx, acc) }()
	<-got // the request is with the reader
	cancel()
	if !<-done {
		t.Errorf("Hidden cut off by its context = false, want true")
	}
}
