package finger

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/openfinger/finger/internal/testenv"
)

// fcServe runs a TCP server on 127.0.0.1:0 (or on listen, when given) that
// calls handle for each connection and closes it afterwards. It returns
// the listening address. Handlers that wait should watch done, which is
// closed when the test ends.
func fcServe(t *testing.T, listen string, handle func(c net.Conn, done <-chan struct{})) string {
	t.Helper()
	if listen == "" {
		listen = "127.0.0.1:0"
	}
	l, err := net.Listen("tcp", listen)
	if err != nil {
		t.Fatalf("net.Listen(%q): %v", listen, err)
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				handle(c, done)
			}()
		}
	}()
	t.Cleanup(func() {
		close(done)
		l.Close()
		wg.Wait()
	})
	return l.Addr().String()
}

// fcRecordAndReply reads the request line into got, checks that nothing
// follows it (no more bytes, and no half-close: the client waits for the
// reply with its side open), then writes reply.
func fcRecordAndReply(got chan<- []byte, reply []byte) func(net.Conn, <-chan struct{}) {
	return func(c net.Conn, _ <-chan struct{}) {
		c.SetDeadline(time.Now().Add(10 * time.Second))
		// Read byte by byte, so nothing after the line is read ahead.
		var req []byte
		for len(req) == 0 || req[len(req)-1] != '\n' {
			var b [1]byte
			if _, err := c.Read(b[:]); err != nil {
				req = append(req, "<read error: "+err.Error()+">"...)
				break
			}
			req = append(req, b[0])
		}
		c.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
		var extra [64]byte
		n, err := c.Read(extra[:])
		switch {
		case n > 0:
			req = append(req, extra[:n]...)
		case !errors.Is(err, os.ErrDeadlineExceeded):
			req = append(req, "<after the line: "+err.Error()+">"...)
		}
		got <- req
		c.SetDeadline(time.Now().Add(10 * time.Second))
		c.Write(reply)
	}
}

func TestClientSendsQueryAndCopiesReply(t *testing.T) {
	tests := []struct {
		q    Query
		want string
	}{
		{Query{User: "fgtest_alice"}, "fgtest_alice\r\n"},
		{Query{Verbose: true, User: "fgtest_alice"}, "/W fgtest_alice\r\n"},
		{Query{}, "\r\n"},
		{Query{Verbose: true}, "/W \r\n"},
		{Query{User: "fgtest_alice", Hosts: []string{"host1"}}, "fgtest_alice@host1\r\n"},
		{Query{Verbose: true, User: "a", Hosts: []string{"h1", "h2"}}, "/W a@h1@h2\r\n"},
		{Query{User: "张伟"}, "张伟\r\n"},
		{Query{User: "-l"}, "-l\r\n"},
	}
	for _, tt := range tests {
		got := make(chan []byte, 1)
		reply := []byte("Login: x\r\nPlan:\r\n\x1b[2J\rraw\xff\x00 no final newline")
		addr := fcServe(t, "", fcRecordAndReply(got, reply))
		var out bytes.Buffer
		n, err := (&Client{}).Query(context.Background(), addr, tt.q, &out)
		if err != nil || n != int64(len(reply)) || !bytes.Equal(out.Bytes(), reply) {
			t.Errorf("Query(%#v) = %d, %v, wrote %q, want %d, nil, %q", tt.q, n, err, out.Bytes(), len(reply), reply)
		}
		if req := <-got; string(req) != tt.want {
			t.Errorf("Query(%#v) sent %q, want %q", tt.q, req, tt.want)
		}
	}
}

func TestClientCopiesLargeReplyExactly(t *testing.T) {
	reply := make([]byte, 3<<20+17)
	r := rand.New(rand.NewPCG(1, 2))
	for i := range reply {
		reply[i] = byte(r.Uint32())
	}
	got := make(chan []byte, 1)
	addr := fcServe(t, "", fcRecordAndReply(got, reply))
	var out bytes.Buffer
	n, err := (&Client{}).Query(context.Background(), addr, Query{User: "bob"}, &out)
	if err != nil || n != int64(len(reply)) || !bytes.Equal(out.Bytes(), reply) {
		t.Errorf("Query = %d, %v, copied %d bytes (equal: %v), want %d, nil", n, err, out.Len(), bytes.Equal(out.Bytes(), reply), len(reply))
	}
}

func TestClientResponseCap(t *testing.T) {
	tests := []struct {
		name    string
		max     int64
		size    int // reply size; -1: the server writes until the client goes
		wantN   int64
		wantErr error
	}{
		{"under the cap", 100, 99, 99, nil},
		{"exactly the cap", 100, 100, 100, nil},
		{"one over", 100, 101, 100, ErrResponseTooLarge},
		{"far over", 100, 1 << 20, 100, ErrResponseTooLarge},
		{"endless reply", 1000, -1, 1000, ErrResponseTooLarge},
		{"no cap", -1, 2 << 20, 2 << 20, nil},
		{"default cap exactly", 0, DefaultMaxResponseBytes, DefaultMaxResponseBytes, nil},
		{"default cap one over", 0, DefaultMaxResponseBytes + 1, DefaultMaxResponseBytes, ErrResponseTooLarge},
	}
	for _, tt := range tests {
		addr := fcServe(t, "", func(c net.Conn, done <-chan struct{}) {
			bufio.NewReader(c).ReadString('\n')
			chunk := bytes.Repeat([]byte("x"), 8192)
			for sent := 0; tt.size < 0 || sent < tt.size; {
				p := chunk
				if tt.size >= 0 {
					p = chunk[:min(len(chunk), tt.size-sent)]
				}
				n, err := c.Write(p)
				sent += n
				if err != nil {
					return
				}
			}
		})
		var out bytes.Buffer
		c := &Client{MaxResponseBytes: tt.max}
		n, err := c.Query(context.Background(), addr, Query{User: "bob"}, &out)
		if n != tt.wantN || int64(out.Len()) != tt.wantN || !errors.Is(err, tt.wantErr) || (tt.wantErr == nil) != (err == nil) {
			t.Errorf("%s: Query with MaxResponseBytes %d, reply %d bytes = %d, %v (wrote %d), want %d, %v",
				tt.name, tt.max, tt.size, n, err, out.Len(), tt.wantN, tt.wantErr)
		}
		if err != nil && !strings.HasPrefix(err.Error(), "finger: ") {
			t.Errorf("%s: error %q does not start with \"finger: \"", tt.name, err)
		}
	}
}

// fcSilent accepts and never answers.
func fcSilent(c net.Conn, done <-chan struct{}) { <-done }

func TestClientContextDeadline(t *testing.T) {
	addr := fcServe(t, "", fcSilent)
	const timeout = 300 * time.Millisecond
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	start := time.Now()
	n, err := (&Client{IdleTimeout: -1}).Query(ctx, addr, Query{User: "bob"}, io.Discard)
	elapsed := time.Since(start)
	if n != 0 || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Query to a silent server = %d, %v, want 0, an error wrapping context.DeadlineExceeded", n, err)
	}
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Errorf("Query to a silent server: error %v is not a net.Error with Timeout()", err)
	}
	if elapsed < timeout-10*time.Millisecond || elapsed > timeout+10*time.Second {
		t.Errorf("Query to a silent server returned after %v, want about %v", elapsed, timeout)
	}
}

func TestClientContextDeadlineBeforeIdleTimeout(t *testing.T) {
	// The context's deadline is earlier than the idle timeout: the error
	// is the context's.
	addr := fcServe(t, "", fcSilent)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	_, err := (&Client{IdleTimeout: time.Minute}).Query(ctx, addr, Query{}, io.Discard)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Query = %v, want an error wrapping context.DeadlineExceeded", err)
	}
}

func TestClientContextCancel(t *testing.T) {
	addr := fcServe(t, "", func(c net.Conn, done <-chan struct{}) {
		c.Write([]byte("partial "))
		<-done
	})
	ctx, cancel := context.WithCancel(context.Background())
	var out fcNotifyWriter
	out.first = make(chan struct{})
	go func() {
		<-out.first
		cancel()
	}()
	start := time.Now()
	n, err := (&Client{IdleTimeout: -1}).Query(ctx, addr, Query{User: "bob"}, &out)
	if n != 8 || !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled Query = %d, %v, want 8, an error wrapping context.Canceled", n, err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("cancelled Query returned after %v", d)
	}

	// A context that is already done stops Query before it dials.
	c := &Client{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		t.Errorf("Query with a cancelled context dialled %s", addr)
		return nil, errors.New("unexpected dial")
	}}
	if _, err := c.Query(ctx, addr, Query{}, io.Discard); !errors.Is(err, context.Canceled) {
		t.Errorf("Query with a cancelled context = %v, want an error wrapping context.Canceled", err)
	}
}

// fcNotifyWriter closes first on its first Write.
type fcNotifyWriter struct {
	once  sync.Once
	first chan struct{}
	bytes.Buffer
}

func (w *fcNotifyWriter) Write(p []byte) (int, error) {
	n, err := w.Buffer.Write(p)
	w.once.Do(func() { close(w.first) })
	return n, err
}

func TestClientIdleTimeout(t *testing.T) {
	addr := fcServe(t, "", func(c net.Conn, done <-chan struct{}) {
		c.Write([]byte("partial"))
		<-done
	})
	const idle = 200 * time.Millisecond
	var out bytes.Buffer
	start := time.Now()
	n, err := (&Client{IdleTimeout: idle}).Query(context.Background(), addr, Query{User: "bob"}, &out)
	elapsed := time.Since(start)
	if n != 7 || out.String() != "partial" || !errors.Is(err, os.ErrDeadlineExceeded) || errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Query to a stalled server = %d, %v (wrote %q), want 7, an error wrapping os.ErrDeadlineExceeded only", n, err, out.String())
	}
	if elapsed < idle-10*time.Millisecond || elapsed > idle+10*time.Second {
		t.Errorf("Query to a stalled server returned after %v, want about %v", elapsed, idle)
	}
}

func TestClientIdleTimeoutResetsOnData(t *testing.T) {
	// The reply trickles in for longer than the idle timeout, but no gap
	// is as long as it: in a synctest bubble, over net.Pipe, so the gaps
	// are exact however loaded the machine.
	synctest.Test(t, func(t *testing.T) {
		const idle = 300 * time.Millisecond
		client, server := net.Pipe()
		go func() {
			defer server.Close()
			bufio.NewReader(server).ReadString('\n')
			for i := 0; i < 8; i++ {
				server.Write([]byte{'a' + byte(i)})
				time.Sleep(idle - time.Millisecond)
			}
		}()
		c := &Client{IdleTimeout: idle, DialContext: func(context.Context, string, string) (net.Conn, error) { return client, nil }}
		var out bytes.Buffer
		start := time.Now()
		n, err := c.Query(context.Background(), "192.0.2.1", Query{}, &out)
		if n != 8 || err != nil || out.String() != "abcdefgh" {
			t.Errorf("Query to a slow server = %d, %v (wrote %q), want 8, nil, %q", n, err, out.String(), "abcdefgh")
		}
		if d := time.Since(start); d <= idle {
			t.Errorf("the reply took %v, want longer than the idle timeout %v", d, idle)
		}
	})
}

func TestClientConnectionRefused(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	n, err := (&Client{}).Query(context.Background(), addr, Query{User: "bob"}, io.Discard)
	if n != 0 || !errors.Is(err, syscall.ECONNREFUSED) || !strings.HasPrefix(err.Error(), "finger: ") {
		t.Errorf("Query to a closed port = %d, %v, want 0, a \"finger: \" error wrapping ECONNREFUSED", n, err)
	}
}

func TestClientUnknownHost(t *testing.T) {
	// The dialer reports what net.Dialer reports for a name that does not
	// resolve (no DNS traffic in tests).
	dnsErr := &net.DNSError{Err: "no such host", Name: "nosuch.invalid", IsNotFound: true}
	var dialed string
	c := &Client{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		dialed = network + " " + addr
		return nil, &net.OpError{Op: "dial", Net: network, Err: dnsErr}
	}}
	_, err := c.Query(context.Background(), "nosuch.invalid", Query{User: "bob"}, io.Discard)
	var got *net.DNSError
	if !errors.As(err, &got) || !got.IsNotFound || errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Query to an unknown host = %v, want an error wrapping a *net.DNSError", err)
	}
	if want := "finger: dial tcp: lookup nosuch.invalid: no such host"; err == nil || err.Error() != want {
		t.Errorf("Query to an unknown host: error %q, want %q", err, want)
	}
	if dialed != "tcp nosuch.invalid:79" {
		t.Errorf("DialContext called with %q, want %q", dialed, "tcp nosuch.invalid:79")
	}
}

func TestClientIPv6(t *testing.T) {
	testenv.IPv6Loopback(t)
	got := make(chan []byte, 1)
	addr := fcServe(t, "[::1]:0", fcRecordAndReply(got, []byte("v6 reply\r\n")))
	if !strings.HasPrefix(addr, "[::1]:") {
		t.Fatalf("listening address %q is not [::1]:port", addr)
	}
	var out bytes.Buffer
	n, err := (&Client{}).Query(context.Background(), addr, Query{User: "bob"}, &out)
	if n != 10 || err != nil || out.String() != "v6 reply\r\n" || string(<-got) != "bob\r\n" {
		t.Errorf("Query(%q) = %d, %v (wrote %q), want 10, nil", addr, n, err, out.String())
	}
}

func TestClientRefusesBadQuery(t *testing.T) {
	c := &Client{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		t.Errorf("Query with a bad query dialled %s", addr)
		return nil, errors.New("unexpected dial")
	}}
	for _, q := range []Query{
		{User: "bob\r\nroot"},
		{User: "bob\x00"},
		{User: "\x1b[2J"},
		{User: "bob", Hosts: []string{"h\n"}},
		{User: "del\x7f"},
	} {
		if n, err := c.Query(context.Background(), "127.0.0.1:1", q, io.Discard); n != 0 || !errors.Is(err, ErrInvalidQuery) {
			t.Errorf("Query(%#v) = %d, %v, want 0, an error wrapping ErrInvalidQuery", q, n, err)
		}
	}
	if _, err := c.Query(context.Background(), "", Query{}, io.Discard); err == nil {
		t.Errorf("Query to address \"\" succeeded")
	}
}

func TestClientWriterError(t *testing.T) {
	addr := fcServe(t, "", func(c net.Conn, done <-chan struct{}) {
		bufio.NewReader(c).ReadString('\n')
		c.Write([]byte("reply\r\n"))
	})
	n, err := (&Client{}).Query(context.Background(), addr, Query{}, &fltSink{})
	if n != 0 || !errors.Is(err, fltErrSink) {
		t.Errorf("Query into a failing writer = %d, %v, want 0, an error wrapping %v", n, err, fltErrSink)
	}
}

func TestClientDialContextAndPipe(t *testing.T) {
	// A custom dialer returning a net.Pipe connection.
	var gotAddr string
	gotReq := make(chan string, 1)
	c := &Client{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		gotAddr = network + " " + addr
		client, server := net.Pipe()
		go func() {
			defer server.Close()
			line, _ := bufio.NewReader(server).ReadString('\n')
			gotReq <- line
			io.WriteString(server, "pipe reply\r\n")
		}()
		return client, nil
	}}
	var out bytes.Buffer
	n, err := c.Query(context.Background(), "[2001:db8::1]", Query{Verbose: true}, &out)
	if n != 12 || err != nil || out.String() != "pipe reply\r\n" {
		t.Errorf("Query over a pipe = %d, %v (wrote %q), want 12, nil", n, err, out.String())
	}
	if req := <-gotReq; req != "/W \r\n" {
		t.Errorf("Query over a pipe sent %q, want %q", req, "/W \r\n")
	}
	if gotAddr != "tcp [2001:db8::1]:79" {
		t.Errorf("DialContext called with %q, want %q", gotAddr, "tcp [2001:db8::1]:79")
	}
}

func TestFingerUsesDefaultClient(t *testing.T) {
	got := make(chan []byte, 1)
	addr := fcServe(t, "", fcRecordAndReply(got, []byte("ok\r\n")))
	var out bytes.Buffer
	if n, err := Finger(context.Background(), addr, Query{User: "bob"}, &out); n != 4 || err != nil || out.String() != "ok\r\n" {
		t.Errorf("Finger(%q) = %d, %v (wrote %q), want 4, nil, %q", addr, n, err, out.String(), "ok\r\n")
	}
	<-got
}

func TestNormalizeAddr(t *testing.T) {
	tests := []struct {
		in   string
		want string // "" = error
	}{
		{"example.org", "example.org:79"},
		{"example.org:7979", "example.org:7979"},
		{"example.org:079", "example.org:79"},
		{"localhost", "localhost:79"},
		{"192.0.2.1", "192.0.2.1:79"},
		{"192.0.2.1:79", "192.0.2.1:79"},
		{"[::1]", "[::1]:79"},
		{"[::1]:7979", "[::1]:7979"},
		{"::1", "[::1]:79"},
		{"2001:db8::1", "[2001:db8::1]:79"},
		{"[fe80::1%eth0]:79", "[fe80::1%eth0]:79"},
		{"fe80::1%eth0", "[fe80::1%eth0]:79"},
		{"[::ffff:192.0.2.1]", "[::ffff:192.0.2.1]:79"},
		{"bücher.example", "bücher.example:79"},

		{"", ""},
		{":79", ""},
		{"host:", ""},
		{"host:0", ""},
		{"host:65536", ""},
		{"host:-1", ""},
		{"host:+79", ""},
		{"host:finger", ""},
		{"[::1]:", ""},
		{"[::1]x", ""},
		{"[::1", ""},
		{"[]", ""},
		{"[]:79", ""},
		{"[192.0.2.1]:79", ""},
		{"[host]:79", ""},
		{"::1:79:x", ""},
		{"2001:db8::1:7979x", ""},
		{"ho st", ""},
		{"host\r\n", ""},
		{" host", ""},
		{"bob@host", ""},
		{"host/bob", ""},
		{"ho[st:79", ""},
		{"host]", ""},
	}
	for _, tt := range tests {
		got, err := NormalizeAddr(tt.in)
		if tt.want == "" {
			if err == nil || !strings.HasPrefix(err.Error(), "finger: ") {
				t.Errorf("NormalizeAddr(%q) = %q, %v, want a \"finger: \" error", tt.in, got, err)
			}
			continue
		}
		if got != tt.want || err != nil {
			t.Errorf("NormalizeAddr(%q) = %q, %v, want %q, nil", tt.in, got, err, tt.want)
		}
	}
}
