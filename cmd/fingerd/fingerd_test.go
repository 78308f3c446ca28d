package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	proxyproto "github.com/pires/go-proxyproto"

	"github.com/openfinger/finger/internal/config"
	"github.com/openfinger/finger/internal/fingertest"
	"github.com/openfinger/finger/internal/privilege"
	"github.com/openfinger/finger/internal/testenv"
)

const aliceLine = "fgtest_alice\r\n"

func wantAlice(t *testing.T, reply string) {
	t.Helper()
	if !strings.Contains(reply, "Login: fgtest_alice") || !strings.Contains(reply, "Alice Liddell") {
		t.Fatalf("reply = %q, want the long form of fgtest_alice", reply)
	}
	if !strings.HasSuffix(reply, "\r\n") {
		t.Fatalf("reply %q does not end in CRLF", reply)
	}
}

func TestStandaloneIPv4AndIPv6(t *testing.T) {
	testenv.IPv6Loopback(t)
	f := newFixture(t, "")
	p := startDaemon(t, "-config", f.config, "-listen", "127.0.0.1:0", "-listen", "[::1]:0")
	if len(p.addrs) != 2 {
		t.Fatalf("listening on %v, want two addresses", p.addrs)
	}
	for _, a := range p.addrs {
		wantAlice(t, query(t, a, "", aliceLine))
	}
	// Real-name matching, several names, {C}.
	if r := query(t, p.addrs[0], "", "liddell\r\n"); !strings.Contains(r, "Login: fgtest_alice") {
		t.Errorf("real-name query = %q", r)
	}
	if r := query(t, p.addrs[1], "", "\r\n"); !strings.Contains(r, "No one logged on") {
		t.Errorf("{C} = %q, want nobody logged on", r)
	}
	if r := query(t, p.addrs[0], "", "nosuchuser\r\n"); strings.Contains(r, "Login:") {
		t.Errorf("unknown user = %q", r)
	}
	// One log line per query, with the query escaped.
	p.log.waitFor(t, `msg="finger query".*query=fgtest_alice kind=user outcome=ok`, 10*time.Second)
}

func TestCommaSeparatedListen(t *testing.T) {
	f := newFixture(t, "")
	p := startDaemon(t, "-config", f.config, "-listen", "127.0.0.1:0,127.0.0.1:0")
	if len(p.addrs) != 2 || p.addrs[0] == p.addrs[1] {
		t.Fatalf("listening on %v, want two addresses", p.addrs)
	}
	for _, a := range p.addrs {
		wantAlice(t, query(t, a, "", aliceLine))
	}
}

func TestUsageErrors(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"-no-such-flag"}, "flag provided but not defined"},
		{[]string{"-listen", "127.0.0.1"}, "-listen"},
		{[]string{"-listen", "127.0.0.1:99999"}, "-listen"},
		{[]string{"-listen", ""}, "-listen"},
		{[]string{"-metrics", "nope"}, "-metrics"},
		{[]string{"-log-format", "xml"}, "-log-format"},
		{[]string{"-log-level", "loud"}, "-log-level"},
		{[]string{"-inetd", "-listen", "127.0.0.1:79"}, "cannot be used together"},
		{[]string{"extra-argument"}, "unexpected argument"},
		{[]string{"-inetd=maybe"}, "invalid boolean"},
	}
	for _, tt := range tests {
		_, stderr, code := runFingerd(t, nil, tt.args...)
		if code != 2 {
			t.Errorf("fingerd %q: exit %d, want 2 (stderr %q)", tt.args, code, stderr)
		}
		if !strings.Contains(stderr, tt.want) {
			t.Errorf("fingerd %q: stderr %q, want it to mention %q", tt.args, stderr, tt.want)
		}
	}
}

func TestHelp(t *testing.T) {
	for _, arg := range []string{"-h", "-help", "--help"} {
		out, stderr, code := runFingerd(t, nil, arg)
		if code != 0 || !strings.HasPrefix(out, "usage: fingerd") || !strings.Contains(out, "-check-config") || stderr != "" {
			t.Errorf("fingerd %s: exit %d, stdout %q, stderr %q; want the usage on stdout and exit 0", arg, code, out, stderr)
		}
	}
}

func TestVersion(t *testing.T) {
	out, _, code := runFingerd(t, nil, "-version")
	if code != 0 || !strings.HasPrefix(out, "fingerd ") {
		t.Fatalf("fingerd -version = %q, exit %d", out, code)
	}
}

func TestCheckConfig(t *testing.T) {
	f := newFixture(t, "rate = 2.5\n[policy]\nhide_shell = true\n")
	out, stderr, code := runFingerd(t, nil, "-config", f.config, "-check-config", "-no-list", "-listen", "127.0.0.1:7979")
	if code != 0 {
		t.Fatalf("-check-config: exit %d, stderr %q", code, stderr)
	}
	c, err := config.Parse([]byte(out), "output")
	if err != nil {
		t.Fatalf("-check-config output does not parse: %v\n%s", err, out)
	}
	if err := c.Validate(); err != nil {
		t.Fatalf("-check-config output does not validate: %v", err)
	}
	if c.Server.Rate != 2.5 || !c.Policy.HideShell || c.Policy.List || c.Server.Listen[0] != "127.0.0.1:7979" {
		t.Errorf("effective config = %+v %+v, want the file's values and the flags' overrides", c.Server, c.Policy)
	}
	for _, key := range []string{"max_conns_per_ip", "match_real_names", "[forward]", "[metrics]", "proxy_from"} {
		if !strings.Contains(out, key) {
			t.Errorf("-check-config output lacks %q", key)
		}
	}

	// A bad file: the error names the key and the line; exit status 1.
	f.write(t, "rate = 1.0\nbogus_key = 3\n")
	_, stderr, code = runFingerd(t, nil, "-config", f.config, "-check-config")
	if code != 1 || !strings.Contains(stderr, "fingerd.toml:5") || !strings.Contains(stderr, `"server.bogus_key"`) {
		t.Fatalf("bad config: exit %d, stderr %q; want 1 and the key with its line", code, stderr)
	}
	f.write(t, "read_timeout = \"0s\"\n")
	_, stderr, code = runFingerd(t, nil, "-config", f.config, "-check-config")
	if code != 1 || !strings.Contains(stderr, "server.read_timeout") {
		t.Fatalf("zero timeout: exit %d, stderr %q", code, stderr)
	}
	_, stderr, code = runFingerd(t, nil, "-config", f.config+".missing", "-check-config")
	if code != 1 || !strings.Contains(stderr, "no such file") {
		t.Fatalf("missing config: exit %d, stderr %q", code, stderr)
	}
}

func TestRefusesRootUser(t *testing.T) {
	f := newFixture(t, "")
	_, stderr, code := runFingerd(t, nil, "-config", f.config, "-user", "root")
	if code != 1 || !strings.Contains(stderr, "root") {
		t.Fatalf("-user root: exit %d, stderr %q; want a refusal", code, stderr)
	}
}

func TestPolicyFlags(t *testing.T) {
	f := newFixture(t, "")
	p := startDaemon(t, "-config", f.config, "-no-list", "-no-real-names")
	if r := query(t, p.addrs[0], "", "\r\n"); r != "Finger online user list denied\r\n" {
		t.Errorf("{C} with -no-list = %q", r)
	}
	if r := query(t, p.addrs[0], "", "liddell\r\n"); strings.Contains(r, "fgtest_alice") {
		t.Errorf("real name with -no-real-names = %q", r)
	}
	if r := query(t, p.addrs[0], "", "fgtest_alice@example.org\r\n"); r != "Finger forwarding service denied\r\n" {
		t.Errorf("forwarding = %q", r)
	}
}

func TestGracefulStop(t *testing.T) {
	f := newFixture(t, "")
	p := startDaemon(t, "-config", f.config, "-metrics", "127.0.0.1:0")
	// A connection in progress is finished, not dropped.
	c := dialAccepted(t, p)
	defer c.Close()
	p.cmd.Process.Signal(syscall.SIGTERM)
	p.log.waitFor(t, `fingerd: stopping`, 10*time.Second)
	io.WriteString(c, aliceLine)
	wantAlice(t, readAll(t, c))
	if code := p.wait(t, 15*time.Second); code != 0 {
		t.Fatalf("exit status after SIGTERM = %d, want 0", code)
	}
	p.log.waitFor(t, `fingerd: stopped`, 10*time.Second)
}

func TestInetdSocketpair(t *testing.T) {
	f := newFixture(t, "")
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	ours := os.NewFile(uintptr(fds[0]), "client")
	theirs := os.NewFile(uintptr(fds[1]), "server")
	defer ours.Close()
	cmd := exec.Command(binary, "-inetd", "-config", f.config)
	cmd.Stdin, cmd.Stdout = theirs, theirs
	p := startCmd(t, cmd)
	theirs.Close()
	c, err := net.FileConn(ours)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, aliceLine)
	wantAlice(t, readAll(t, c))
	if code := p.wait(t, 10*time.Second); code != 0 {
		t.Fatalf("inetd exit %d\n%s", code, p.log.String())
	}
}

func TestInetdPipes(t *testing.T) {
	f := newFixture(t, "")
	out, stderr, code := runFingerd(t, strings.NewReader("/W fgtest_bob\r\n"), "-inetd", "-config", f.config)
	if code != 0 || !strings.Contains(out, "Login: fgtest_bob") {
		t.Fatalf("inetd over pipes: exit %d, out %q, stderr %q", code, out, stderr)
	}
	// A query that never ends is cut off by the read timeout.
	f.write(t, "read_timeout = \"300ms\"\n")
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer pr.Close()
	defer pw.Close()
	io.WriteString(pw, "fgtest_")
	start := time.Now()
	out, _, code = runFingerd(t, pr, "-inetd", "-config", f.config)
	if time.Since(start) > 10*time.Second || !strings.Contains(out, "timeout") {
		t.Fatalf("stalled inetd query: out %q, exit %d after %v", out, code, time.Since(start))
	}
}

func TestInetdSocat(t *testing.T) {
	socat := testenv.Program(t, "socat", "socat")
	f := newFixture(t, "")
	// socat listens on a port the kernel chooses and reports it (-d -d).
	cmd := exec.Command(socat, "-d", "-d", "TCP-LISTEN:0,bind=127.0.0.1,reuseaddr,fork",
		"EXEC:"+binary+" -inetd -config "+f.config)
	p := startCmd(t, cmd)
	addr := p.log.waitFor(t, `listening on AF=2 (127\.0\.0\.1:\d+)`, 10*time.Second)[1]
	c := dialRetry(t, addr)
	defer c.Close()
	io.WriteString(c, aliceLine)
	wantAlice(t, readAll(t, c))
}

func TestSocketActivationSystemd(t *testing.T) {
	ssa := testenv.Program(t, "systemd-socket-activate", "systemd")
	f := newFixture(t, "")
	t.Run("Accept=no", func(t *testing.T) {
		p, addr := startSSA(t, ssa, nil, binary, "-config", f.config)
		for range 3 {
			c := dialRetry(t, addr)
			io.WriteString(c, aliceLine)
			wantAlice(t, readAll(t, c))
			c.Close()
		}
		p.log.waitFor(t, `mode=socket-activation `, 10*time.Second)
	})
	t.Run("Accept=yes", func(t *testing.T) {
		p, addr := startSSA(t, ssa, []string{"--accept"}, binary, "-config", f.config)
		for range 2 {
			c := dialRetry(t, addr)
			io.WriteString(c, aliceLine)
			wantAlice(t, readAll(t, c))
			c.Close()
		}
		p.log.waitFor(t, `outcome=ok`, 10*time.Second)
	})
}

// startSSA runs command (fingerd, or a wrapper that runs it) under
// systemd-socket-activate with flags on a free port, trying another port
// if the chosen one was taken meanwhile.
func startSSA(t *testing.T, ssa string, flags []string, command ...string) (*daemonProc, string) {
	t.Helper()
	for try := 0; ; try++ {
		addr := freePort(t)
		args := append(append(append([]string{}, flags...), "-l", addr), command...)
		p := startCmd(t, exec.Command(ssa, args...))
		deadline := time.Now().Add(10 * time.Second)
		for time.Now().Before(deadline) {
			if strings.Contains(p.log.String(), "Listening on") {
				return p, addr
			}
			select {
			case err := <-p.done:
				p.done <- err
				if try < 3 {
					t.Logf("systemd-socket-activate on %s exited (%v); trying another port", addr, err)
					deadline = time.Time{}
					continue
				}
				t.Fatalf("systemd-socket-activate exited: %v\n%s", err, p.log.String())
			case <-time.After(20 * time.Millisecond):
			}
		}
		if try >= 3 {
			t.Fatalf("systemd-socket-activate did not listen:\n%s", p.log.String())
		}
	}
}

// launch runs fingerd the way systemd does: the socket as fd 3,
// LISTEN_FDS=1 and LISTEN_PID set to fingerd's own PID (the shell execs
// it, keeping its PID).
func launch(t *testing.T, f *os.File, args ...string) *daemonProc {
	t.Helper()
	cmd := exec.Command("/bin/sh", "-c", `LISTEN_PID=$$ LISTEN_FDS=1 LISTEN_FDNAMES=finger exec "$0" "$@"`)
	cmd.Args = append(cmd.Args, append([]string{binary}, args...)...)
	cmd.ExtraFiles = []*os.File{f}
	return startCmd(t, cmd)
}

// launchListening launches fingerd as systemd does with Accept=no, on a
// listener on 127.0.0.1:0, and returns the listener's address.
func launchListening(t *testing.T, args ...string) (*daemonProc, string) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	lf, err := l.(*net.TCPListener).File()
	if err != nil {
		t.Fatal(err)
	}
	defer lf.Close()
	return launch(t, lf, args...), l.Addr().String()
}

// launchConn launches fingerd as systemd does with Accept=yes, on the
// server end of a loopback TCP connection, and returns the client end.
func launchConn(t *testing.T, args ...string) (*daemonProc, net.Conn) {
	t.Helper()
	client, srv := fingertest.TCPPair(t)
	sf, err := srv.File()
	srv.Close()
	if err != nil {
		t.Fatal(err)
	}
	defer sf.Close()
	return launch(t, sf, args...), client
}

func TestSocketActivationLauncher(t *testing.T) {
	f := newFixture(t, "")
	t.Run("Accept=no", func(t *testing.T) {
		p, addr := launchListening(t, "-config", f.config)
		p.waitStarted(t)
		wantAlice(t, query(t, addr, "", aliceLine))
		p.log.waitFor(t, `mode=socket-activation `, 10*time.Second)
	})
	t.Run("Accept=yes", func(t *testing.T) {
		p, client := launchConn(t, "-config", f.config)
		io.WriteString(client, aliceLine)
		wantAlice(t, readAll(t, client))
		if code := p.wait(t, 10*time.Second); code != 0 {
			t.Fatalf("Accept=yes exit %d", code)
		}
	})
}

func TestReload(t *testing.T) {
	f := newFixture(t, "")
	p := startDaemon(t, "-config", f.config, "-metrics", "127.0.0.1:0")
	addr := p.addrs[0]
	if r := query(t, addr, "", "\r\n"); strings.Contains(r, "denied") {
		t.Fatalf("{C} before reload = %q", r)
	}
	waitMetric(t, p.mAddr, "fingerd_connections_open 0")
	// A connection accepted before the reload is answered by the
	// configuration it arrived under, not dropped.
	early := dialAccepted(t, p)
	defer early.Close()

	f.write(t, "[policy]\nlist = false\n")
	p.cmd.Process.Signal(syscall.SIGHUP)
	p.log.waitFor(t, `fingerd: reloaded`, 10*time.Second)
	waitMetric(t, p.mAddr, `fingerd_config_reloads_total{result="ok"} 1`)
	if r := query(t, addr, "", "\r\n"); r != "Finger online user list denied\r\n" {
		t.Fatalf("{C} after reload = %q, want the refusal", r)
	}
	io.WriteString(early, "\r\n")
	if r := readAll(t, early); !strings.Contains(r, "No one logged on") {
		t.Fatalf("connection from before the reload got %q", r)
	}

	// A bad configuration is rejected, counted as a failure, and the
	// running one kept.
	f.write(t, "[policy]\nlist = true\nno_such_key = 1\n")
	p.cmd.Process.Signal(syscall.SIGHUP)
	p.log.waitFor(t, `reload failed; keeping the running configuration.*no_such_key`, 10*time.Second)
	body := waitMetric(t, p.mAddr, `fingerd_config_reloads_total{result="error"} 1`)
	if !strings.Contains(body, "\n"+`fingerd_config_reloads_total{result="ok"} 1`+"\n") {
		t.Errorf("after a failed reload /metrics lacks fingerd_config_reloads_total{result=\"ok\"} 1:\n%s", body)
	}
	if r := query(t, addr, "", "\r\n"); r != "Finger online user list denied\r\n" {
		t.Fatalf("{C} after a bad reload = %q, want the old refusal", r)
	}

	// A third reload, after the failed one, applies the file again (list
	// back on) and reads user data again.
	os.WriteFile(f.dir+"/passwd.new", []byte(testPasswd+"fgtest_carol:x:1003:1003:Carol Added:/nonexistent:/bin/sh\n"), 0o644)
	os.Rename(f.dir+"/passwd.new", f.dir+"/passwd")
	f.write(t, "")
	p.cmd.Process.Signal(syscall.SIGHUP)
	waitMetric(t, p.mAddr, `fingerd_config_reloads_total{result="ok"} 2`)
	// The log reaches the test through a pipe: wait for the line, then
	// check that it is the second and last.
	p.log.waitFor(t, `(?s)fingerd: reloaded.*fingerd: reloaded`, 10*time.Second)
	if n := p.log.count(`fingerd: reloaded`); n != 2 {
		t.Errorf("%d reloads logged, want 2", n)
	}
	if r := query(t, addr, "", "fgtest_carol\r\n"); !strings.Contains(r, "Carol Added") {
		t.Errorf("new passwd entry not seen after the third reload: %q", r)
	}
	if r := query(t, addr, "", "\r\n"); !strings.Contains(r, "No one logged on") {
		t.Errorf("{C} after the third reload = %q, want the list again", r)
	}
	select {
	case err := <-p.done:
		p.done <- err
		t.Fatalf("daemon exited during reloads: %v", err)
	default:
	}
}

// threadStatus checks every thread of a running fingerd in /proc.
func checkThreads(t *testing.T, pid int, uid, gid int, capEff uint64) {
	t.Helper()
	threads, err := privilege.Threads(pid)
	if err != nil {
		t.Fatal(err)
	}
	if len(threads) < 2 {
		t.Fatalf("fingerd has %d threads; want several to check", len(threads))
	}
	for _, th := range threads {
		for i := range 4 {
			if th.UID[i] != uid || th.GID[i] != gid {
				t.Errorf("thread %s: Uid %v Gid %v, want %d and %d throughout", th.TID, th.UID, th.GID, uid, gid)
				break
			}
		}
		if th.CapEff != capEff || th.CapPrm != capEff {
			t.Errorf("thread %s: CapEff %016x CapPrm %016x, want %016x", th.TID, th.CapEff, th.CapPrm, capEff)
		}
		if th.CapBnd&^capEff != 0 {
			t.Errorf("thread %s: CapBnd %016x, want at most %016x", th.TID, th.CapBnd, capEff)
		}
		if !th.NoNew {
			t.Errorf("thread %s: no_new_privs not set", th.TID)
		}
	}
}

func TestPrivilegeDrop(t *testing.T) {
	testenv.Root(t, "to start fingerd as root so that it drops its privileges")
	id, err := privilege.Lookup("nobody", "")
	if err != nil {
		t.Fatal(err)
	}
	f := newFixture(t, "")
	t.Run("all", func(t *testing.T) {
		f.write(t, "keep_dac_read_search = false\n")
		p := startDaemon(t, "-config", f.config, "-user", "nobody")
		wantAlice(t, query(t, p.addrs[0], "", aliceLine))
		checkThreads(t, p.cmd.Process.Pid, id.UID, id.GID, 0)
		if kids := children(p.cmd.Process.Pid); len(kids) != 0 {
			t.Errorf("fingerd without keep_dac_read_search has child processes %v, want none", kids)
		}
	})
	t.Run("keep_dac_read_search", func(t *testing.T) {
		f.write(t, "keep_dac_read_search = true\n")
		p := startDaemon(t, "-config", f.config)
		wantAlice(t, query(t, p.addrs[0], "", aliceLine))
		// The serving process keeps nothing; the home reader keeps
		// CAP_DAC_READ_SEARCH alone.
		checkThreads(t, p.cmd.Process.Pid, id.UID, id.GID, 0)
		checkThreads(t, homeReaderPID(t, p), id.UID, id.GID, 1<<2)
	})
}

// TestFloodDoesNotStarve floods from 127.0.0.2, with fast queries and with
// connections held open, while 127.0.0.3 keeps being answered.
func TestFloodDoesNotStarve(t *testing.T) {
	f := newFixture(t, "rate = 5.0\nburst = 10\nmax_conns_per_ip = 4\nmax_conns = 64\nread_timeout = \"3s\"\n")
	p := startDaemon(t, "-config", f.config)
	addr := p.addrs[0]
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Second)
	defer cancel()

	var refused, answered atomic.Int64
	var wg sync.WaitGroup
	// Slow connections that never send a query.
	var held []net.Conn
	var heldMu sync.Mutex
	defer func() {
		heldMu.Lock()
		for _, c := range held {
			c.Close()
		}
		heldMu.Unlock()
	}()
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 100 && ctx.Err() == nil; i++ {
				d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.2")}, Timeout: time.Second}
				c, err := d.DialContext(ctx, "tcp", addr)
				if err != nil {
					continue
				}
				if i%10 == 0 {
					heldMu.Lock()
					held = append(held, c)
					heldMu.Unlock()
					continue
				}
				c.SetDeadline(time.Now().Add(3 * time.Second))
				io.WriteString(c, aliceLine)
				b, _ := io.ReadAll(c)
				c.Close()
				switch {
				case strings.Contains(string(b), "rate limit exceeded"), strings.Contains(string(b), "too many connections"):
					refused.Add(1)
				case strings.Contains(string(b), "Login:"):
					answered.Add(1)
				}
			}
		}()
	}
	// Once the flood is being refused, the good client asks.
	for refused.Load() == 0 && ctx.Err() == nil {
		time.Sleep(10 * time.Millisecond)
	}
	for i := range 5 {
		r, err := tryQuery(addr, "127.0.0.3", aliceLine)
		if err != nil || !strings.Contains(r, "Login: fgtest_alice") {
			t.Fatalf("good client query %d during the flood: %q, %v", i, r, err)
		}
	}
	cancel()
	wg.Wait()
	if refused.Load() == 0 {
		t.Fatalf("the flood was never refused (%d answered)", answered.Load())
	}
	// The refusals are logged: rate-limit refusals and the connection
	// caps' refusals each in their summary.
	p.log.waitFor(t, `connections refused by the admission policy|under connection pressure`, 10*time.Second)
}

func TestRateLimit(t *testing.T) {
	testenv.IPv6Loopback(t)
	f := newFixture(t, "rate = 0.1\nburst = 2\n")
	p := startDaemon(t, "-config", f.config, "-metrics", "127.0.0.1:0", "-listen", "127.0.0.1:0", "-listen", "[::1]:0", "-log-level", "debug")
	// An IPv4 client and an IPv6 one, each over its burst.
	for _, c := range []struct{ addr, from string }{{p.addrs[0], "127.0.0.7"}, {p.addrs[1], "::1"}} {
		var limited int
		for range 5 {
			r := query(t, c.addr, c.from, aliceLine)
			if r == "finger: rate limit exceeded\r\n" {
				limited++
			} else {
				wantAlice(t, r)
			}
		}
		if limited != 3 {
			t.Errorf("from %s: %d of 5 quick queries limited, want 3 (burst 2)", c.from, limited)
		}
	}
	// Another address has its own bucket.
	wantAlice(t, query(t, p.addrs[0], "127.0.0.8", aliceLine))
	// Each refusal is a debug record; the first is counted in a warning at
	// once, the others within the minute are not (a flood from one address
	// over its rate would otherwise write a warning per connection).
	p.log.waitFor(t, `level=DEBUG .*remote=127.0.0.7:\d+ .*outcome=refused .*err="finger: rate limit exceeded"`, 10*time.Second)
	p.log.waitFor(t, `level=DEBUG .*remote="?\[::1\]:\d+"? .*outcome=refused .*err="finger: rate limit exceeded"`, 10*time.Second)
	p.log.waitFor(t, `level=WARN msg="finger: connections refused by the admission policy, such as the query rate limit \(each logged at debug level\)" refused=1`, 10*time.Second)
	if n := p.log.count(`connections refused by the admission policy`); n != 1 {
		t.Errorf("%d warnings counting the 6 refusals within a minute, want 1:\n%s", n, p.log.String())
	}
	// The 6 rate-limited connections are counted, each once it is closed.
	waitMetric(t, p.mAddr, `fingerd_limits_hit_total{limit="rate"} 6`)
}

func TestProxyProtocol(t *testing.T) {
	f := newFixture(t, "proxy_from = [\"127.0.0.4\", \"127.0.1.0/24\"]\nproxy_header_timeout = \"500ms\"\n")
	p := startDaemon(t, "-config", f.config)
	addr := p.addrs[0]

	// v1 from an allowed load balancer: the logged client is the real one.
	r := query(t, addr, "127.0.0.4", "PROXY TCP4 192.0.2.7 127.0.0.1 40001 79\r\n"+aliceLine)
	wantAlice(t, r)
	p.log.waitFor(t, `remote=192.0.2.7:40001 .*kind=user outcome=ok`, 10*time.Second)

	// v2 from an allowed range.
	h := proxyproto.HeaderProxyFromAddrs(2,
		&net.TCPAddr{IP: net.ParseIP("198.51.100.9"), Port: 40002},
		&net.TCPAddr{IP: net.ParseIP("127.0.0.1"), Port: 79})
	hb, err := h.Format()
	if err != nil {
		t.Fatal(err)
	}
	wantAlice(t, query(t, addr, "127.0.1.9", string(hb)+aliceLine))
	p.log.waitFor(t, `remote=198.51.100.9:40002 .*outcome=ok`, 10*time.Second)

	// Connections from anyone else are not read for a header: the same
	// header is their query line, answered as any query, and the log
	// shows the real peer.
	r, _ = tryQuery(addr, "127.0.0.5", "PROXY TCP4 192.0.2.8 127.0.0.1 40003 79\r\n"+aliceLine)
	if strings.Contains(r, "Login:") {
		t.Fatalf("PROXY header from a non-allowed address was honoured: %q", r)
	}
	p.log.waitFor(t, `remote=127.0.0.5:\d+ query="PROXY TCP4 192.0.2.8 [^"]*" `, 10*time.Second)
	if strings.Contains(p.log.String(), "remote=192.0.2.8") {
		t.Fatalf("the rejected header's address was taken for the client's")
	}
	// Plain clients from elsewhere are still served.
	wantAlice(t, query(t, addr, "127.0.0.6", aliceLine))
}

func TestMetrics(t *testing.T) {
	f := newFixture(t, "")
	p := startDaemon(t, "-config", f.config, "-metrics", "127.0.0.1:0")
	if p.mAddr == "" || strings.HasSuffix(p.mAddr, ":0") {
		t.Fatalf("metrics address %q not logged", p.mAddr)
	}
	hc := &http.Client{Timeout: 5 * time.Second}
	get := func(path string) (int, string) {
		resp, err := hc.Get("http://" + p.mAddr + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	for range 3 {
		if code, body := get("/healthz"); code != 200 || strings.TrimSpace(body) != "ok" {
			t.Fatalf("/healthz = %d %q", code, body)
		}
	}
	wantAlice(t, query(t, p.addrs[0], "", aliceLine))
	// The query is counted once the daemon has closed the connection and
	// logged it, which may be just after the client saw the close.
	body := waitMetric(t, p.mAddr, `fingerd_query_duration_seconds_count{kind="user"} 1`)
	for _, want := range []string{
		`fingerd_queries_total{kind="user",outcome="ok"} 1`,
		`fingerd_query_duration_seconds_count{kind="user"} 1`,
		`fingerd_connections_open 0`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	// /healthz is not a finger query: exactly one query was counted.
	var total int
	for _, line := range strings.Split(body, "\n") {
		if strings.HasPrefix(line, "fingerd_queries_total{") {
			var n int
			fmt.Sscanf(line[strings.LastIndexByte(line, ' ')+1:], "%d", &n)
			total += n
		}
	}
	if total != 1 {
		t.Errorf("fingerd_queries_total sums to %d, want 1", total)
	}
	p.log.waitFor(t, `msg="finger query"`, 10*time.Second)
	if n := p.log.count(`msg="finger query"`); n != 1 {
		t.Errorf("%d finger query log lines, want 1", n)
	}
}

func TestVirtualUsers(t *testing.T) {
	f := newFixture(t, "")
	textFile := f.dir + "/motd.txt"
	os.WriteFile(textFile, []byte("Today: \x1b[31mred\x1b[0m tea.\n"), 0o644)
	f.write(t, fmt.Sprintf("[programs]\nenabled = true\n[[virtual]]\nlogin = \"weather\"\ntext = \"Sunny.\\n\"\n"+
		"[[virtual]]\nlogin = \"motd\"\nfile = %q\n[[virtual]]\nlogin = \"echo\"\nprogram = [\"/bin/echo\", \"fixed\"]\n", textFile))
	p := startDaemon(t, "-config", f.config)
	if r := query(t, p.addrs[0], "", "weather\r\n"); r != "Sunny.\r\n" {
		t.Errorf("text virtual user = %q", r)
	}
	if r := query(t, p.addrs[0], "", "motd\r\n"); !strings.Contains(r, "Today:") || strings.Contains(r, "\x1b") {
		t.Errorf("file virtual user = %q, want the filtered file", r)
	}
	if r := query(t, p.addrs[0], "", "echo\r\n"); r != "fixed\r\n" {
		t.Errorf("program virtual user = %q", r)
	}
	wantAlice(t, query(t, p.addrs[0], "", aliceLine))
}

// TestListedVirtualUsers: virtual users with listed = true appear in {C};
// the others do not.
func TestListedVirtualUsers(t *testing.T) {
	f := newFixture(t, "[[virtual]]\nlogin = \"weather\"\nname = \"Weather Service\"\ntext = \"Sunny.\\n\"\nlisted = true\n"+
		"[[virtual]]\nlogin = \"secret\"\nname = \"Not Listed\"\ntext = \"x\"\n")
	p := startDaemon(t, "-config", f.config)
	want := "Login     Name              Tty      Idle  Login Time   Office     Office Phone\r\n" +
		"weather   Weather Service                              \r\n"
	if r := query(t, p.addrs[0], "", "\r\n"); r != want {
		t.Errorf("{C} = %q, want %q", r, want)
	}
	if r := query(t, p.addrs[0], "", "/W\r\n"); r != "No one logged on.\r\n" {
		t.Errorf("{C} /W = %q, want nobody logged on", r)
	}
	if r := query(t, p.addrs[0], "", "weather\r\n"); r != "Sunny.\r\n" {
		t.Errorf("weather = %q", r)
	}
}

func TestJSONLog(t *testing.T) {
	f := newFixture(t, "")
	p := startDaemon2(t, "-config", f.config, "-log-format", "json")
	// A query trying to forge a log line stays inside its field.
	query(t, p.addrs[0], "", "x\rlevel=ERROR msg=forged\r\n")
	m := p.log.waitFor(t, `(?m)^(\{"time".*"msg":"finger query".*)$`, 10*time.Second)
	var rec map[string]any
	if err := json.Unmarshal([]byte(m[1]), &rec); err != nil {
		t.Fatalf("log line %q is not JSON: %v", m[1], err)
	}
	if rec["remote"] == nil || rec["outcome"] == nil {
		t.Fatalf("log record %v lacks remote or outcome", rec)
	}
	// JSON unquotes strings: the query holds the escape, not the byte.
	if q, want := rec["query"], `x\rlevel=ERROR msg=forged`; q != want {
		t.Errorf("logged query = %q, want %q", q, want)
	}
	for _, line := range strings.Split(p.log.String(), "\n") {
		if strings.HasPrefix(line, "level=") || strings.HasPrefix(line, "msg=forged") {
			t.Fatalf("forged log line: %q", line)
		}
	}
}

func TestUnknownUserToServeAs(t *testing.T) {
	testenv.Root(t, "since fingerd looks up the user to serve as only when started as root")
	f := newFixture(t, "")
	_, stderr, code := runFingerd(t, nil, "-config", f.config, "-user", "fgtest_no_such_user")
	if code != 1 || !strings.Contains(stderr, "fgtest_no_such_user") {
		t.Fatalf("unknown -user: exit %d, stderr %q", code, stderr)
	}
}

// startDaemon2 is startDaemon for a JSON log.
func startDaemon2(t *testing.T, args ...string) *daemonProc {
	t.Helper()
	p := startCmd(t, exec.Command(binary, args...))
	m := p.log.waitFor(t, `"msg":"fingerd: started".*"listen":"([^"]*)"`, 15*time.Second)
	p.addrs = strings.Split(m[1], ",")
	return p
}

// TestForwardAllowPorts forwards through a second fingerd on another port
// of this machine: loopback needs forward.allow, and a port other than 79
// needs forward.allow_ports.
func TestForwardAllowPorts(t *testing.T) {
	far := startDaemon(t, "-config", newFixture(t, "").config)
	_, port, _ := net.SplitHostPort(far.addrs[0])
	f := newFixture(t, "[forward]\nenabled = true\nallow = [\"127.0.0.1\"]\n")
	near := startDaemon(t, "-config", f.config)
	q := "fgtest_alice@127.0.0.1:" + port + "\r\n"
	if r := query(t, near.addrs[0], "", q); strings.Contains(r, "Login:") || !strings.Contains(r, "finger: forwarding:") {
		t.Fatalf("forwarding to port %s without allow_ports = %q, want a refusal", port, r)
	}
	f.write(t, "[forward]\nenabled = true\nallow = [\"127.0.0.1\"]\nallow_ports = ["+port+"]\n")
	near.cmd.Process.Signal(syscall.SIGHUP)
	near.log.waitFor(t, `fingerd: reloaded`, 10*time.Second)
	wantAlice(t, query(t, near.addrs[0], "", q))
	far.log.waitFor(t, `query=fgtest_alice kind=user outcome=ok`, 10*time.Second)
}

// TestProxyHeaderBounded: a load balancer's PROXY header is read within
// the read timeout, like the query, and within a size bound: a v2 header
// announcing more than 4096 bytes is refused at once, and one that does
// not come whole is cut off at read_timeout, not proxy_header_timeout.
func TestProxyHeaderBounded(t *testing.T) {
	f := newFixture(t, "proxy_from = [\"127.0.0.4\"]\nproxy_header_timeout = \"30s\"\nread_timeout = \"2s\"\n")
	// A connection that times out before its query is a Debug record.
	p := startDaemon(t, "-config", f.config, "-log-level", "debug")
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.4")}}
	for _, tt := range []struct {
		name   string
		length uint16 // the addresses' and TLVs' length the header announces
		send   int    // how many of those bytes are sent
		log    string
	}{
		{"too long", 4097, 4097, `outcome=read-error .*invalid length`},
		{"never whole", 4000, 100, `outcome=timeout`},
	} {
		c, err := d.Dial("tcp", p.addrs[0])
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		// The v2 signature, PROXY over TCP/IPv4, the length; then part
		// or all of the body, the connection left open.
		hdr := append([]byte("\r\n\r\n\x00\r\nQUIT\n"), 0x21, 0x11, byte(tt.length>>8), byte(tt.length))
		hdr = append(hdr, bytes.Repeat([]byte{0}, tt.send)...)
		if _, err := c.Write(hdr); err != nil {
			t.Fatal(err)
		}
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		b, err := io.ReadAll(c)
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			t.Fatalf("%s: connection still open 10s after a PROXY header (read %q), want closed by the 2s read timeout", tt.name, b)
		}
		p.log.waitFor(t, `remote=127.0.0.4:\d+ .*`+tt.log, 10*time.Second)
	}
}

// TestEvictionResets: at max_conns, a connection that has waited without
// its query is reset to make room (no line, no FIN exchange), a load
// balancer's connection still waiting for its PROXY header as well as a
// direct client's; the new clients are served. (Which of two waiting
// connections goes first, the oldest, is the server's own test.)
func TestEvictionResets(t *testing.T) {
	f := newFixture(t, "max_conns = 2\nproxy_from = [\"127.0.0.4\"]\n")
	p := startDaemon(t, "-config", f.config, "-metrics", "127.0.0.1:0")
	dial := func(from string) net.Conn {
		t.Helper()
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}}
		c, err := d.Dial("tcp", p.addrs[0])
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	type ending struct {
		name string
		b    []byte
		err  error
	}
	ended := make(chan ending, 2)
	wait := func(name string, c net.Conn) {
		c.SetReadDeadline(time.Now().Add(time.Minute)) // against a hang only
		go func() {
			b, err := io.ReadAll(c)
			ended <- ending{name, b, err}
		}()
	}
	wait("direct client's silent connection", dial("127.0.0.5"))
	waitMetric(t, p.mAddr, "fingerd_connections_open 1")
	wait("balancer's connection without its header", dial("127.0.0.4"))
	waitMetric(t, p.mAddr, "fingerd_connections_open 2")
	seen := map[string]bool{}
	for i := 0; i < 2; i++ {
		if i > 0 {
			// Both places taken again.
			dial("127.0.0.7")
			waitMetric(t, p.mAddr, "fingerd_connections_open 2")
		}
		c := dial("127.0.0.6")
		io.WriteString(c, "alice\r\n")
		c.SetReadDeadline(time.Now().Add(time.Minute))
		if reply, err := io.ReadAll(c); err != nil || !strings.Contains(string(reply), "Name: Alice Liddell") {
			t.Errorf("client %d at the cap: reply %q, %v", i, reply, err)
		}
		e := <-ended
		seen[e.name] = true
		if len(e.b) > 0 || !errors.Is(e.err, syscall.ECONNRESET) {
			t.Errorf("%s, evicted: read %q, %v; want a reset with nothing before", e.name, e.b, e.err)
		}
		waitMetric(t, p.mAddr, "fingerd_connections_open 1")
	}
	if len(seen) != 2 {
		t.Errorf("evicted: %v; want both waiting connections, one each time", seen)
	}
}

// TestNoKeepalive: fingerd's own listeners send no TCP keepalive probes:
// every connection is bounded by its timeouts well before a probe would
// leave, and turning keepalive on costs system calls on every accepted
// connection, which a flood multiplies. The daemon's end of an accepted
// connection runs no keepalive timer (timer 02 in /proc/net/tcp).
func TestNoKeepalive(t *testing.T) {
	f := newFixture(t, "")
	p := startDaemon(t, "-config", f.config, "-metrics", "127.0.0.1:0")
	c := dialAccepted(t, p)
	defer c.Close()
	_, sport, _ := net.SplitHostPort(p.addrs[0])
	_, cport, _ := net.SplitHostPort(c.LocalAddr().String())
	hexPort := func(p string) string {
		n, _ := strconv.Atoi(p)
		return fmt.Sprintf(":%04X", n)
	}
	// A read of /proc/net/tcp while other tests open and close thousands of
	// connections may skip rows: read again until the row is there.
	deadline := time.Now().Add(30 * time.Second) // against a hang only
	for found := false; !found; time.Sleep(10 * time.Millisecond) {
		for _, name := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
			b, err := os.ReadFile(name)
			if err != nil {
				continue
			}
			for _, line := range strings.Split(string(b), "\n") {
				fields := strings.Fields(line)
				if len(fields) < 6 || !strings.HasSuffix(fields[1], hexPort(sport)) || !strings.HasSuffix(fields[2], hexPort(cport)) {
					continue
				}
				found = true
				if timer, _, _ := strings.Cut(fields[5], ":"); timer == "02" {
					t.Errorf("fingerd's end of a connection runs a keepalive timer: %s", line)
				}
			}
		}
		if !found && time.Now().After(deadline) {
			t.Fatalf("fingerd's end of the connection from port %s is not in /proc/net/tcp", cport)
		}
	}
}
