package fingertest

import (
	"context"
	"io"
	"testing"
	"testing/synctest"
	"time"

	"github.com/openfinger/finger"
)

var echo = finger.HandlerFunc(func(ctx context.Context, w io.Writer, r *finger.Request) {
	io.WriteString(w, "user="+r.Query.User+"\n")
})

func TestNewServer(t *testing.T) {
	s := NewServer(t, echo)
	if got, want := string(s.Query("alice\r\n")), "user=alice\r\n"; got != want {
		t.Errorf("Query(%q) = %q, want %q", "alice\r\n", got, want)
	}
	s.Close()
	s.Close() // a second Close is harmless
}

func TestNewUnstartedServer(t *testing.T) {
	s := NewUnstartedServer(t, echo)
	s.Config.MaxQueryBytes = 8
	s.Start()
	if got, want := string(s.Query("abcdefghij\r\n")), "finger: query too long\r\n"; got != want {
		t.Errorf("Query(%q) = %q, want %q", "abcdefghij\r\n", got, want)
	}
}

func TestExchange(t *testing.T) {
	tests := []struct{ request, want string }{
		{"alice\r\n", "user=alice\r\n"},
		{"bob", "user=bob\r\n"}, // half-close without a line end
		{"\x00\r\n", "finger: invalid query\r\n"},
	}
	for _, tt := range tests {
		if got := string(Exchange(t, echo, []byte(tt.request))); got != tt.want {
			t.Errorf("Exchange(%q) = %q, want %q", tt.request, got, tt.want)
		}
	}
}

func TestPipeDeadlineInBubble(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		client, server := Pipe()
		defer client.Close()
		defer server.Close()
		start := time.Now()
		server.SetReadDeadline(start.Add(3 * time.Second))
		_, err := server.Read(make([]byte, 1))
		if err == nil || time.Since(start) != 3*time.Second {
			t.Errorf("Read after %v: %v, want a deadline error after 3s", time.Since(start), err)
		}
	})
}

func TestPipeHalfClose(t *testing.T) {
	client, server := Pipe()
	defer server.Close()
	go func() {
		io.WriteString(client, "q")
		client.CloseWrite()
	}()
	b, err := io.ReadAll(server)
	if string(b) != "q" || err != nil {
		t.Fatalf("server read %q, %v, want %q, <nil>", b, err, "q")
	}
	go func() {
		io.WriteString(server, "reply")
		server.Close()
	}()
	b, err = io.ReadAll(client)
	if string(b) != "reply" || err != nil {
		t.Fatalf("client read %q, %v, want %q, <nil>", b, err, "reply")
	}
	if ra := server.RemoteAddr().String(); ra != "192.0.2.1:1079" {
		t.Errorf("server RemoteAddr = %q, want %q", ra, "192.0.2.1:1079")
	}
}
