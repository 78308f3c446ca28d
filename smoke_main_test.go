package finger

import (
	"context"
	"io"
	"net"
	"testing"
)

func TestSmokeServe(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{Handler: HandlerFunc(func(ctx context.Context, w io.Writer, r *Request) {
		io.WriteString(w, "hello "+r.Query.User+"\nno end")
	})}
	go s.Serve(l)
	defer s.Close()
	c, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(c, "/W bob\r\n")
	b, _ := io.ReadAll(c)
	if string(b) != "hello bob\r\nno end\r\n" {
		t.Fatalf("got %q", b)
	}
}
