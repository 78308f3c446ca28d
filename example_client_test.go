package finger_test

import (
	"context"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"strings"
	"time"

	"github.com/openfinger/finger"
)

// This example runs a small server on the loopback interface and asks it
// about a user, showing the reply through the UTF-8-safe filter.
func ExampleClient_Query() {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	srv := &finger.Server{
		Logger: slog.New(slog.DiscardHandler),
		Handler: finger.HandlerFunc(func(ctx context.Context, w io.Writer, r *finger.Request) {
			fmt.Fprintf(w, "Login: %s\tVerbose: %v\n", r.Query.User, r.Query.Verbose)
			io.WriteString(w, "Plan: 你好 \x1b[31mworld\x1b[0m\n")
		}),
	}
	go srv.Serve(l)
	defer srv.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c := &finger.Client{MaxResponseBytes: 1 << 20}
	var reply strings.Builder
	out := finger.Filter{UTF8: true}.NewWriter(&reply)
	n, err := c.Query(ctx, l.Addr().String(), finger.Query{Verbose: true, User: "bob"}, out)
	out.Close()
	if err != nil {
		log.Fatal(err)
	}
	for line := range strings.Lines(reply.String()) {
		fmt.Println(strings.TrimRight(line, "\r\n"))
	}
	fmt.Println(n, "bytes")
	// Output:
	// Login: bob	Verbose: true
	// Plan: 你好 ^[[31mworld^[[0m
	// 55 bytes
}

func ExampleParseURL() {
	for _, u := range []string{
		"finger://example.org/bob",
		"finger://bob@example.org:7979",
		"finger://[::1]/%2FW%20bob",
		"finger://example.org/",
		"finger://example.org/bob%0D%0Aroot",
	} {
		addr, q, err := finger.ParseURL(u)
		if err != nil {
			fmt.Println("error:", err)
			continue
		}
		fmt.Printf("%s sends %q\n", addr, q.String()+"\r\n")
	}
	// Output:
	// example.org:79 sends "bob\r\n"
	// example.org:7979 sends "bob\r\n"
	// [::1]:79 sends "/W bob\r\n"
	// example.org:79 sends "\r\n"
	// error: finger: invalid query: control byte 0x0d in URL request "bob\r\nroot"
}

func ExampleNormalizeAddr() {
	for _, a := range []string{"example.org", "example.org:7979", "::1", "[::1]:7979", "host:x"} {
		addr, err := finger.NormalizeAddr(a)
		if err != nil {
			fmt.Println("error:", err)
			continue
		}
		fmt.Println(addr)
	}
	// Output:
	// example.org:79
	// example.org:7979
	// [::1]:79
	// [::1]:7979
	// error: finger: invalid address "host:x": invalid port "x"
}

// A server's reply is everything it sends before it closes; the client
// reads it whole. Query's count is the raw bytes received.
func ExampleFinger() {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	srv := &finger.Server{
		Logger: slog.New(slog.DiscardHandler),
		Handler: finger.HandlerFunc(func(ctx context.Context, w io.Writer, r *finger.Request) {
			io.WriteString(w, "no one is logged in\n")
		}),
	}
	go srv.Serve(l)
	defer srv.Close()

	var b strings.Builder
	n, err := finger.Finger(context.Background(), l.Addr().String(), finger.Query{}, &b)
	fmt.Printf("%d %q %v\n", n, b.String(), err)
	// Output:
	// 21 "no one is logged in\r\n" <nil>
}
