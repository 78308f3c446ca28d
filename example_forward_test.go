package finger_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"time"

	"github.com/openfinger/finger"
)

// ExampleForwarder runs two servers on loopback: "far" answers for its
// users, and "relay" forwards {Q2} queries to it. Forwarding to loopback
// and to a port other than 79 must be allowed explicitly.
func ExampleForwarder() {
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	serve := func(h finger.Handler) (addr string, stop func()) {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			panic(err)
		}
		s := &finger.Server{Handler: h, Logger: quiet}
		go s.Serve(l)
		return l.Addr().String(), func() { s.Close() }
	}

	farAddr, stopFar := serve(finger.HandlerFunc(func(ctx context.Context, w io.Writer, r *finger.Request) {
		fmt.Fprintf(w, "Login: %s\tVerbose: %v\n", r.Query.User, r.Query.Verbose)
		io.WriteString(w, "Plan: \x1b[5mblink\x1b[0m\n")
	}))
	defer stopFar()
	farPort := netip.MustParseAddrPort(farAddr).Port()

	relayAddr, stopRelay := serve(&finger.Forwarder{
		Allow:       []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")},
		AllowPorts:  []uint16{farPort},
		IdleTimeout: 5 * time.Second,
		Logger:      quiet,
	})
	defer stopRelay()

	// Ask the relay for "/W alice@far": it sends "/W alice" to far.
	c, err := net.Dial("tcp", relayAddr)
	if err != nil {
		panic(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "/W alice@%s\r\n", farAddr)
	reply, _ := io.ReadAll(c)
	fmt.Print(strings.ReplaceAll(string(reply), "\r\n", "\n"))

	// A query naming more hosts than MaxHops is refused at once.
	c2, err := net.Dial("tcp", relayAddr)
	if err != nil {
		panic(err)
	}
	defer c2.Close()
	io.WriteString(c2, "alice@a@b@c@d\r\n")
	reply, _ = io.ReadAll(c2)
	fmt.Print(strings.ReplaceAll(string(reply), "\r\n", "\n"))
	// Output:
	// Login: alice	Verbose: true
	// Plan: ^[[5mblink^[[0m
	// finger: forwarding: too many hops
}
