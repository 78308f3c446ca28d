package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/openfinger/finger"
)

// testEnv is an env with no configuration file, the given environment and
// a local answer that echoes the query.
func testEnv(t *testing.T, vars map[string]string) *env {
	return &env{
		getenv:     func(k string) string { return vars[k] },
		configPath: filepath.Join(t.TempDir(), "finger.conf"),
		local: func(ctx context.Context, q finger.Query, o *options, w io.Writer) error {
			fmt.Fprintf(w, "local %q m=%v p=%v\n", q.String(), o.noMatch, o.noPlan)
			return nil
		},
	}
}

// result is what one run of the command produced.
type result struct {
	stdout, stderr string
	code           int
}

func (e *env) exec(args ...string) result {
	var out, errb bytes.Buffer
	err := e.run(context.Background(), args, &out, &errb)
	return result{out.String(), errb.String(), exitStatus(err)}
}

// rawServer is a crafted finger server on 127.0.0.1:0: it reads the
// request line, records it with its line end, and calls reply.
type rawServer struct {
	addr string
	mu   sync.Mutex
	reqs []string
}

func newRawServer(t *testing.T, reply func(c net.Conn, done <-chan struct{})) *rawServer {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &rawServer{addr: l.Addr().String()}
	var wg sync.WaitGroup
	done := make(chan struct{})
	t.Cleanup(func() {
		close(done)
		l.Close()
		wg.Wait()
	})
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
				go func() {
					<-done
					c.Close()
				}()
				c.SetReadDeadline(time.Now().Add(5 * time.Second))
				line, err := bufio.NewReader(c).ReadString('\n')
				s.mu.Lock()
				s.reqs = append(s.reqs, line)
				s.mu.Unlock()
				if err != nil {
					return
				}
				reply(c, done)
			}()
		}
	}()
	return s
}

func (s *rawServer) requests() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.reqs...)
}

func sendAndClose(data string) func(net.Conn, <-chan struct{}) {
	return func(c net.Conn, _ <-chan struct{}) { io.WriteString(c, data) }
}

// hold sends first and keeps the connection open until the test ends.
func hold(first string) func(net.Conn, <-chan struct{}) {
	return func(c net.Conn, done <-chan struct{}) {
		io.WriteString(c, first)
		<-done
	}
}

func TestRequestBytes(t *testing.T) {
	tests := []struct {
		args []string // "ADDR" is replaced by the server's address
		want []string
	}{
		{[]string{"alice@ADDR"}, []string{"alice\r\n"}},
		{[]string{"-l", "alice@ADDR"}, []string{"/W alice\r\n"}},
		{[]string{"@ADDR"}, []string{"\r\n"}},
		{[]string{"-l", "@ADDR"}, []string{"/W \r\n"}},
		{[]string{"-smp", "alice@ADDR"}, []string{"alice\r\n"}},
		{[]string{"alice@host1@ADDR"}, []string{"alice@host1\r\n"}},
		{[]string{"a@ADDR", "b@ADDR"}, []string{"a\r\n", "b\r\n"}},
		{[]string{"--", "-l@ADDR"}, []string{"-l\r\n"}},
		{[]string{"finger://ADDR/alice"}, []string{"alice\r\n"}},
		{[]string{"finger://alice@ADDR"}, []string{"alice\r\n"}},
		{[]string{"-l", "finger://ADDR"}, []string{"/W \r\n"}},
	}
	for _, tt := range tests {
		s := newRawServer(t, sendAndClose("ok\r\n"))
		var args []string
		for _, a := range tt.args {
			args = append(args, strings.ReplaceAll(a, "ADDR", s.addr))
		}
		r := testEnv(t, nil).exec(args...)
		if r.code != 0 {
			t.Errorf("finger %q: exit %d, stderr %q", args, r.code, r.stderr)
			continue
		}
		if got := s.requests(); strings.Join(got, "|") != strings.Join(tt.want, "|") {
			t.Errorf("finger %q sent %q, want %q", args, got, tt.want)
		}
	}
}

// TestAgainstServer runs the command against the project's own server.
func TestAgainstServer(t *testing.T) {
	var mu sync.Mutex
	var lines []string
	srv := &finger.Server{Handler: finger.HandlerFunc(func(ctx context.Context, w io.Writer, r *finger.Request) {
		mu.Lock()
		lines = append(lines, r.Line)
		mu.Unlock()
		if r.Query.User == "" {
			io.WriteString(w, "Login    Name\nalice    Alice Liddell\n")
			return
		}
		fmt.Fprintf(w, "Login: %s\nverbose: %v\nNo Plan.", r.Query.User, r.Query.Verbose)
	})}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	addr := l.Addr().String()

	r := testEnv(t, nil).exec("-l", "alice@"+addr, "@"+addr, "finger://bob@"+addr)
	want := "Login: alice\nverbose: true\nNo Plan.\n" +
		"\n" +
		"Login    Name\nalice    Alice Liddell\n" +
		"\n" +
		"Login: bob\nverbose: true\nNo Plan.\n"
	if r.code != 0 || r.stdout != want || r.stderr != "" {
		t.Errorf("finger: exit %d\nstdout %q\nwant   %q\nstderr %q", r.code, r.stdout, want, r.stderr)
	}
	mu.Lock()
	got := strings.Join(lines, "|")
	mu.Unlock()
	if want := "/W alice|/W |/W bob"; got != want {
		t.Errorf("server received %q, want %q", got, want)
	}
}

func TestLocalTargets(t *testing.T) {
	s := newRawServer(t, sendAndClose("remote\r\n"))
	r := testEnv(t, nil).exec("-mp", "alice", "bob", "x@"+s.addr, "carol")
	want := "local \"alice bob\" m=true p=true\n\nremote\n\nlocal \"carol\" m=true p=true\n"
	if r.code != 0 || r.stdout != want {
		t.Errorf("exit %d, stdout %q, want %q; stderr %q", r.code, r.stdout, want, r.stderr)
	}
	r = testEnv(t, nil).exec()
	if want := "local \"\" m=false p=false\n"; r.stdout != want {
		t.Errorf("finger: stdout %q, want %q", r.stdout, want)
	}
	r = testEnv(t, nil).exec("-l")
	if want := "local \"/W \" m=false p=false\n"; r.stdout != want {
		t.Errorf("finger -l: stdout %q, want %q", r.stdout, want)
	}
	r = testEnv(t, nil).exec("-ls")
	if want := "local \"\" m=false p=false\n"; r.stdout != want {
		t.Errorf("finger -ls: stdout %q, want %q", r.stdout, want)
	}
}

// hostile is a reply with every kind of byte a terminal must not see raw.
const hostile = "plain\r\n" +
	"csi \x1b[2J\x1b[31mred\x1b[0m\r\n" +
	"osc52 \x1b]52;c;cm0gLXJmIH4K\x07\r\n" +
	"c1 raw \x9b31m utf8 \xc2\x9b31m\r\n" +
	"bidi \xe2\x80\xaeevil\xe2\x80\xac\r\n" +
	"nul \x00 del \x7f bell \x07\r\n" +
	"bad \xff\xfe \xe4\xb8\r\n" +
	"cjk \xe4\xb8\xad\xe6\x96\x87\r\n" +
	"cr\roverwrite\r\n" +
	"tab\tend"

func TestHostileReply(t *testing.T) {
	s := newRawServer(t, sendAndClose(hostile))
	tests := []struct {
		name string
		args []string
		vars map[string]string
		want string
	}{
		{"strict", nil, nil, "plain\n" +
			"csi ^[[2J^[[31mred^[[0m\n" +
			"osc52 ^[]52;c;cm0gLXJmIH4K^G\n" +
			"c1 raw \\x9b31m utf8 \\xc2\\x9b31m\n" +
			"bidi \\xe2\\x80\\xaeevil\\xe2\\x80\\xac\n" +
			"nul ^@ del ^? bell ^G\n" +
			"bad \\xff\\xfe \\xe4\\xb8\n" +
			"cjk \\xe4\\xb8\\xad\\xe6\\x96\\x87\n" +
			"cr\noverwrite\n" +
			"tab\tend\n"},
		{"utf8", []string{"-u"}, nil, "plain\n" +
			"csi ^[[2J^[[31mred^[[0m\n" +
			"osc52 ^[]52;c;cm0gLXJmIH4K^G\n" +
			"c1 raw \\x9b31m utf8 \\u009b31m\n" +
			"bidi \\u202eevil\\u202c\n" +
			"nul ^@ del ^? bell ^G\n" +
			"bad \\xff\\xfe \\xe4\\xb8\n" +
			"cjk 中文\n" +
			"cr\noverwrite\n" +
			"tab\tend\n"},
		{"high", []string{"-8"}, nil, "plain\n" +
			"csi ^[[2J^[[31mred^[[0m\n" +
			"osc52 ^[]52;c;cm0gLXJmIH4K^G\n" +
			"c1 raw \x9b31m utf8 \xc2\x9b31m\n" +
			"bidi \xe2\x80\xaeevil\xe2\x80\xac\n" +
			"nul ^@ del \x7f bell ^G\n" +
			"bad \xff\xfe \xe4\xb8\n" +
			"cjk 中文\n" +
			"cr\noverwrite\n" +
			"tab\tend\n"},
		{"control", []string{"-c"}, nil, "plain\n" +
			"csi \x1b[2J\x1b[31mred\x1b[0m\n" +
			"osc52 \x1b]52;c;cm0gLXJmIH4K\x07\n" +
			"c1 raw \\x9b31m utf8 \\xc2\\x9b31m\n" +
			"bidi \\xe2\\x80\\xaeevil\\xe2\\x80\\xac\n" +
			"nul \x00 del ^? bell \x07\n" +
			"bad \\xff\\xfe \\xe4\\xb8\n" +
			"cjk \\xe4\\xb8\\xad\\xe6\\x96\\x87\n" +
			"cr\noverwrite\n" +
			"tab\tend\n"},
		{"raw", []string{"-c8"}, nil, strings.NewReplacer("\r\n", "\n", "\r", "\n").Replace(hostile) + "\n"},
	}
	for _, tt := range tests {
		// The same mode chosen by switch, by FINGER_FILTER and by the
		// configuration file gives the same output.
		ways := []struct {
			how  string
			args []string
			vars map[string]string
			conf string
		}{
			{"switch", tt.args, nil, ""},
			{"-filter", []string{"-filter", tt.name}, nil, ""},
			{"FINGER_FILTER", nil, map[string]string{"FINGER_FILTER": tt.name}, ""},
			{"finger.conf", nil, nil, "# site default\nfilter = \"" + tt.name + "\"\n"},
		}
		for _, w := range ways {
			e := testEnv(t, w.vars)
			if w.conf != "" {
				if err := os.WriteFile(e.configPath, []byte(w.conf), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			r := e.exec(append(w.args, "x@"+s.addr)...)
			if r.code != 0 || r.stdout != tt.want || r.stderr != "" {
				t.Errorf("%s by %s: exit %d, stderr %q\nstdout %q\nwant   %q", tt.name, w.how, r.code, r.stderr, r.stdout, tt.want)
			}
		}
	}
}

func TestFilterPrecedence(t *testing.T) {
	s := newRawServer(t, sendAndClose("\x1b[31m中\n"))
	e := testEnv(t, map[string]string{"FINGER_FILTER": "utf8"})
	os.WriteFile(e.configPath, []byte("filter = raw\n"), 0o644)
	if r := e.exec("x@" + s.addr); r.stdout != "^[[31m中\n" {
		t.Errorf("FINGER_FILTER=utf8 over the file: stdout %q", r.stdout)
	}
	if r := e.exec("-filter", "strict", "x@"+s.addr); r.stdout != "^[[31m\\xe4\\xb8\\xad\n" {
		t.Errorf("-filter strict over FINGER_FILTER: stdout %q", r.stdout)
	}
	e = testEnv(t, map[string]string{"FINGER_FILTER": "nonsense"})
	r := e.exec("x@" + s.addr)
	if r.stdout != "^[[31m\\xe4\\xb8\\xad\n" || !strings.Contains(r.stderr, "FINGER_FILTER") || r.code != 0 {
		t.Errorf("bad FINGER_FILTER: exit %d stdout %q stderr %q; want strict and a warning", r.code, r.stdout, r.stderr)
	}
	e = testEnv(t, nil)
	os.WriteFile(e.configPath, []byte("filter = utf8\nbogus = 1\n"), 0o644)
	r = e.exec("x@" + s.addr)
	if r.stdout != "^[[31m\\xe4\\xb8\\xad\n" || !strings.Contains(r.stderr, "finger.conf:2") {
		t.Errorf("bad finger.conf: stdout %q stderr %q; want strict and a warning naming line 2", r.stdout, r.stderr)
	}
}

func TestLineEnds(t *testing.T) {
	tests := []struct{ reply, want string }{
		{"", ""},
		{"a", "a\n"},
		{"a\r\n", "a\n"},
		{"a\n", "a\n"},
		{"a\r", "a\n"},
		{"a\r\r\nb", "a\nb\n"}, // the filter's rule: CR CR LF is one line end
		{"a\r\rb", "a\nb\n"},
		{"a\r", "a\n"},
		{"a\n\r\n", "a\n\n"},
		{"\r\n", "\n"},
	}
	for _, mode := range []string{"strict", "control", "raw", "utf8"} {
		for _, tt := range tests {
			s := newRawServer(t, sendAndClose(tt.reply))
			r := testEnv(t, nil).exec("-filter", mode, "x@"+s.addr)
			if r.stdout != tt.want || r.code != 0 {
				t.Errorf("%s: reply %q: stdout %q, want %q (exit %d, %s)", mode, tt.reply, r.stdout, tt.want, r.code, r.stderr)
			}
		}
	}
}

// TestLineWriterSplit feeds a reply one byte at a time: a CR at the end of
// one write and its LF at the start of the next are one line end.
func TestLineWriterSplit(t *testing.T) {
	in := "a\r\nb\rc\r\r\nd\r\re"
	var out bytes.Buffer
	lw := &lineWriter{w: &out}
	for i := 0; i < len(in); i++ {
		lw.Write([]byte{in[i]})
	}
	lw.finish()
	if want := "a\nb\nc\nd\ne\n"; out.String() != want {
		t.Errorf("byte-wise %q: %q, want %q", in, out.String(), want)
	}
}

// countingWriter counts bytes and keeps the last 64, without allocating.
type countingWriter struct {
	n    int64
	last [64]byte
}

func (w *countingWriter) Write(p []byte) (int, error) {
	w.n += int64(len(p))
	if len(p) >= len(w.last) {
		copy(w.last[:], p[len(p)-len(w.last):])
	} else {
		copy(w.last[:], w.last[len(p):])
		copy(w.last[len(w.last)-len(p):], p)
	}
	return len(p), nil
}

func (w *countingWriter) tail() []byte {
	return w.last[len(w.last)-int(min(w.n, int64(len(w.last)))):]
}

// bigReply streams n bytes of "0123456789abcde\n" lines, with an ESC now
// and then, and closes.
func bigReply(n int64) func(net.Conn, <-chan struct{}) {
	return func(c net.Conn, _ <-chan struct{}) {
		chunk := bytes.Repeat([]byte("0123456789abcd\x1b\n"), 4096)
		for n > 0 {
			b := chunk
			if int64(len(b)) > n {
				b = b[:n]
			}
			if _, err := c.Write(b); err != nil {
				return
			}
			n -= int64(len(b))
		}
	}
}

const hundredMB = 100 << 20

func TestHugeReplyCapped(t *testing.T) {
	s := newRawServer(t, bigReply(hundredMB))
	var out countingWriter
	var errb bytes.Buffer
	err := testEnv(t, nil).run(context.Background(), []string{"x@" + s.addr}, &out, &errb)
	if code := exitStatus(err); code != exitTruncated {
		t.Errorf("exit %d, want %d; stderr %q", code, exitTruncated, errb.String())
	}
	if want := fmt.Sprintf("finger: reply truncated at %d bytes\n", defaultMaxBytes); errb.String() != want {
		t.Errorf("stderr %q, want %q", errb.String(), want)
	}
	// Each ESC (1 byte in 16) is shown as two bytes, "^[".
	if want := int64(defaultMaxBytes) + defaultMaxBytes/16; out.n != want {
		t.Errorf("wrote %d bytes, want %d", out.n, want)
	}
	if !bytes.HasSuffix(out.tail(), []byte("abcd^[\n")) {
		t.Errorf("output ends %q", out.tail())
	}
}

// TestHugeReplyStreams reads a whole 100 MB reply with a cap above it, and
// checks that memory use does not grow with the reply.
func TestHugeReplyStreams(t *testing.T) {
	if testing.Short() {
		t.Skip("100 MB transfer")
	}
	s := newRawServer(t, bigReply(hundredMB))
	var out countingWriter
	var errb bytes.Buffer
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	err := testEnv(t, nil).run(context.Background(), []string{"-max-bytes", "200M", "-c", "x@" + s.addr}, &out, &errb)
	runtime.ReadMemStats(&after)
	if err != nil {
		t.Fatalf("run: %v; stderr %q", err, errb.String())
	}
	if out.n != hundredMB {
		t.Errorf("wrote %d bytes, want %d", out.n, hundredMB)
	}
	// The whole exchange, server goroutines included, allocates far less
	// than the reply: it is streamed, not gathered.
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 16<<20 {
		t.Errorf("allocated %d bytes for a %d-byte reply", alloc, hundredMB)
	}
}

func TestReplyCapExact(t *testing.T) {
	for _, tt := range []struct {
		size int
		code int
	}{{1023, 0}, {1024, 0}, {1025, exitTruncated}} {
		s := newRawServer(t, sendAndClose(strings.Repeat("x", tt.size)))
		r := testEnv(t, nil).exec("-max-bytes", "1K", "x@"+s.addr)
		if r.code != tt.code {
			t.Errorf("%d-byte reply, cap 1024: exit %d, want %d; stderr %q", tt.size, r.code, tt.code, r.stderr)
		}
		shown := min(tt.size, 1024)
		if want := strings.Repeat("x", shown) + "\n"; r.stdout != want {
			t.Errorf("%d-byte reply, cap 1024: %d bytes shown, want %d", tt.size, len(r.stdout), len(want))
		}
	}
}

func TestTimeouts(t *testing.T) {
	// Three dots at once, then one every 20ms: only the total timeout
	// ends the reply.
	trickle := func(c net.Conn, _ <-chan struct{}) {
		io.WriteString(c, "...")
		for {
			if _, err := io.WriteString(c, "."); err != nil {
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	tests := []struct {
		name  string
		reply func(net.Conn, <-chan struct{})
		args  []string
		out   string
		msg   string
		limit time.Duration // against a hang only
	}{
		{"silent", hold(""), []string{"-idle-timeout", "200ms"}, "", "idle timeout", 10 * time.Second},
		{"never ends", hold("hello\r\n"), []string{"-idle-timeout", "200ms"}, "hello\n", "idle timeout", 10 * time.Second},
		{"trickle", trickle, []string{"-idle-timeout", "10s", "-T", "1s"}, "", "total timeout", 10 * time.Second},
	}
	for _, tt := range tests {
		s := newRawServer(t, tt.reply)
		start := time.Now()
		r := testEnv(t, nil).exec(append(tt.args, "x@"+s.addr)...)
		if d := time.Since(start); d > tt.limit {
			t.Errorf("%s: took %v", tt.name, d)
		}
		if r.code != exitTimeout || !strings.Contains(r.stderr, tt.msg) {
			t.Errorf("%s: exit %d, stderr %q; want %d and %q", tt.name, r.code, r.stderr, exitTimeout, tt.msg)
		}
		if tt.out != "" && r.stdout != tt.out {
			t.Errorf("%s: stdout %q, want %q", tt.name, r.stdout, tt.out)
		}
		if tt.name == "trickle" && (!strings.HasPrefix(r.stdout, "...") || !strings.HasSuffix(r.stdout, ".\n")) {
			t.Errorf("%s: stdout %q, want dots and a final newline", tt.name, r.stdout)
		}
	}
}

func TestConnectTimeout(t *testing.T) {
	e := testEnv(t, nil)
	e.dial = func(ctx context.Context, network, addr string) (net.Conn, error) {
		<-ctx.Done()
		return nil, &net.OpError{Op: "dial", Net: network, Err: ctx.Err()}
	}
	start := time.Now()
	r := e.exec("-connect-timeout", "100ms", "x@192.0.2.1")
	if d := time.Since(start); d > 10*time.Second { // against a hang only
		t.Errorf("took %v", d)
	}
	if r.code != exitTimeout || !strings.Contains(r.stderr, "connect timed out") {
		t.Errorf("exit %d, stderr %q", r.code, r.stderr)
	}
}

func TestRefused(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	r := testEnv(t, nil).exec("x@" + addr)
	if want := "finger: " + addr + ": connection refused\n"; r.code != exitRefused || r.stderr != want {
		t.Errorf("exit %d, stderr %q; want %d, %q", r.code, r.stderr, exitRefused, want)
	}
}

func TestUnknownHost(t *testing.T) {
	e := testEnv(t, nil)
	var dialed []string
	e.dial = func(ctx context.Context, network, addr string) (net.Conn, error) {
		dialed = append(dialed, addr)
		host, _, _ := net.SplitHostPort(addr)
		return nil, &net.OpError{Op: "dial", Net: network, Err: &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}}
	}
	r := e.exec("x@nosuch.invalid")
	if want := "finger: unknown host: nosuch.invalid\n"; r.code != exitUnknownHost || r.stderr != want {
		t.Errorf("exit %d, stderr %q; want %d, %q", r.code, r.stderr, exitUnknownHost, want)
	}
	if len(dialed) != 1 || dialed[0] != "nosuch.invalid:79" {
		t.Errorf("dialed %q", dialed)
	}
}

// TestFirstFailureWins asks several targets: all are asked, the status
// is the first failure's.
func TestFirstFailureWins(t *testing.T) {
	ok := newRawServer(t, sendAndClose("fine\n"))
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	closed := l.Addr().String()
	l.Close()
	big := newRawServer(t, sendAndClose(strings.Repeat("y", 2000)))
	r := testEnv(t, nil).exec("-max-bytes", "1000", "a@"+ok.addr, "b@"+closed, "c@"+big.addr, "d@"+ok.addr)
	if r.code != exitRefused {
		t.Errorf("exit %d, want %d", r.code, exitRefused)
	}
	want := "fine\n\n\n" + strings.Repeat("y", 1000) + "\n\nfine\n"
	if r.stdout != want {
		t.Errorf("stdout %q, want %q", r.stdout, want)
	}
	if !strings.Contains(r.stderr, "refused") || !strings.Contains(r.stderr, "truncated at 1000 bytes") {
		t.Errorf("stderr %q", r.stderr)
	}
}

func TestUsageExit(t *testing.T) {
	r := testEnv(t, nil).exec("-x", "alice")
	if r.code != exitUsage || r.stdout != "" || !strings.HasPrefix(r.stderr, "finger: unknown option -x\nusage: finger") {
		t.Errorf("exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	r = testEnv(t, nil).exec("-h")
	if r.code != 0 || !strings.HasPrefix(r.stdout, "usage: finger") || r.stderr != "" {
		t.Errorf("-h: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
}

func TestInterrupted(t *testing.T) {
	s := newRawServer(t, hold(""))
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel)
	var out, errb bytes.Buffer
	err := testEnv(t, nil).run(ctx, []string{"x@" + s.addr, "y@" + s.addr}, &out, &errb)
	if code := exitStatus(err); code != exitInterrupted {
		t.Errorf("exit %d, want %d; stderr %q", code, exitInterrupted, errb.String())
	}
	if n := len(s.requests()); n != 1 {
		t.Errorf("%d requests after the interrupt, want 1", n)
	}
}

func TestReadConfig(t *testing.T) {
	conf := `# openfinger client defaults
filter = "utf8"   # international site
connect_timeout = 2s
idle-timeout = '10s'
timeout = 45
max_bytes = 1M
`
	s, err := readConfig(strings.NewReader(conf), "finger.conf")
	if err != nil {
		t.Fatal(err)
	}
	want := settings{filter: finger.Filter{UTF8: true}, filterSet: true, connectTimeout: 2 * time.Second,
		idleTimeout: 10 * time.Second, totalTimeout: 45 * time.Second, maxBytes: 1 << 20}
	if s != want {
		t.Errorf("readConfig = %+v, want %+v", s, want)
	}
	for _, bad := range []string{"filter", "filter = rainbow", "colour = red", "timeout = -1s", "max_bytes = 0"} {
		if _, err := readConfig(strings.NewReader(bad), "f"); err == nil || !strings.HasPrefix(err.Error(), "f:1:") {
			t.Errorf("readConfig(%q) error %v, want one naming f:1", bad, err)
		}
	}
}

func TestConfigLimits(t *testing.T) {
	s := newRawServer(t, sendAndClose(strings.Repeat("z", 3000)))
	e := testEnv(t, nil)
	os.WriteFile(e.configPath, []byte("max_bytes = 2000\n"), 0o644)
	if r := e.exec("x@" + s.addr); r.code != exitTruncated || len(r.stdout) != 2001 {
		t.Errorf("max_bytes from the file: exit %d, %d bytes", r.code, len(r.stdout))
	}
	if r := e.exec("-max-bytes", "5000", "x@"+s.addr); r.code != 0 || len(r.stdout) != 3001 {
		t.Errorf("-max-bytes over the file: exit %d, %d bytes", r.code, len(r.stdout))
	}
}
