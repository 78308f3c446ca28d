package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/openfinger/finger/internal/fingertest"
	"github.com/openfinger/finger/internal/store/postgres/pgtest"
)

// binary is the fingerd built once for all tests.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "fingerd-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Chmod(dir, 0o755)
	binary = filepath.Join(dir, "fingerd")
	build := exec.Command("go", "build", "-o", binary, ".")
	build.Stdout, build.Stderr = os.Stdout, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building fingerd:", err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	// pgtest.Main runs the tests and stops the private PostgreSQL that
	// some of them start.
	code := pgtest.Main(m)
	os.RemoveAll(dir)
	os.Exit(code)
}

// fixture is a directory readable by the unprivileged user the daemon
// drops to, holding a passwd file and a configuration.
type fixture struct {
	dir    string
	config string
}

const testPasswd = "root:x:0:0:root:/root:/bin/bash\n" +
	"fgtest_alice:x:1001:1001:Alice Liddell,Room 101,555-0101,:/nonexistent/fgtest_alice:/bin/sh\n" +
	"fgtest_bob:x:1002:1002:Bob Dobbs:/nonexistent/fgtest_bob:/bin/sh\n"

func newFixture(t *testing.T, extra string) *fixture {
	t.Helper()
	dir, err := os.MkdirTemp("", "fingerd-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	os.Chmod(dir, 0o755)
	f := &fixture{dir: dir, config: filepath.Join(dir, "fingerd.toml")}
	if err := os.WriteFile(filepath.Join(dir, "passwd"), []byte(testPasswd), 0o644); err != nil {
		t.Fatal(err)
	}
	f.write(t, extra)
	return f
}

// write replaces the configuration: the common test settings plus extra
// (TOML that may open further tables; [server] keys go first).
func (f *fixture) write(t *testing.T, extra string) {
	t.Helper()
	server, rest, _ := strings.Cut(extra, "\n[")
	if rest != "" {
		rest = "[" + rest
	}
	doc := fmt.Sprintf(`[server]
listen = ["127.0.0.1:0"]
user = "nobody"
%s

[sources]
passwd = %q
sessions = "none"
lastlog = ""
lastlog2 = ""
wtmpdb = []
mail_spool = ""
login_defs = %q

%s
`, server, filepath.Join(f.dir, "passwd"), filepath.Join(f.dir, "login.defs"), rest)
	tmp := f.config + ".tmp"
	if err := os.WriteFile(tmp, []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, f.config); err != nil {
		t.Fatal(err)
	}
}

// logBuffer collects a process's standard error, safe for concurrent use.
type logBuffer struct{ fingertest.Buffer }

// waitFor waits until the log matches re, and returns the submatches.
func (b *logBuffer) waitFor(t *testing.T, re string, timeout time.Duration) []string {
	t.Helper()
	rx := regexp.MustCompile(re)
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if m := rx.FindStringSubmatch(b.String()); m != nil {
			return m
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("log does not match %q within %v:\n%s", re, timeout, b.String())
	return nil
}

// count returns the number of lines of the log matching re.
func (b *logBuffer) count(re string) int {
	return len(regexp.MustCompile(re).FindAllStringIndex(b.String(), -1))
}

// daemonProc is a running fingerd.
type daemonProc struct {
	cmd   *exec.Cmd
	log   *logBuffer
	addrs []string // listening addresses, from the start line
	mAddr string   // metrics address
	done  chan error
}

// startCmd starts cmd with its standard error collected and stops it at
// the end of the test.
func startCmd(t *testing.T, cmd *exec.Cmd) *daemonProc {
	t.Helper()
	p := &daemonProc{cmd: cmd, log: &logBuffer{}, done: make(chan error, 1)}
	if cmd.Stderr == nil {
		cmd.Stderr = p.log
	}
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.done <- cmd.Wait() }()
	t.Cleanup(func() {
		select {
		case <-p.done:
			return
		default:
		}
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(15 * time.Second):
			cmd.Process.Kill()
			<-p.done
		}
		if t.Failed() {
			t.Logf("fingerd log:\n%s", p.log.String())
		}
	})
	return p
}

// startDaemon runs fingerd standalone with args and waits until it serves.
func startDaemon(t *testing.T, args ...string) *daemonProc {
	t.Helper()
	p := startCmd(t, exec.Command(binary, args...))
	m := p.waitStarted(t)
	p.addrs = strings.Split(m[1], ",")
	p.mAddr = m[2]
	return p
}

func (p *daemonProc) waitStarted(t *testing.T) []string {
	t.Helper()
	rx := regexp.MustCompile(`msg="fingerd: started".* listen=(\S*) metrics=(\S*)`)
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		if m := rx.FindStringSubmatch(p.log.String()); m != nil {
			return m
		}
		select {
		case err := <-p.done:
			p.done <- err
			t.Fatalf("fingerd exited early: %v\n%s", err, p.log.String())
		case <-time.After(20 * time.Millisecond):
		}
	}
	t.Fatalf("fingerd did not start:\n%s", p.log.String())
	return nil
}

// wait waits for the process to exit and returns its exit status.
func (p *daemonProc) wait(t *testing.T, timeout time.Duration) int {
	t.Helper()
	select {
	case err := <-p.done:
		p.done <- err
		return exitCode(err)
	case <-time.After(timeout):
		t.Fatalf("fingerd did not exit within %v\n%s", timeout, p.log.String())
	}
	return -1
}

func exitCode(err error) int {
	if err == nil {
		return 0
	}
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode()
	}
	return -1
}

// query sends line to addr from the local address from ("" for any) and
// returns the whole reply.
func query(t *testing.T, addr, from, line string) string {
	t.Helper()
	r, err := tryQuery(addr, from, line)
	if err != nil {
		t.Fatalf("query %q to %s: %v", line, addr, err)
	}
	return r
}

func tryQuery(addr, from, line string) (string, error) {
	d := net.Dialer{Timeout: 5 * time.Second}
	if from != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(from)}
	}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		return "", err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, line); err != nil {
		return "", err
	}
	b, err := io.ReadAll(c)
	return string(b), err
}

// run runs fingerd to completion with a bound on its time.
func runFingerd(t *testing.T, stdin io.Reader, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, args...)
	var o, e bytes.Buffer
	cmd.Stdin, cmd.Stdout, cmd.Stderr = stdin, &o, &e
	err := cmd.Run()
	return o.String(), e.String(), exitCode(err)
}

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// dialRetry connects to addr, retrying while the listener comes up.
func dialRetry(t *testing.T, addr string) net.Conn {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			return c
		}
		if time.Now().After(deadline) {
			t.Fatalf("dial %s: %v", addr, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func readAll(t *testing.T, c net.Conn) string {
	t.Helper()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	b, err := io.ReadAll(bufio.NewReader(c))
	if err != nil {
		t.Fatalf("reading reply: %v", err)
	}
	return string(b)
}

// metricsBody returns the daemon's /metrics page.
func metricsBody(t *testing.T, addr string) string {
	t.Helper()
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// waitMetric waits until the daemon's /metrics has a line equal to want
// and returns the page. A connection is counted, logged and observed
// after it is closed, so a client that has read its reply may ask before
// the daemon is done with the record.
func waitMetric(t *testing.T, addr, want string) string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		body := metricsBody(t, addr)
		for _, line := range strings.Split(body, "\n") {
			if line == want {
				return body
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("/metrics has no line %q within 10s:\n%s", want, body)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// dialAccepted connects to the daemon and waits until the daemon has
// accepted the connection (its metrics count it open), so that a signal
// sent next finds it past the listener's queue.
func dialAccepted(t *testing.T, p *daemonProc) net.Conn {
	t.Helper()
	c := dialRetry(t, p.addrs[0])
	waitMetric(t, p.mAddr, "fingerd_connections_open 1")
	return c
}
