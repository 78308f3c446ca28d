// Package adversarial runs the classic attacks on finger daemons against a
// real fingerd process: over-long lines, slow clients, odd line ends, Telnet
// and shell junk, enumeration probes, hostile user files, name floods and
// connection floods. Each case asserts the exact outcome.
//
// The daemon serves fixture accounts from a passwd file of the test's own,
// with homes in a temporary directory. As root, the daemon drops to nobody
// and the fixture files belong to a test UID; otherwise it runs as the
// current user, who owns the files.
package adversarial

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/openfinger/finger/internal/fingertest"
)

var fingerdBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "adversarial-bin")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fingerdBin, err = fingertest.Build(dir, "github.com/openfinger/finger/cmd/fingerd")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	os.Chmod(dir, 0o755)
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

const readTimeout = 2 * time.Second

type daemon struct {
	addr string
}

// startDaemon starts fingerd with the fixture and the read timeout
// readTimeout.
func startDaemon(t *testing.T) *daemon {
	t.Helper()
	return startDaemonReadTimeout(t, readTimeout)
}

// startDaemonReadTimeout starts fingerd with the fixture users (login →
// GECOS, and what their home holds) and the given read timeout, on a port
// the kernel chooses, and returns once it reports where it listens.
func startDaemonReadTimeout(t *testing.T, readTimeout time.Duration) *daemon {
	t.Helper()
	root := os.Getuid() == 0
	uid, gid := os.Getuid(), os.Getgid()
	if root {
		uid, gid = 4242, 4242
	}
	base, err := os.MkdirTemp("", "adversarial-homes")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(base) })
	os.Chmod(base, 0o755)

	var passwd strings.Builder
	home := func(login, gecos string) string {
		h := filepath.Join(base, login)
		if err := os.Mkdir(h, 0o755); err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&passwd, "%s:x:%d:%d:%s:%s:/bin/sh\n", login, uid, gid, gecos, h)
		return h
	}
	file := func(path string, data []byte) {
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
		os.Chmod(path, 0o644)
	}
	alice := home("alice", "Alice Liddell,Room 101,5551234,")
	file(filepath.Join(alice, ".plan"), []byte("Alice plan line\n"))
	mallory := home("mallory", "Mallory Symlink,,,")
	os.Symlink("/etc/shadow", filepath.Join(mallory, ".plan"))
	os.Symlink("/etc/passwd", filepath.Join(mallory, ".project"))
	fifo := home("fifo", "Fifo Plan,,,")
	if err := syscall.Mkfifo(filepath.Join(fifo, ".plan"), 0o644); err != nil {
		t.Fatal(err)
	}
	dev := home("dev", "Device Plan,,,")
	if root {
		if err := syscall.Mknod(filepath.Join(dev, ".plan"), syscall.S_IFCHR|0o644, 1<<8|5); err != nil { // like /dev/zero
			t.Fatal(err)
		}
	} else {
		os.Symlink("/dev/zero", filepath.Join(dev, ".plan"))
	}
	huge := home("huge", "Huge Plan,,,")
	hp := filepath.Join(huge, ".plan")
	file(hp, nil)
	if err := os.Truncate(hp, 1<<30); err != nil { // 1 GB, sparse
		t.Fatal(err)
	}
	eve := home("eve", "Eve \x1b[31mHacker,,,")
	file(filepath.Join(eve, ".plan"), []byte("before\x1b[2J\x1b]52;c;aGk=\x07\x9b31m\u202eevil\x00end\n"))
	hidden := home("hidden", "Hidden Person,,,")
	file(filepath.Join(hidden, ".nofinger"), nil)
	file(filepath.Join(hidden, ".plan"), []byte("secret\n"))
	if root {
		filepath.Walk(base, func(p string, _ os.FileInfo, _ error) error {
			if p != base {
				os.Lchown(p, uid, gid)
			}
			return nil
		})
	}
	passwdPath := filepath.Join(base, "passwd")
	file(passwdPath, []byte(passwd.String()))

	user := ""
	if root {
		user = "user = \"nobody\"\n"
	}
	cfg := fmt.Sprintf(`[server]
listen = ["127.0.0.1:0"]
%sread_timeout = "%s"
max_conns_per_ip = 16
rate = 20.0
burst = 40
[policy]
min_uid = 1
max_file_bytes = 65536
[sources]
passwd = %q
sessions = "none"
lastlog = ""
lastlog2 = ""
wtmpdb = []
mail_spool = ""
`, user, readTimeout, passwdPath)
	cfgPath := filepath.Join(base, "fingerd.toml")
	file(cfgPath, []byte(cfg))

	p := fingertest.StartProcess(t, exec.Command(fingerdBin, "-config", cfgPath))
	// The port is the one fingerd reports in its start line.
	m := p.WaitFor(t, regexp.MustCompile(`msg="fingerd: started".* listen=(\S+)`), 15*time.Second)
	return &daemon{addr: m[1]}
}

// result is what a client saw: the reply and how the connection ended.
type result struct {
	reply []byte
	end   string // "eof", "reset", "timeout"
	took  time.Duration
}

// exchange sends the parts of a request (with pause between them) from the
// local address from, and reads until the server closes or limit passes.
func (d *daemon) exchange(t *testing.T, from string, parts []string, pause, limit time.Duration) result {
	t.Helper()
	dialer := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}, Timeout: 5 * time.Second}
	start := time.Now()
	c, err := dialer.Dial("tcp", d.addr)
	if err != nil {
		t.Fatalf("dial from %s: %v", from, err)
	}
	defer c.Close()
	c.SetDeadline(start.Add(limit))
	go func() {
		for i, p := range parts {
			if i > 0 {
				time.Sleep(pause)
			}
			if _, err := c.Write([]byte(p)); err != nil {
				return
			}
		}
	}()
	var buf bytes.Buffer
	_, err = io.Copy(&buf, c)
	r := result{reply: buf.Bytes(), end: "eof", took: time.Since(start)}
	var ne net.Error
	switch {
	case errors.Is(err, syscall.ECONNRESET):
		r.end = "reset"
	case errors.As(err, &ne) && ne.Timeout():
		r.end = "timeout"
	case err != nil:
		r.end = err.Error()
	}
	return r
}

func TestAttacks(t *testing.T) {
	d := startDaemon(t)
	noUser := func(name string) string { return "finger: " + name + ": no such user.\r\n" }
	tests := []struct {
		name  string
		parts []string
		pause time.Duration
		// exactly this reply, or (when empty) a reply containing every want and none of the notWant
		exact   string
		want    []string
		notWant []string
		maxTook time.Duration // against a hang (the connection timeout is 60s), at least 5s
	}{
		{name: "morris-536", parts: []string{strings.Repeat("A", 536) + "\r\n"}, exact: "finger: query too long\r\n"},
		{name: "line-1MB", parts: []string{strings.Repeat("A", 1<<20) + "\r\n"}, exact: "finger: query too long\r\n"},
		{name: "at-cap-511", parts: []string{strings.Repeat("A", 510) + "\n"}, exact: noUser(strings.Repeat("A", 510))},
		{name: "slowloris-idle", parts: nil, exact: "finger: input timeout\r\n", maxTook: readTimeout + 3*time.Second},
		{name: "slowloris-drip", parts: strings.Split("alice-dripping-slowly", ""), pause: 300 * time.Millisecond,
			exact: "finger: input timeout\r\n", maxTook: readTimeout + 3*time.Second},
		{name: "split-line", parts: []string{"ali", "ce\r", "\n"}, pause: 200 * time.Millisecond, want: []string{"Login: alice", "Alice plan line"}},
		{name: "bare-LF", parts: []string{"alice\n"}, want: []string{"Login: alice"}},
		{name: "CR-CR-LF", parts: []string{"alice\r\r\n"}, want: []string{"Login: alice"}},
		{name: "verbose-tab", parts: []string{"/W\talice\r\n"}, want: []string{"Login: alice"}},
		{name: "telnet-IAC", parts: []string{"\xff\xfb\x01\xff\xfd\x03alice\r\n"}, exact: "finger: invalid query\r\n"},
		{name: "NUL", parts: []string{"ali\x00ce\r\n"}, exact: "finger: invalid query\r\n"},
		{name: "NUL-first", parts: []string{"\x00alice\r\n"}, exact: "finger: invalid query\r\n"},
		{name: "ESC-in-query", parts: []string{"alice\x1b[2J\r\n"}, exact: "finger: invalid query\r\n"},
		{name: "pipe-cmd", parts: []string{"|cat /etc/passwd\r\n"}, want: []string{noUser("|cat"), noUser("/etc/passwd")}, notWant: []string{"root:"}},
		{name: "backticks", parts: []string{"`id`\r\n"}, exact: noUser("`id`")},
		{name: "dollar-paren", parts: []string{"$(id)\r\n"}, exact: noUser("$(id)")},
		{name: "format-n", parts: []string{"%n%n%n%s\r\n"}, exact: noUser("%n%n%n%s")},
		{name: "leading-dash", parts: []string{"-l\r\n"}, exact: noUser("-l")},
		{name: "dash-opts", parts: []string{"-s -p alice\r\n"}, want: []string{noUser("-s"), noUser("-p"), "Login: alice"}},
		{name: "probe-dot", parts: []string{".\r\n"}, exact: noUser(".")},
		{name: "probe-zero", parts: []string{"0\r\n"}, exact: noUser("0")},
		{name: "probe-star", parts: []string{"*\r\n"}, exact: noUser("*")},
		{name: "probe-search", parts: []string{"search.**\r\n"}, exact: noUser("search.**")},
		{name: "probe-many-names", parts: []string{"a b c d e f g h i j k\r\n"}, want: []string{"too many names", noUser("a")}, notWant: []string{noUser("k")}},
		{name: "forward-1000-hops-over-cap", parts: []string{"u" + strings.Repeat("@h1", 1000) + "\r\n"}, exact: "finger: query too long\r\n"},
		{name: "forward-100-hops", parts: []string{"u" + strings.Repeat("@h", 100) + "\r\n"}, exact: "Finger forwarding service denied\r\n"},
		{name: "forward-empty-host", parts: []string{"u@@h\r\n"}, exact: "finger: invalid query\r\n"},
		{name: "plan-symlink-shadow", parts: []string{"mallory\r\n"}, want: []string{"Login: mallory", "No Plan."}, notWant: []string{"root:", "Project:"}},
		{name: "plan-fifo", parts: []string{"fifo\r\n"}, want: []string{"Login: fifo", "No Plan."}, maxTook: 10 * time.Second},
		{name: "plan-device", parts: []string{"dev\r\n"}, want: []string{"Login: dev", "No Plan."}, maxTook: 10 * time.Second},
		{name: "plan-1GB", parts: []string{"huge\r\n"}, want: []string{"Login: huge", "Plan:"}, maxTook: 10 * time.Second},
		{name: "hostile-escapes", parts: []string{"eve\r\n"}, want: []string{"Login: eve", "before", "end"}, notWant: []string{"\x1b", "\x07", "\x00", "\x9b", "\u202e"}},
		{name: "hidden-user", parts: []string{"hidden\r\n"}, exact: noUser("hidden")},
		{name: "hidden-by-real-name", parts: []string{"Hidden\r\n"}, exact: noUser("Hidden")},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			from := fmt.Sprintf("127.0.2.%d", i+1) // one client address per case: no case trips another's limits
			r := d.exchange(t, from, tc.parts, tc.pause, 15*time.Second)
			if r.end != "eof" {
				t.Errorf("connection ended by %s after %v, want a clean close (EOF); reply %q", r.end, r.took, clip(r.reply))
			}
			if tc.maxTook > 0 && r.took > tc.maxTook {
				t.Errorf("took %v, want at most %v", r.took, tc.maxTook)
			}
			if !bytes.HasSuffix(r.reply, []byte("\r\n")) {
				t.Errorf("reply does not end with CRLF: %q", clip(r.reply))
			}
			if bytes.Contains(bytes.ReplaceAll(r.reply, []byte("\r\n"), nil), []byte("\r")) {
				t.Errorf("reply has a lone CR: %q", clip(r.reply))
			}
			if tc.exact != "" {
				if string(r.reply) != tc.exact {
					t.Errorf("reply = %q, want %q", clip(r.reply), tc.exact)
				}
				return
			}
			for _, w := range tc.want {
				if !bytes.Contains(r.reply, []byte(w)) {
					t.Errorf("reply lacks %q:\n%s", w, clip(r.reply))
				}
			}
			for _, w := range tc.notWant {
				if bytes.Contains(r.reply, []byte(w)) {
					t.Errorf("reply contains %q:\n%s", w, clip(r.reply))
				}
			}
		})
	}
}

// TestHugePlanIsCapped checks that a 1 GB .plan yields a bounded reply with
// a visible truncation notice.
func TestHugePlanIsCapped(t *testing.T) {
	d := startDaemon(t)
	r := d.exchange(t, "127.0.3.1", []string{"huge\r\n"}, 0, 15*time.Second)
	// The file is 1 GB of NUL bytes: the 64 KiB read are each shown as "^@".
	if len(r.reply) > 2*64<<10+4<<10 {
		t.Errorf("reply is %d bytes, want at most 132 KiB (64 KiB file cap, each NUL shown as ^@)", len(r.reply))
	}
	if !bytes.Contains(bytes.ToLower(r.reply), []byte("truncated")) {
		t.Errorf("reply has no truncation notice; tail: %q", r.reply[max(0, len(r.reply)-200):])
	}
}

// TestNameFlood sends 10,000 queries for unknown names from one address:
// every answer is either the unknown-user line or the rate-limit refusal,
// the limit is hit, and another address is still served at once.
func TestNameFlood(t *testing.T) {
	d := startDaemon(t)
	const n = 10000
	var answered, limited, other int
	for i := 0; i < n; i++ {
		name := fmt.Sprintf("nosuch%05d", i)
		r := d.exchange(t, "127.0.4.1", []string{name + "\r\n"}, 0, 5*time.Second)
		switch {
		case string(r.reply) == "finger: "+name+": no such user.\r\n":
			answered++
		case bytes.Contains(r.reply, []byte("rate")):
			limited++
		default:
			other++
			if other < 5 {
				t.Errorf("query %d: unexpected reply %q (%s)", i, clip(r.reply), r.end)
			}
		}
	}
	t.Logf("%d answered, %d refused by the rate limit, %d other", answered, limited, other)
	if limited == 0 {
		t.Errorf("no query of %d from one address was rate-limited", n)
	}
	if answered < 40 {
		t.Errorf("only %d queries answered; the burst should allow 40", answered)
	}
	r := d.exchange(t, "127.0.4.2", []string{"alice\r\n"}, 0, 5*time.Second)
	if !bytes.Contains(r.reply, []byte("Login: alice")) {
		t.Errorf("another address after the flood got %q", clip(r.reply))
	}
}

// TestConnectionFlood holds 200 connections open from one address: those
// over the per-address cap get the refusal line at once, and a client from
// another address is answered meanwhile.
func TestConnectionFlood(t *testing.T) {
	// A read timeout far longer than the test: a connection admitted
	// under the per-address cap stays open without an answer, so the
	// counts below do not depend on how fast the machine is.
	d := startDaemonReadTimeout(t, time.Minute)
	const n, perIP = 200, 16
	dialer := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.5.1")}}
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for i := 0; i < n; i++ {
		c, err := dialer.Dial("tcp", d.addr)
		if err != nil {
			t.Fatalf("dial %d: %v", i, err)
		}
		conns = append(conns, c)
	}
	// Each connection reports its first line, or "" when it is closed
	// by the test.
	lines := make(chan string, n)
	for _, c := range conns {
		go func(c net.Conn) {
			c.SetReadDeadline(time.Now().Add(2 * time.Minute)) // against a hang only
			line, _ := bufio.NewReader(c).ReadString('\n')
			lines <- line
		}(c)
	}
	refused := 0
	hang := time.After(30 * time.Second) // against a hang only
	for refused < n-perIP {
		select {
		case line := <-lines:
			if line != "finger: too many connections\r\n" {
				t.Fatalf("after %d refusals a flood connection got %q, want the refusal (16 are admitted and wait for their query)", refused, line)
			}
			refused++
		case <-hang:
			t.Fatalf("%d of %d flood connections refused within 30s, want %d", refused, n, n-perIP)
		}
	}
	r := d.exchange(t, "127.0.5.2", []string{"alice\r\n"}, 0, 10*time.Second)
	if !bytes.Contains(r.reply, []byte("Login: alice")) {
		t.Errorf("a client from another address during the flood got %q (%s)", clip(r.reply), r.end)
	}
	// The 16 admitted connections are still waiting for their query.
	select {
	case line := <-lines:
		t.Errorf("an admitted flood connection got %q; want it held open until its read timeout", line)
	default:
	}
}

func clip(b []byte) []byte {
	if len(b) > 600 {
		return append(append([]byte{}, b[:300]...), b[len(b)-300:]...)
	}
	return b
}
