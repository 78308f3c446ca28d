package finger

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/openfinger/finger/internal/testenv"
)

var fwdTestLogger = slog.New(slog.NewTextHandler(io.Discard, nil))

var fwdLoopback = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}

// fwdStartFingerServer runs a Server with h on 127.0.0.1 and returns its port.
func fwdStartFingerServer(t *testing.T, h Handler) uint16 {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{Handler: h, Logger: fwdTestLogger}
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.Serve(l)
	}()
	t.Cleanup(func() {
		s.Close()
		<-done
	})
	return uint16(l.Addr().(*net.TCPAddr).Port)
}

// fwdRawPeer is a far side on 127.0.0.1 that reads one query line and then
// behaves as serve says. It records the query bytes it received.
type fwdRawPeer struct {
	port    uint16
	mu      sync.Mutex
	queries []string
	wg      sync.WaitGroup
}

func fwdStartRawPeer(t *testing.T, serve func(c net.Conn)) *fwdRawPeer {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &fwdRawPeer{port: uint16(l.Addr().(*net.TCPAddr).Port)}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			p.wg.Add(1)
			go func() {
				defer p.wg.Done()
				defer c.Close()
				c.SetDeadline(time.Now().Add(20 * time.Second))
				var line []byte
				b := make([]byte, 1)
				for {
					if _, err := c.Read(b); err != nil {
						break
					}
					line = append(line, b[0])
					if b[0] == '\n' || len(line) > 1024 {
						break
					}
				}
				p.mu.Lock()
				p.queries = append(p.queries, string(line))
				p.mu.Unlock()
				c.SetDeadline(time.Time{})
				serve(c)
			}()
		}
	}()
	t.Cleanup(func() {
		l.Close()
		p.wg.Wait()
	})
	return p
}

func (p *fwdRawPeer) received() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.queries...)
}

func (p *fwdRawPeer) host() string { return "127.0.0.1:" + strconv.Itoa(int(p.port)) }

// fwdFingerExchange sends line to 127.0.0.1:port and returns the whole reply.
func fwdFingerExchange(t *testing.T, port uint16, line string) string {
	t.Helper()
	c, err := net.Dial("tcp", "127.0.0.1:"+strconv.Itoa(int(port)))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(20 * time.Second))
	if _, err := io.WriteString(c, line); err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("reading reply to %q: %v", line, err)
	}
	return string(b)
}

// fwdForwardOnce runs f on a query line and returns what it wrote.
func fwdForwardOnce(t *testing.T, f *Forwarder, line string) string {
	t.Helper()
	q, err := ParseQuery(line)
	if err != nil {
		t.Fatalf("ParseQuery(%q): %v", line, err)
	}
	var buf bytes.Buffer
	r := &Request{
		Query:      q,
		Line:       line,
		RemoteAddr: &net.TCPAddr{IP: net.IPv4(192, 0, 2, 7), Port: 40000},
		LocalAddr:  &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 7979},
	}
	f.ServeFinger(context.Background(), &buf, r)
	return buf.String()
}

func fwdNoDial(t *testing.T) func(context.Context, string, string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		t.Errorf("Dial(%q, %q) called; want no connection", network, addr)
		return nil, errors.New("no dialing in this test")
	}
}

type fwdResolverFunc func(ctx context.Context, network, host string) ([]netip.Addr, error)

func (f fwdResolverFunc) LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error) {
	return f(ctx, network, host)
}

func fwdNoResolve(t *testing.T) Resolver {
	return fwdResolverFunc(func(ctx context.Context, network, host string) ([]netip.Addr, error) {
		t.Errorf("LookupNetIP(%q) called; want no lookup", host)
		return nil, errors.New("no lookups in this test")
	})
}

// fwdWaitGoroutines waits until the goroutine count is back to at most n.
func fwdWaitGoroutines(t *testing.T, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > n {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("goroutines: %d, want <= %d\n%s", runtime.NumGoroutine(), n, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestForwardChain forwards through three of our own servers on fwdLoopback:
// A → B → C, each on its own port.
func TestForwardChain(t *testing.T) {
	before := runtime.NumGoroutine()
	t.Run("A-B-C", func(t *testing.T) {
		portC := fwdStartFingerServer(t, HandlerFunc(func(ctx context.Context, w io.Writer, r *Request) {
			fmt.Fprintf(w, "C: line=%q verbose=%v user=%q\n", r.Line, r.Query.Verbose, r.Query.User)
			io.WriteString(w, "Plan:\r\nh\u00e9llo \x1b[31mred\x1b[0m")
		}))
		hop := func(name string, next uint16) Handler {
			fwd := &Forwarder{Allow: fwdLoopback, AllowPorts: []uint16{next}, Logger: fwdTestLogger}
			return HandlerFunc(func(ctx context.Context, w io.Writer, r *Request) {
				if len(r.Query.Hosts) > 0 {
					fwd.ServeFinger(ctx, w, r)
					return
				}
				io.WriteString(w, name+" answered locally\n")
			})
		}
		portB := fwdStartFingerServer(t, hop("B", portC))
		portA := fwdStartFingerServer(t, hop("A", portB))

		hostB := "127.0.0.1:" + strconv.Itoa(int(portB))
		hostC := "127.0.0.1:" + strconv.Itoa(int(portC))
		tests := []struct {
			line, want string
		}{
			{"/W alice@" + hostC + "@" + hostB + "\r\n",
				"C: line=\"/W alice\" verbose=true user=\"alice\"\r\nPlan:\r\nh\u00e9llo ^[[31mred^[[0m\r\n"},
			{"bob@" + hostC + "@" + hostB + "\r\n",
				"C: line=\"bob\" verbose=false user=\"bob\"\r\nPlan:\r\nh\u00e9llo ^[[31mred^[[0m\r\n"},
			{"/W @" + hostC + "@" + hostB + "\r\n",
				"C: line=\"/W \" verbose=true user=\"\"\r\nPlan:\r\nh\u00e9llo ^[[31mred^[[0m\r\n"},
			{"carol@" + hostB + "\r\n", "B answered locally\r\n"},
		}
		for _, tt := range tests {
			if got := fwdFingerExchange(t, portA, tt.line); got != tt.want {
				t.Errorf("finger %q via A:\n got %q\nwant %q", tt.line, got, tt.want)
			}
		}
	})
	fwdWaitGoroutines(t, before)
}

// TestForwardQueryBytes checks the exact bytes sent to the next host.
func TestForwardQueryBytes(t *testing.T) {
	peer := fwdStartRawPeer(t, func(c net.Conn) { io.WriteString(c, "reply\r\n") })
	f := &Forwarder{Allow: fwdLoopback, AllowPorts: []uint16{peer.port}, Logger: fwdTestLogger}
	h := peer.host()
	tests := []struct{ line, sent string }{
		{"fgtest_alice@" + h, "fgtest_alice\r\n"},
		{"/W fgtest_alice@" + h, "/W fgtest_alice\r\n"},
		{"/w   fgtest_alice@" + h, "/W fgtest_alice\r\n"},
		{"@" + h, "\r\n"},
		{"/W @" + h, "/W \r\n"},
		{"fgtest_alice@host1@" + h, "fgtest_alice@host1\r\n"},
		{"/W a b@host1@" + h, "/W a b@host1\r\n"},
		{"-l@" + h, "-l\r\n"},
		{"\u00fcser@" + h, "\u00fcser\r\n"},
	}
	for _, tt := range tests {
		if got := fwdForwardOnce(t, f, tt.line); got != "reply\r\n" {
			t.Errorf("forward %q: reply %q, want %q", tt.line, got, "reply\r\n")
		}
	}
	got := peer.received()
	if len(got) != len(tests) {
		t.Fatalf("far side got %d queries, want %d: %q", len(got), len(tests), got)
	}
	for i, tt := range tests {
		if got[i] != tt.sent {
			t.Errorf("forward %q: far side got %q, want %q", tt.line, got[i], tt.sent)
		}
	}
}

// TestForwardFarSide covers far sides that misbehave.
func TestForwardFarSide(t *testing.T) {
	tests := []struct {
		name  string
		f     Forwarder
		serve func(c net.Conn)
		want  func(got string) error
		max   time.Duration // against a hang only
	}{
		{
			name:  "never answers",
			f:     Forwarder{IdleTimeout: 200 * time.Millisecond},
			serve: func(c net.Conn) { io.Copy(io.Discard, c) },
			want:  fwdExactly(fwdMsgTimedOut + "\n"),
			max:   10 * time.Second,
		},
		{
			name: "stalls after a partial line",
			f:    Forwarder{IdleTimeout: 200 * time.Millisecond},
			serve: func(c net.Conn) {
				io.WriteString(c, "Login: alice")
				io.Copy(io.Discard, c)
			},
			want: fwdExactly("Login: alice\n" + fwdMsgTimedOut + "\n"),
			max:  10 * time.Second,
		},
		{
			name: "drips forever",
			f:    Forwarder{IdleTimeout: 10 * time.Second, TotalTimeout: 2 * time.Second},
			serve: func(c net.Conn) {
				// Two dots at once, then one every 10ms: only the total
				// timeout ends the reply.
				io.WriteString(c, "..")
				for {
					if _, err := io.WriteString(c, "."); err != nil {
						return
					}
					time.Sleep(10 * time.Millisecond)
				}
			},
			want: func(got string) error {
				if !strings.HasPrefix(got, "..") || !strings.HasSuffix(got, ".\n"+fwdMsgTimedOut+"\n") {
					return fmt.Errorf("got %q, want dots then the timeout line", got)
				}
				return nil
			},
			max: 10 * time.Second,
		},
		{
			name: "answers forever",
			f:    Forwarder{MaxBytes: 64 << 10},
			serve: func(c net.Conn) {
				line := []byte(strings.Repeat("x", 63) + "\n")
				for {
					if _, err := c.Write(line); err != nil {
						return
					}
				}
			},
			want: func(got string) error {
				body, ok := strings.CutSuffix(got, fwdMsgTruncated+"65536 bytes\n")
				if !ok || len(body) != 64<<10 || strings.Trim(body, "x\n") != "" {
					return fmt.Errorf("got %d bytes ending %q, want 65536 bytes of lines and the truncation line", len(got), got[max(0, len(got)-80):])
				}
				return nil
			},
			max: 10 * time.Second,
		},
		{
			name: "exactly at the cap",
			f:    Forwarder{MaxBytes: 10},
			serve: func(c net.Conn) {
				io.WriteString(c, "123456789\n")
			},
			want: fwdExactly("123456789\n"),
			max:  10 * time.Second,
		},
		{
			name: "one over the cap",
			f:    Forwarder{MaxBytes: 10},
			serve: func(c net.Conn) {
				io.WriteString(c, "1234567890X")
			},
			want: fwdExactly("1234567890\n" + fwdMsgTruncated + "10 bytes\n"),
			max:  10 * time.Second,
		},
		{
			name: "escape sequences",
			serve: func(c net.Conn) {
				io.WriteString(c, "\x1b]0;owned\x07\x1b[2J\x9b31m caf\u00e9 \u202eevil\x00\x7f\xff end\r\n")
			},
			want: fwdExactly(`^[]0;owned^G^[[2J\x9b31m caf` + "\u00e9" + ` \u202eevil^@^?\xff end` + "\r\n"),
			max:  10 * time.Second,
		},
		{
			name:  "strict filter",
			f:     Forwarder{Filter: &Filter{}},
			serve: func(c net.Conn) { io.WriteString(c, "caf\u00e9\n") },
			want:  fwdExactly(`caf\xc3\xa9` + "\n"),
			max:   10 * time.Second,
		},
		{
			name: "UTF-8 character split across writes",
			serve: func(c net.Conn) {
				c.Write([]byte{'a', 0xc3})
				time.Sleep(50 * time.Millisecond)
				c.Write([]byte{0xa9, '\n'})
			},
			want: fwdExactly("a\u00e9\n"),
			max:  10 * time.Second,
		},
		{
			name:  "truncated UTF-8 at close",
			serve: func(c net.Conn) { c.Write([]byte{'a', 0xe2, 0x82}) },
			want:  fwdExactly(`a\xe2\x82`),
			max:   10 * time.Second,
		},
		{
			name:  "closes at once",
			serve: func(c net.Conn) {},
			want:  fwdExactly(""),
			max:   10 * time.Second,
		},
		{
			name: "closes after part of a reply",
			serve: func(c net.Conn) {
				io.WriteString(c, "Login: alice")
			},
			want: fwdExactly("Login: alice"),
			max:  10 * time.Second,
		},
		{
			name: "resets the connection",
			serve: func(c net.Conn) {
				io.WriteString(c, "Login: alice\n")
				time.Sleep(50 * time.Millisecond)
				c.(*net.TCPConn).SetLinger(0)
			},
			want: func(got string) error {
				if got != "Login: alice\n" && got != "Login: alice\n"+fwdMsgLost+"\n" && got != fwdMsgLost+"\n" {
					return fmt.Errorf("got %q, want the partial reply and/or %q", got, fwdMsgLost)
				}
				return nil
			},
			max: 10 * time.Second,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			peer := fwdStartRawPeer(t, tt.serve)
			f := tt.f
			f.Allow = fwdLoopback
			f.AllowPorts = []uint16{peer.port}
			f.Logger = fwdTestLogger
			start := time.Now()
			got := fwdForwardOnce(t, &f, "alice@"+peer.host())
			if d := time.Since(start); d > tt.max {
				t.Errorf("took %v, want at most %v", d, tt.max)
			}
			if err := tt.want(got); err != nil {
				t.Error(err)
			}
		})
	}
}

func fwdExactly(want string) func(string) error {
	return func(got string) error {
		if got != want {
			return fmt.Errorf("got %q, want %q", got, want)
		}
		return nil
	}
}

// fwdCountingWriter counts and drops what is written.
type fwdCountingWriter struct{ n int64 }

func (w *fwdCountingWriter) Write(p []byte) (int, error) { w.n += int64(len(p)); return len(p), nil }

// TestForwardGigabyte has the far side try to send 1 GB: the Forwarder
// relays the default cap, stops fast and uses bounded memory. The relay
// runs in a child process (TestForwardGigabyteChild) that does nothing
// else, so that the memory it reports is the relay's alone, not that of
// the far side or of other tests' goroutines.
func TestForwardGigabyte(t *testing.T) {
	var sent atomic.Int64
	served := make(chan struct{})
	peer := fwdStartRawPeer(t, func(c net.Conn) {
		defer close(served)
		chunk := bytes.Repeat([]byte("0123456789abcde\n"), 4096)
		for sent.Load() < 1<<30 {
			n, err := c.Write(chunk)
			sent.Add(int64(n))
			if err != nil {
				return
			}
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second) // against a hang only
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestForwardGigabyteChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), "FINGER_FWD_GIGABYTE_PEER="+strconv.Itoa(int(peer.port)))
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	var relayed, alloc int64
	if i := bytes.Index(out, []byte("relayed=")); i < 0 {
		t.Fatalf("child did not report:\n%s", out)
	} else if _, err := fmt.Sscanf(string(out[i:]), "relayed=%d alloc=%d", &relayed, &alloc); err != nil {
		t.Fatalf("child report: %v\n%s", err, out)
	}
	t.Logf("relay in a child process: relayed %d bytes, allocated %d bytes", relayed, alloc)
	want := int64(DefaultForwardMaxBytes) + int64(len(fwdMsgTruncated+"1048576 bytes\n"))
	if relayed != want {
		t.Errorf("relayed %d bytes, want %d", relayed, want)
	}
	// The cap is 1 MiB: a relay that held the reply, or its pieces,
	// would allocate at least that much.
	if alloc > 512<<10 {
		t.Errorf("the relay allocated %d bytes relaying a capped reply, want at most 512 KiB", alloc)
	}
	select {
	case <-served:
	case <-time.After(10 * time.Second): // against a hang only
		t.Fatal("far side still writing 10s after the cap")
	}
	if s := sent.Load(); s > 64<<20 {
		t.Errorf("far side sent %d bytes before it saw the close", s)
	}
}

// TestForwardGigabyteChild is TestForwardGigabyte's relay, run in a child
// process; it does nothing in a normal test run.
func TestForwardGigabyteChild(t *testing.T) {
	port, err := strconv.Atoi(os.Getenv("FINGER_FWD_GIGABYTE_PEER"))
	if err != nil {
		return // not the child
	}
	f := &Forwarder{Allow: fwdLoopback, AllowPorts: []uint16{uint16(port)}, Logger: fwdTestLogger}
	q, _ := ParseQuery("alice@127.0.0.1:" + strconv.Itoa(port))
	var w fwdCountingWriter
	var ms0, ms1 runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms0)
	f.ServeFinger(context.Background(), &w, &Request{Query: q})
	runtime.ReadMemStats(&ms1)
	fmt.Printf("relayed=%d alloc=%d\n", w.n, ms1.TotalAlloc-ms0.TotalAlloc)
}

// TestForwardRefusedWithoutNetwork: queries that must be refused without
// any lookup or connection.
func TestForwardRefusedWithoutNetwork(t *testing.T) {
	many := "u" + strings.Repeat("@a", 1000)
	tests := []struct {
		name string
		f    Forwarder
		line string
		want string
	}{
		{"1000 hops", Forwarder{}, many, fwdMsgTooManyHops + "\n"},
		{"1000 hops, no cap on hops but a bad name", Forwarder{MaxHops: -1}, "u@a@-bad", fwdMsgBadHost + "\n"},
		{"4 hops", Forwarder{}, "u@a@b@c@d", fwdMsgTooManyHops + "\n"},
		{"2 over a cap of 1", Forwarder{MaxHops: 1}, "u@a@b", fwdMsgTooManyHops + "\n"},
		{"no host", Forwarder{}, "alice", fwdMsgNoHost + "\n"},
		{"leading dash label", Forwarder{}, "u@-x.example", fwdMsgBadHost + "\n"},
		{"empty label", Forwarder{}, "u@a..example", fwdMsgBadHost + "\n"},
		{"underscore ok but percent not", Forwarder{}, "u@a%2e", fwdMsgBadHost + "\n"},
		{"slash", Forwarder{}, "u@a/b", fwdMsgBadHost + "\n"},
		{"empty port", Forwarder{}, "u@host:", fwdMsgBadHost + "\n"},
		{"port 0", Forwarder{}, "u@host:0", fwdMsgBadHost + "\n"},
		{"port too big", Forwarder{}, "u@host:65536", fwdMsgBadHost + "\n"},
		{"signed port", Forwarder{}, "u@host:+79", fwdMsgBadHost + "\n"},
		{"service name", Forwarder{}, "u@host:finger", fwdMsgBadHost + "\n"},
		{"two colons", Forwarder{}, "u@host:79:80", fwdMsgBadHost + "\n"},
		{"unclosed bracket", Forwarder{}, "u@[2001:db8::1", fwdMsgBadHost + "\n"},
		{"bracketed IPv4", Forwarder{}, "u@[192.0.2.1]", fwdMsgBadHost + "\n"},
		{"junk after bracket", Forwarder{}, "u@[2001:db8::1]x", fwdMsgBadHost + "\n"},
		{"zone", Forwarder{}, "u@fe80::1%eth0", fwdMsgBadHost + "\n"},
		{"long name", Forwarder{}, "u@" + strings.Repeat("a", 64) + ".example", fwdMsgBadHost + "\n"},
		{"port not allowed", Forwarder{}, "u@finger.example:7979", fwdMsgNotAllowed + "\n"},
		{"port not allowed for an allowed host", Forwarder{AllowHosts: []string{"finger.example"}}, "u@finger.example:25", fwdMsgNotAllowed + "\n"},
		{"fwdLoopback literal", Forwarder{}, "u@127.0.0.1", fwdMsgNotAllowed + "\n"},
		{"private literal", Forwarder{}, "u@10.0.0.1", fwdMsgNotAllowed + "\n"},
		{"unspecified even when allowed", Forwarder{Allow: []netip.Prefix{netip.MustParsePrefix("0.0.0.0/0")}}, "u@0.0.0.0", fwdMsgNotAllowed + "\n"},
		{"own listening address even when allowed", Forwarder{Allow: fwdLoopback, AllowPorts: []uint16{7979}}, "u@127.0.0.1:7979", fwdMsgNotAllowed + "\n"},
		{"own port on another fwdLoopback address", Forwarder{Allow: fwdLoopback, AllowPorts: []uint16{7979}}, "u@127.0.0.2:7979", fwdMsgNotAllowed + "\n"},
		{"own port on IPv6 fwdLoopback", Forwarder{Allow: fwdLoopback, AllowPorts: []uint16{7979}}, "u@[::1]:7979", fwdMsgNotAllowed + "\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := tt.f
			f.Dial = fwdNoDial(t)
			f.Resolver = fwdNoResolve(t)
			f.Logger = fwdTestLogger
			if got := fwdForwardOnce(t, &f, tt.line); got != tt.want {
				t.Errorf("forward %q = %q, want %q", tt.line, got, tt.want)
			}
		})
	}
}

// TestForwardServerParseErrors: malformed {Q2} queries never reach the
// Forwarder, and 1000 hops are refused without a connection.
func TestForwardServerParseErrors(t *testing.T) {
	f := &Forwarder{Dial: fwdNoDial(t), Resolver: fwdNoResolve(t), Logger: fwdTestLogger}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{Handler: f, Logger: fwdTestLogger, MaxQueryBytes: 8192}
	go s.Serve(l)
	defer s.Close()
	port := uint16(l.Addr().(*net.TCPAddr).Port)
	tests := []struct{ line, want string }{
		{"user@@host\r\n", msgInvalid + "\r\n"},
		{"@\r\n", msgInvalid + "\r\n"},
		{"user@\r\n", msgInvalid + "\r\n"},
		{"@@\r\n", msgInvalid + "\r\n"},
		{"/W user@host@\r\n", msgInvalid + "\r\n"},
		{"user@ho st\r\n", msgInvalid + "\r\n"},
		{"u" + strings.Repeat("@a", 1000) + "\r\n", fwdMsgTooManyHops + "\r\n"},
		{"u" + strings.Repeat("@a", 4) + "\r\n", fwdMsgTooManyHops + "\r\n"},
	}
	for _, tt := range tests {
		if got := fwdFingerExchange(t, port, tt.line); got != tt.want {
			t.Errorf("finger %.40q = %q, want %q", tt.line, got, tt.want)
		}
	}
}

// fwdPipeDial answers every connection with "ok\n" and records the address.
type fwdPipeDial struct {
	mu    sync.Mutex
	addrs []string
}

func (d *fwdPipeDial) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	d.mu.Lock()
	d.addrs = append(d.addrs, network+" "+addr)
	d.mu.Unlock()
	a, b := net.Pipe()
	go func() {
		defer b.Close()
		b.SetDeadline(time.Now().Add(5 * time.Second))
		buf := make([]byte, 512)
		b.Read(buf)
		io.WriteString(b, "ok\n")
	}()
	return a, nil
}

func fwdStaticResolver(m map[string][]string, calls *atomic.Int32) Resolver {
	return fwdResolverFunc(func(ctx context.Context, network, host string) ([]netip.Addr, error) {
		calls.Add(1)
		if network != "ip" {
			return nil, fmt.Errorf("network %q", network)
		}
		ss, ok := m[strings.TrimSuffix(host, ".")]
		if !ok {
			return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
		}
		var out []netip.Addr
		for _, s := range ss {
			out = append(out, netip.MustParseAddr(s))
		}
		return out, nil
	})
}

// TestForwardAddressPolicy is the address policy table: which targets are
// dialed (and at which literal address) and which are refused.
func TestForwardAddressPolicy(t *testing.T) {
	dns := map[string][]string{
		"public.example":    {"93.184.215.14"},
		"dual.example":      {"2606:2800:21f:cb07:6820:80da:af6b:8b2c", "93.184.215.14"},
		"localhost":         {"127.0.0.1", "::1"},
		"intranet.example":  {"10.1.2.3"},
		"mixed.example":     {"93.184.215.14", "192.168.1.5"},
		"mapped.example":    {"::ffff:127.0.0.1"},
		"nat64.example":     {"64:ff9b::a00:1"},
		"sixtofour.example": {"2002:c0a8:101::1"},
		"linklocal.example": {"169.254.169.254"},
		"cgnat.example":     {"100.64.1.1"},
		"multicast.example": {"224.0.0.1"},
	}
	private := Forwarder{AllowPrivate: true}
	tests := []struct {
		name string
		f    Forwarder
		host string
		want string // "dial ADDR", or the refusal line
	}{
		{"public name", Forwarder{}, "public.example", "dial 93.184.215.14:79"},
		{"public name, trailing dot", Forwarder{}, "public.example.", "dial 93.184.215.14:79"},
		{"public literal", Forwarder{}, "93.184.215.14", "dial 93.184.215.14:79"},
		{"public IPv6 literal", Forwarder{}, "2606:2800:21f:cb07:6820:80da:af6b:8b2c", "dial [2606:2800:21f:cb07:6820:80da:af6b:8b2c]:79"},
		{"bracketed IPv6 with port", Forwarder{AllowPorts: []uint16{7979}}, "[2606:2800:21f:cb07:6820:80da:af6b:8b2c]:7979", "dial [2606:2800:21f:cb07:6820:80da:af6b:8b2c]:7979"},
		{"explicit port 79", Forwarder{}, "public.example:79", "dial 93.184.215.14:79"},
		{"allowed port", Forwarder{AllowPorts: []uint16{7979}}, "public.example:7979", "dial 93.184.215.14:7979"},
		{"dual stack", Forwarder{}, "dual.example", "dial [2606:2800:21f:cb07:6820:80da:af6b:8b2c]:79"},
		{"unknown name", Forwarder{}, "nosuch.invalid", fwdMsgUnknownHost},

		{"fwdLoopback by default", Forwarder{}, "127.0.0.1", fwdMsgNotAllowed},
		{"fwdLoopback name by default", Forwarder{}, "localhost", fwdMsgNotAllowed},
		{"fwdLoopback with AllowPrivate", private, "127.0.0.1", fwdMsgNotAllowed},
		{"loopback with Allow, own port", Forwarder{Allow: fwdLoopback}, "127.0.0.1", fwdMsgNotAllowed},
		{"loopback with Allow, other port", Forwarder{Allow: fwdLoopback, AllowPorts: []uint16{7979}}, "127.0.0.1:7979", "dial 127.0.0.1:7979"},
		{"loopback name with AllowHosts, own port", Forwarder{AllowHosts: []string{"LocalHost."}}, "localhost", fwdMsgNotAllowed},
		{"loopback name with AllowHosts", Forwarder{AllowHosts: []string{"LocalHost."}, AllowPorts: []uint16{7979}}, "localhost:7979", "dial 127.0.0.1:7979"},
		{"IPv6 fwdLoopback", Forwarder{}, "::1", fwdMsgNotAllowed},
		{"mapped fwdLoopback literal", Forwarder{}, "::ffff:127.0.0.1", fwdMsgNotAllowed},
		{"name resolving to mapped fwdLoopback", Forwarder{}, "mapped.example", fwdMsgNotAllowed},

		{"name resolving to private", Forwarder{}, "intranet.example", fwdMsgNotAllowed},
		{"name resolving to private, AllowPrivate", private, "intranet.example", "dial 10.1.2.3:79"},
		{"name resolving to private, Allow", Forwarder{Allow: []netip.Prefix{netip.MustParsePrefix("10.1.0.0/16")}}, "intranet.example", "dial 10.1.2.3:79"},
		{"name resolving to private, Allow elsewhere", Forwarder{Allow: []netip.Prefix{netip.MustParsePrefix("10.2.0.0/16")}}, "intranet.example", fwdMsgNotAllowed},
		{"name resolving to private, AllowHosts", Forwarder{AllowHosts: []string{"intranet.example"}}, "intranet.example", "dial 10.1.2.3:79"},
		{"one private address among public ones", Forwarder{}, "mixed.example", fwdMsgNotAllowed},
		{"10/8", Forwarder{}, "10.0.0.1", fwdMsgNotAllowed},
		{"172.16/12", Forwarder{}, "172.31.255.255", fwdMsgNotAllowed},
		{"172.32 is public", Forwarder{}, "172.32.0.1", "dial 172.32.0.1:79"},
		{"192.168/16", Forwarder{}, "192.168.0.1", fwdMsgNotAllowed},
		{"unique local", Forwarder{}, "fd00::1", fwdMsgNotAllowed},
		{"unique local, AllowPrivate", private, "fd00::1", "dial [fd00::1]:79"},
		{"link-local", Forwarder{}, "linklocal.example", fwdMsgNotAllowed},
		{"link-local, AllowPrivate", private, "169.254.169.254", "dial 169.254.169.254:79"},
		{"IPv6 link-local", Forwarder{}, "fe80::1", fwdMsgNotAllowed},
		{"shared address space", Forwarder{}, "cgnat.example", fwdMsgNotAllowed},
		{"multicast", Forwarder{}, "multicast.example", fwdMsgNotAllowed},
		{"IPv6 multicast", Forwarder{}, "ff02::1", fwdMsgNotAllowed},
		{"broadcast", Forwarder{}, "255.255.255.255", fwdMsgNotAllowed},
		{"broadcast, AllowPrivate", private, "255.255.255.255", fwdMsgNotAllowed},
		{"this network", Forwarder{}, "0.1.2.3", fwdMsgNotAllowed},
		{"unspecified", Forwarder{}, "0.0.0.0", fwdMsgNotAllowed},
		{"IPv6 unspecified", Forwarder{}, "::", fwdMsgNotAllowed},
		{"reserved", Forwarder{}, "240.0.0.1", fwdMsgNotAllowed},
		{"NAT64 of private", Forwarder{}, "nat64.example", fwdMsgNotAllowed},
		{"NAT64 of public", Forwarder{}, "64:ff9b::5db8:d70e", "dial [64:ff9b::5db8:d70e]:79"},
		{"6to4 of private", Forwarder{}, "sixtofour.example", fwdMsgNotAllowed},
		{"documentation", Forwarder{}, "192.0.2.1", fwdMsgNotAllowed},
		{"documentation, Allow", Forwarder{Allow: []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")}}, "192.0.2.1", "dial 192.0.2.1:79"},
		{"request's own address", Forwarder{}, "93.184.215.99", fwdMsgNotAllowed},
		{"request's own address, other port, Allow", Forwarder{Allow: []netip.Prefix{netip.MustParsePrefix("93.184.215.99/32")}, AllowPorts: []uint16{7979}}, "93.184.215.99:7979", "dial 93.184.215.99:7979"},
		{"request's own address and port, Allow", Forwarder{Allow: []netip.Prefix{netip.MustParsePrefix("0.0.0.0/0")}}, "93.184.215.99:79", fwdMsgNotAllowed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var d fwdPipeDial
			var calls atomic.Int32
			f := tt.f
			f.Dial = d.dial
			f.Resolver = fwdStaticResolver(dns, &calls)
			f.Logger = fwdTestLogger
			q, err := ParseQuery("alice@" + tt.host)
			if err != nil {
				t.Fatal(err)
			}
			var buf bytes.Buffer
			f.ServeFinger(context.Background(), &buf, &Request{
				Query:     q,
				LocalAddr: &net.TCPAddr{IP: net.IPv4(93, 184, 215, 99), Port: 79},
			})
			got := strings.TrimSuffix(buf.String(), "\n")
			if len(d.addrs) > 0 {
				if buf.String() != "ok\n" {
					t.Errorf("reply %q, want %q", buf.String(), "ok\n")
				}
				got = "dial " + strings.TrimPrefix(d.addrs[0], "tcp ")
			}
			if got != tt.want {
				t.Errorf("forward to %q: %s, want %s", tt.host, got, tt.want)
			}
			if n := calls.Load(); n > 1 {
				t.Errorf("%d lookups of %q, want at most 1", n, tt.host)
			}
		})
	}
}

// TestForwardOwnInterfaceAddress: the machine's interface addresses are
// refused even with AllowPrivate.
func TestForwardOwnInterfaceAddress(t *testing.T) {
	// As root, in a network namespace of the test's own with a dummy
	// interface (in a goroutine whose thread ends in that namespace);
	// otherwise with one of this machine's addresses.
	ran := make(chan error, 1)
	go func() {
		// A private address: AllowPrivate lifts its class, so only being
		// this machine's address refuses it.
		ns := netip.MustParsePrefix("10.254.79.1/24")
		err := fwdOwnNetns(ns)
		if err == nil {
			fwdCheckOwnRefused(t, ns.Addr())
		}
		ran <- err
	}()
	err := <-ran
	// Forget the namespace's addresses.
	fwdOwn.Lock()
	fwdOwn.addrs = nil
	fwdOwn.Unlock()
	if err == nil {
		return
	}
	t.Logf("no network namespace of the test's own (%v); using this machine's addresses", err)
	ifas, err := net.InterfaceAddrs()
	if err != nil {
		t.Fatalf("net.InterfaceAddrs: %v", err)
	}
	var own netip.Addr
	for _, a := range ifas {
		p, err := netip.ParsePrefix(a.String())
		if err == nil && !p.Addr().IsLoopback() && !p.Addr().IsLinkLocalUnicast() {
			own = p.Addr().Unmap()
			break
		}
	}
	testenv.Require(t, own.IsValid(), "a non-loopback interface address, or root and ip(8) (iproute2) to make one in a network namespace")
	fwdCheckOwnRefused(t, own)
}

// fwdCheckOwnRefused checks that forwarding to own, an address of this
// machine, is refused with and without AllowPrivate.
func fwdCheckOwnRefused(t *testing.T, own netip.Addr) {
	for _, f := range []Forwarder{{}, {AllowPrivate: true}} {
		f.Dial = fwdNoDial(t)
		f.Resolver = fwdNoResolve(t)
		f.Logger = fwdTestLogger
		line := "alice@" + own.String()
		if own.Is6() {
			line = "alice@[" + own.String() + "]"
		}
		q, err := ParseQuery(line)
		if err != nil {
			t.Errorf("ParseQuery(%q): %v", line, err)
			continue
		}
		var buf bytes.Buffer
		f.ServeFinger(context.Background(), &buf, &Request{Query: q, Line: line,
			RemoteAddr: &net.TCPAddr{IP: net.IPv4(192, 0, 2, 7), Port: 40000},
			LocalAddr:  &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 7979}})
		if got := buf.String(); got != fwdMsgNotAllowed+"\n" {
			t.Errorf("forward to own address %v (AllowPrivate=%v) = %q, want refusal", own, f.AllowPrivate, got)
		}
	}
}

// TestForwardResolvesOnce: a name whose second lookup would answer with a
// fwdLoopback address is looked up once and the checked address is dialed.
func TestForwardResolvesOnce(t *testing.T) {
	var calls atomic.Int32
	res := fwdResolverFunc(func(ctx context.Context, network, host string) ([]netip.Addr, error) {
		if calls.Add(1) == 1 {
			return []netip.Addr{netip.MustParseAddr("93.184.215.14")}, nil
		}
		return []netip.Addr{netip.MustParseAddr("127.0.0.1")}, nil
	})
	var d fwdPipeDial
	f := &Forwarder{Resolver: res, Dial: d.dial, Logger: fwdTestLogger}
	if got := fwdForwardOnce(t, f, "alice@rebind.example"); got != "ok\n" {
		t.Errorf("reply %q", got)
	}
	if calls.Load() != 1 || len(d.addrs) != 1 || d.addrs[0] != "tcp 93.184.215.14:79" {
		t.Errorf("lookups %d, dialed %q; want 1 lookup and tcp 93.184.215.14:79", calls.Load(), d.addrs)
	}
}

// TestForwardConnectFailures: refused, unreachable and slow connections
// give one clear line.
func TestForwardConnectFailures(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedPort := uint16(l.Addr().(*net.TCPAddr).Port)
	l.Close()

	t.Run("refused", func(t *testing.T) {
		f := &Forwarder{Allow: fwdLoopback, AllowPorts: []uint16{closedPort}, Logger: fwdTestLogger}
		if got := fwdForwardOnce(t, f, "alice@127.0.0.1:"+strconv.Itoa(int(closedPort))); got != fwdMsgRefused+"\n" {
			t.Errorf("got %q, want %q", got, fwdMsgRefused+"\n")
		}
	})
	t.Run("connect timeout", func(t *testing.T) {
		f := &Forwarder{
			ConnectTimeout: 100 * time.Millisecond,
			Logger:         fwdTestLogger,
			Dial: func(ctx context.Context, network, addr string) (net.Conn, error) {
				<-ctx.Done()
				return nil, &net.OpError{Op: "dial", Net: network, Err: ctx.Err()}
			},
		}
		start := time.Now()
		if got := fwdForwardOnce(t, f, "alice@93.184.215.14"); got != fwdMsgTimedOut+"\n" {
			t.Errorf("got %q, want %q", got, fwdMsgTimedOut+"\n")
		}
		if d := time.Since(start); d > 10*time.Second { // against a hang only
			t.Errorf("took %v", d)
		}
	})
	t.Run("lookup timeout", func(t *testing.T) {
		f := &Forwarder{
			ConnectTimeout: 100 * time.Millisecond,
			Logger:         fwdTestLogger,
			Dial:           fwdNoDial(t),
			Resolver: fwdResolverFunc(func(ctx context.Context, network, host string) ([]netip.Addr, error) {
				<-ctx.Done()
				return nil, ctx.Err()
			}),
		}
		if got := fwdForwardOnce(t, f, "alice@slow.example"); got != fwdMsgTimedOut+"\n" {
			t.Errorf("got %q, want %q", got, fwdMsgTimedOut+"\n")
		}
	})
	t.Run("unreachable", func(t *testing.T) {
		f := &Forwarder{
			Logger: fwdTestLogger,
			Dial: func(ctx context.Context, network, addr string) (net.Conn, error) {
				return nil, &net.OpError{Op: "dial", Net: network, Err: os.NewSyscallError("connect", syscall.EHOSTUNREACH)}
			},
		}
		if got := fwdForwardOnce(t, f, "alice@93.184.215.14"); got != fwdMsgUnreachable+"\n" {
			t.Errorf("got %q, want %q", got, fwdMsgUnreachable+"\n")
		}
	})
	t.Run("other error text is not shown", func(t *testing.T) {
		f := &Forwarder{
			Logger: fwdTestLogger,
			Dial: func(ctx context.Context, network, addr string) (net.Conn, error) {
				return nil, errors.New("secret internal detail /etc/whatever")
			},
		}
		if got := fwdForwardOnce(t, f, "alice@93.184.215.14"); got != fwdMsgConnFailed+"\n" {
			t.Errorf("got %q, want %q", got, fwdMsgConnFailed+"\n")
		}
	})
	t.Run("request context ends", func(t *testing.T) {
		peer := fwdStartRawPeer(t, func(c net.Conn) { io.Copy(io.Discard, c) })
		f := &Forwarder{Allow: fwdLoopback, AllowPorts: []uint16{peer.port}, Logger: fwdTestLogger}
		q, _ := ParseQuery("alice@" + peer.host())
		ctx, cancel := context.WithTimeout(context.Background(), 150*time.Millisecond)
		defer cancel()
		var buf bytes.Buffer
		start := time.Now()
		f.ServeFinger(ctx, &buf, &Request{Query: q})
		if d := time.Since(start); d > 10*time.Second { // against a hang only
			t.Errorf("took %v after the context ended", d)
		}
		if buf.String() != fwdMsgTimedOut+"\n" {
			t.Errorf("got %q", buf.String())
		}
	})
}

// fwdFailWriter fails every write: the client went away.
type fwdFailWriter struct{ calls int }

func (w *fwdFailWriter) Write(p []byte) (int, error) { w.calls++; return 0, errors.New("broken pipe") }

func TestForwardClientGone(t *testing.T) {
	peer := fwdStartRawPeer(t, func(c net.Conn) {
		for {
			if _, err := io.WriteString(c, "data\n"); err != nil {
				return
			}
		}
	})
	f := &Forwarder{Allow: fwdLoopback, AllowPorts: []uint16{peer.port}, Logger: fwdTestLogger, MaxBytes: -1}
	q, _ := ParseQuery("alice@" + peer.host())
	var w fwdFailWriter
	done := make(chan struct{})
	go func() {
		defer close(done)
		f.ServeFinger(context.Background(), &w, &Request{Query: q})
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Forwarder kept relaying to a writer that fails")
	}
	if w.calls != 1 {
		t.Errorf("%d writes to a failed writer, want 1", w.calls)
	}
}

// TestForwardSpecialPurposeRanges walks IANA's IPv4 and IPv6 Special-Purpose
// Address Registries, multicast and the translation prefixes: for each range
// an address inside is refused by default (and dialled with AllowPrivate
// only when the range is one AllowPrivate lifts), and an address just
// outside is dialled.
func TestForwardSpecialPurposeRanges(t *testing.T) {
	tests := []struct {
		rng      string
		inside   []string
		outside  []string
		liftable bool
	}{
		{"0.0.0.0/8", []string{"0.0.0.1", "0.255.255.255"}, []string{"1.0.0.0"}, false},
		{"10.0.0.0/8", []string{"10.0.0.0", "10.255.255.255"}, []string{"9.255.255.255", "11.0.0.0"}, true},
		{"100.64.0.0/10", []string{"100.64.0.0", "100.127.255.255"}, []string{"100.63.255.255", "100.128.0.0"}, true},
		{"127.0.0.0/8", []string{"127.0.0.1", "127.255.255.255"}, []string{"126.255.255.255", "128.0.0.0"}, false},
		{"169.254.0.0/16", []string{"169.254.0.0", "169.254.255.255"}, []string{"169.253.255.255", "169.255.0.0"}, true},
		{"172.16.0.0/12", []string{"172.16.0.0", "172.31.255.255"}, []string{"172.15.255.255", "172.32.0.0"}, true},
		{"192.0.0.0/24", []string{"192.0.0.0", "192.0.0.8", "192.0.0.9", "192.0.0.10", "192.0.0.170", "192.0.0.255"}, []string{"191.255.255.255", "192.0.1.0"}, false},
		{"192.0.2.0/24", []string{"192.0.2.0", "192.0.2.255"}, []string{"192.0.1.255", "192.0.3.0"}, false},
		{"192.31.196.0/24", []string{"192.31.196.0", "192.31.196.255"}, []string{"192.31.195.255", "192.31.197.0"}, false},
		{"192.52.193.0/24", []string{"192.52.193.0", "192.52.193.255"}, []string{"192.52.192.255", "192.52.194.0"}, false},
		{"192.88.99.0/24", []string{"192.88.99.0", "192.88.99.255"}, []string{"192.88.98.255", "192.88.100.0"}, false},
		{"192.168.0.0/16", []string{"192.168.0.0", "192.168.255.255"}, []string{"192.167.255.255", "192.169.0.0"}, true},
		{"192.175.48.0/24", []string{"192.175.48.0", "192.175.48.255"}, []string{"192.175.47.255", "192.175.49.0"}, false},
		{"198.18.0.0/15", []string{"198.18.0.0", "198.19.255.255"}, []string{"198.17.255.255", "198.20.0.0"}, false},
		{"198.51.100.0/24", []string{"198.51.100.0", "198.51.100.255"}, []string{"198.51.99.255", "198.51.101.0"}, false},
		{"203.0.113.0/24", []string{"203.0.113.0", "203.0.113.255"}, []string{"203.0.112.255", "203.0.114.0"}, false},
		{"224.0.0.0/4", []string{"224.0.0.0", "239.255.255.255"}, []string{"223.255.255.255"}, true},
		{"240.0.0.0/4", []string{"240.0.0.0", "255.255.255.254"}, []string{"223.255.255.255"}, false},
		{"255.255.255.255/32", []string{"255.255.255.255"}, []string{"223.255.255.255"}, false},

		{"::/128", []string{"::"}, []string{"2600::"}, false},
		{"::1/128", []string{"::1"}, []string{"2600::1"}, false},
		{"::/96 (IPv4-compatible)", []string{"::2", "::5db8:d70e", "::ffff:ffff"}, []string{"::1:0:0:0", "2600::2"}, false},
		{"::ffff:0:0/96 (IPv4-mapped, checked as IPv4)", []string{"::ffff:127.0.0.1", "::ffff:192.0.2.1", "::ffff:255.255.255.255"}, []string{"::ffff:93.184.215.14"}, false},
		{"::ffff:0:0/96 (IPv4-mapped private)", []string{"::ffff:10.0.0.1", "::ffff:169.254.169.254"}, nil, true},
		{"::ffff:0:0:0/96 (SIIT)", []string{"::ffff:0:7f00:1", "::ffff:0:5db8:d70e", "::ffff:0:0:0", "::ffff:0:ffff:ffff"}, []string{"::fffe:ffff:ffff:ffff", "::1:0:0:0:0"}, false},
		{"64:ff9b::/96 (NAT64, checked as IPv4)", []string{"64:ff9b::7f00:1", "64:ff9b::c000:201", "64:ff9b::ffff:ffff"}, []string{"64:ff9b::5db8:d70e", "64:ff9b:0:0:0:1::"}, false},
		{"64:ff9b::/96 (NAT64 of private)", []string{"64:ff9b::a00:1", "64:ff9b::c0a8:101"}, nil, true},
		{"64:ff9b:1::/48", []string{"64:ff9b:1::", "64:ff9b:1:ffff:ffff:ffff:ffff:ffff"}, []string{"64:ff9b:0:ffff:ffff:ffff:ffff:ffff", "64:ff9b:2::"}, true},
		{"100::/64", []string{"100::", "100::ffff:ffff:ffff:ffff"}, []string{"ff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"}, false},
		{"100:0:0:1::/64", []string{"100:0:0:1::", "100:0:0:1:ffff:ffff:ffff:ffff"}, []string{"100:0:0:2::"}, false},
		{"2001::/23", []string{"2001::", "2001:1::1", "2001:1::2", "2001:1ff:ffff:ffff:ffff:ffff:ffff:ffff"}, []string{"2000:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "2001:200::"}, false},
		{"2001::/32 (Teredo)", []string{"2001::1", "2001:0:ffff:ffff:ffff:ffff:ffff:ffff"}, nil, false},
		{"2001:2::/48", []string{"2001:2::", "2001:2:0:ffff:ffff:ffff:ffff:ffff"}, nil, false},
		{"2001:3::/32", []string{"2001:3::", "2001:3:ffff:ffff:ffff:ffff:ffff:ffff"}, nil, false},
		{"2001:4:112::/48", []string{"2001:4:112::", "2001:4:112:ffff:ffff:ffff:ffff:ffff"}, nil, false},
		{"2001:10::/28", []string{"2001:10::", "2001:1f:ffff:ffff:ffff:ffff:ffff:ffff"}, nil, false},
		{"2001:20::/28", []string{"2001:20::", "2001:2f:ffff:ffff:ffff:ffff:ffff:ffff"}, nil, false},
		{"2001:30::/28", []string{"2001:30::", "2001:3f:ffff:ffff:ffff:ffff:ffff:ffff"}, nil, false},
		{"2001:db8::/32", []string{"2001:db8::", "2001:db8:ffff:ffff:ffff:ffff:ffff:ffff"}, []string{"2001:db7:ffff:ffff:ffff:ffff:ffff:ffff", "2001:db9::"}, false},
		{"2002::/16 (6to4)", []string{"2002::", "2002:5db8:d70e::1", "2002:c0a8:101::1", "2002:ffff:ffff:ffff:ffff:ffff:ffff:ffff"}, []string{"2001:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "2003::"}, false},
		{"2620:4f:8000::/48", []string{"2620:4f:8000::", "2620:4f:8000:ffff:ffff:ffff:ffff:ffff"}, []string{"2620:4f:7fff:ffff:ffff:ffff:ffff:ffff", "2620:4f:8001::"}, false},
		{"3fff::/20", []string{"3fff::", "3fff:fff:ffff:ffff:ffff:ffff:ffff:ffff"}, []string{"3ffe:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "3fff:1000::"}, false},
		{"5f00::/16", []string{"5f00::", "5f00:ffff:ffff:ffff:ffff:ffff:ffff:ffff"}, []string{"5eff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "5f01::"}, false},
		{"fc00::/7", []string{"fc00::", "fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"}, []string{"fbff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"}, true},
		{"fe80::/10", []string{"fe80::", "febf:ffff:ffff:ffff:ffff:ffff:ffff:ffff"}, []string{"fe7f:ffff:ffff:ffff:ffff:ffff:ffff:ffff"}, true},
		{"fec0::/10 (site-local)", []string{"fec0::", "feff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"}, nil, true},
		{"ff00::/8", []string{"ff00::", "ff02::1", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"}, nil, true},
	}
	forward := func(f Forwarder, addr string) string {
		var d fwdPipeDial
		f.Dial = d.dial
		f.Resolver = fwdResolverFunc(func(ctx context.Context, network, host string) ([]netip.Addr, error) {
			return nil, fmt.Errorf("lookup of %q", host)
		})
		f.Logger = fwdTestLogger
		host := addr
		if strings.Contains(addr, ":") {
			host = "[" + addr + "]"
		}
		q, err := ParseQuery("alice@" + host)
		if err != nil {
			t.Fatal(err)
		}
		var buf bytes.Buffer
		f.ServeFinger(context.Background(), &buf, &Request{
			Query:     q,
			LocalAddr: &net.TCPAddr{IP: net.IPv4(93, 184, 215, 99), Port: 79},
		})
		if len(d.addrs) > 0 {
			return "dial"
		}
		return strings.TrimSuffix(buf.String(), "\n")
	}
	for _, tt := range tests {
		t.Run(tt.rng, func(t *testing.T) {
			for _, a := range tt.inside {
				if got := forward(Forwarder{}, a); got != fwdMsgNotAllowed {
					t.Errorf("forward(%q) = %q, want %q", a, got, fwdMsgNotAllowed)
				}
				want := fwdMsgNotAllowed
				if tt.liftable {
					want = "dial"
				}
				if got := forward(Forwarder{AllowPrivate: true}, a); got != want {
					t.Errorf("forward(%q) with AllowPrivate = %q, want %q", a, got, want)
				}
			}
			for _, a := range tt.outside {
				if got := forward(Forwarder{}, a); got != "dial" {
					t.Errorf("forward(%q) = %q, want %q", a, got, "dial")
				}
			}
		})
	}
}
