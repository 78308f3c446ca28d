package finger_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"time"

	"github.com/openfinger/finger"
)

func ExampleParseQuery() {
	q, err := finger.ParseQuery("/W alice@example.org@relay.example.net\r\n")
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("verbose:", q.Verbose)
	fmt.Println("user:", q.User)
	fmt.Println("hosts:", q.Hosts)
	fmt.Printf("wire form: %q\n", q.String())

	_, err = finger.ParseQuery("alice\x1b[2J")
	fmt.Println(err, errors.Is(err, finger.ErrInvalidQuery))
	// Output:
	// verbose: true
	// user: alice
	// hosts: [example.org relay.example.net]
	// wire form: "/W alice@example.org@relay.example.net"
	// finger: invalid query: control byte 0x1b at offset 5 true
}

func ExampleQuery_NextHop() {
	q, _ := finger.ParseQuery("/W alice@h1@h2")
	host, rest, ok := q.NextHop()
	fmt.Printf("%s %q %v\n", host, rest.String()+"\r\n", ok)
	// Output:
	// h2 "/W alice@h1\r\n" true
}

func ExampleReadQuery() {
	r := strings.NewReader("/w  bob\r\nignored\r\n")
	line, err := finger.ReadQuery(r, 0)
	fmt.Printf("%q %v\n", line, err)

	_, err = finger.ReadQuery(strings.NewReader(strings.Repeat("x", 100)), 16)
	fmt.Println(err)
	// Output:
	// "/w  bob" <nil>
	// finger: invalid query: query line too long
}

func ExampleServer() {
	srv := &finger.Server{
		Handler: finger.HandlerFunc(func(ctx context.Context, w io.Writer, r *finger.Request) {
			if r.Query.IsList() {
				io.WriteString(w, "Finger online user list denied\n")
				return
			}
			fmt.Fprintf(w, "Login: %s\nPlan:\nNo plan.", r.Query.User)
		}),
		Logger: slog.New(slog.DiscardHandler),
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Println(err)
		return
	}
	go srv.Serve(l)

	for _, query := range []string{"alice\r\n", "\r\n", "\x00\r\n"} {
		c, err := net.Dial("tcp", l.Addr().String())
		if err != nil {
			fmt.Println(err)
			return
		}
		io.WriteString(c, query)
		reply, _ := io.ReadAll(c)
		c.Close()
		fmt.Printf("%q\n", reply)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	fmt.Println(srv.Shutdown(ctx))
	// Output:
	// "Login: alice\r\nPlan:\r\nNo plan.\r\n"
	// "Finger online user list denied\r\n"
	// "finger: invalid query\r\n"
	// <nil>
}

func ExampleServer_ServeConn() {
	srv := &finger.Server{
		Handler: finger.HandlerFunc(func(ctx context.Context, w io.Writer, r *finger.Request) {
			fmt.Fprintf(w, "hello %s\n", r.Query.User)
		}),
		Logger: slog.New(slog.DiscardHandler),
	}
	client, server := net.Pipe()
	go srv.ServeConn(context.Background(), server)
	io.WriteString(client, "bob\n")
	reply, _ := io.ReadAll(client)
	fmt.Printf("%q\n", reply)
	// Output:
	// "hello bob\r\n"
}

func ExampleHandlerFunc() {
	// A handler that refuses forwarding with the reference text.
	h := finger.HandlerFunc(func(ctx context.Context, w io.Writer, r *finger.Request) {
		if len(r.Query.Hosts) > 0 {
			io.WriteString(w, "Finger forwarding service denied\n")
			return
		}
		fmt.Fprintf(w, "%s: no such user.\n", r.Query.User)
	})
	q, _ := finger.ParseQuery("alice@example.org")
	var b strings.Builder
	h.ServeFinger(context.Background(), &b, &finger.Request{Query: q})
	fmt.Print(b.String())
	// Output:
	// Finger forwarding service denied
}
