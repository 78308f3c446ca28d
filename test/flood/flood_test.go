// Package flood runs a real fingerd under the many-address flood: thousands
// of connections that never send a query, from hundreds of IPv4 addresses
// or IPv6 /64s, held and reopened as the daemon closes them, while fast
// clients from other addresses query it. The fast clients must all be
// served, every reply checked, with no refusal. The daemon runs with its
// default configuration except the query rate limit, which is off: the
// fast clients come from few addresses and would otherwise be limited.
//
// The flood and the fast clients are test/load/fingerload, the
// repository's load generator, in processes of their own (each holds as
// many descriptors as connections).
package flood

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/openfinger/finger/internal/fingertest"
	"github.com/openfinger/finger/internal/testenv"
)

var binDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "flood-bin")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binDir = dir
	os.Chmod(dir, 0o755)
	for _, p := range []string{"cmd/fingerd", "test/load/fingerload"} {
		if _, err := fingertest.Build(dir, "github.com/openfinger/finger/"+p); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.RemoveAll(dir)
			os.Exit(1)
		}
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// fingerd is a running daemon.
type fingerd struct {
	*fingertest.Process
	addr string // the IPv4 listening address
}

const login = "floodtest"

// reply is what every reply to a query for login must match: the whole
// reply, from the login line to the end of the plan.
const reply = `(?s)^Login: ` + login + `\s.*\r\nPlan:\r\nflood plan\r\n$`

// startFingerd starts fingerd with the default configuration, the rate
// limit off, listening on listen, plus extra [server] lines, serving one
// account, login, whose reply matches reply. prefix runs it (ip netns
// exec ...).
func startFingerd(t *testing.T, listen []string, extra string, prefix ...string) *fingerd {
	t.Helper()
	base, err := os.MkdirTemp("", "flood-homes")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(base) })
	os.Chmod(base, 0o755)
	uid := os.Getuid()
	user := ""
	if uid == 0 {
		uid, user = 4243, "user = \"nobody\"\n"
	}
	home := filepath.Join(base, login)
	if err := os.Mkdir(home, 0o755); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(home, ".plan"), []byte("flood plan\n"), 0o644)
	os.Chown(home, uid, uid)
	os.Chown(filepath.Join(home, ".plan"), uid, uid)
	passwd := filepath.Join(base, "passwd")
	os.WriteFile(passwd, []byte(fmt.Sprintf("%s:x:%d:%d:Flood Test,,,:%s:/bin/sh\n", login, uid, uid, home)), 0o644)
	var ls []string
	for _, l := range listen {
		ls = append(ls, strconv.Quote(l))
	}
	cfg := fmt.Sprintf(`[server]
listen = [%s]
%srate = 0.0
%s
[policy]
min_uid = 1
[sources]
passwd = %q
sessions = "none"
lastlog = ""
mail_spool = ""
[log]
level = "info"
`, strings.Join(ls, ", "), user, extra, passwd)
	cfgPath := filepath.Join(base, "fingerd.toml")
	os.WriteFile(cfgPath, []byte(cfg), 0o644)

	argv := append(append([]string{}, prefix...), filepath.Join(binDir, "fingerd"), "-config", cfgPath)
	d := &fingerd{Process: fingertest.StartProcess(t, exec.Command(argv[0], argv[1:]...))}
	m := d.WaitFor(t, regexp.MustCompile(`msg="fingerd: started" .*listen=([^ ]+)`), 10*time.Second)
	d.addr = strings.Split(m[1], ",")[0]
	return d
}

// loadResult is what one fingerload run of fast clients reported.
type loadResult struct {
	ok, errors int
	rate       float64
	out        string
}

var (
	reRequests = regexp.MustCompile(`(?m)^requests: (\d+) ok, (\d+) errors`)
	reRate     = regexp.MustCompile(`(?m)^rate: (\d+) req/s`)
)

// fast runs 8 fast clients from the sources in from for dur, each reply
// checked whole against reply.
func fast(t *testing.T, addr, from string, dur time.Duration, prefix ...string) loadResult {
	t.Helper()
	argv := append(append([]string{}, prefix...), filepath.Join(binDir, "fingerload"), "-addr", addr, "-query", login,
		"-c", "8", "-d", dur.String(), "-from", from, "-expect", reply, "-timeout", "10s")
	out, err := exec.Command(argv[0], argv[1:]...).CombinedOutput()
	if err != nil {
		t.Fatalf("fingerload: %v\n%s", err, out)
	}
	var r loadResult
	r.out = string(out)
	m := reRequests.FindStringSubmatch(r.out)
	rm := reRate.FindStringSubmatch(r.out)
	if m == nil || rm == nil {
		t.Fatalf("fingerload output not understood:\n%s", out)
	}
	r.ok, _ = strconv.Atoi(m[1])
	r.errors, _ = strconv.Atoi(m[2])
	r.rate, _ = strconv.ParseFloat(rm[1], 64)
	return r
}

// holdFlood starts fingerload holding n idle connections from addrs
// addresses of prefix for dur, and waits until they are open.
func holdFlood(t *testing.T, addr string, n, addrs int, prefix string, dur time.Duration, run ...string) *fingertest.Process {
	t.Helper()
	argv := append(append([]string{}, run...), filepath.Join(binDir, "fingerload"), "-addr", addr, "-c", "0", "-d", dur.String(),
		"-hold", strconv.Itoa(n), "-hold-addrs", strconv.Itoa(addrs), "-hold-from", prefix)
	p := fingertest.StartProcess(t, exec.Command(argv[0], argv[1:]...))
	t.Cleanup(func() {
		p.Stop(t)
		t.Logf("flood: %s", strings.TrimSpace(p.Output()))
	})
	m := p.WaitFor(t, regexp.MustCompile(`hold: (\d+) connections open`), 60*time.Second)
	t.Logf("flood: %s held connections open", m[1])
	return p
}

// checkServed asserts that the fast clients were served, none refused, and
// logs their rate against the unloaded one.
func checkServed(t *testing.T, alone, loaded loadResult) {
	t.Helper()
	if loaded.errors != 0 || loaded.ok == 0 {
		t.Errorf("fast clients under the flood: %d served, %d errors, want all served and no error:\n%s", loaded.ok, loaded.errors, loaded.out)
	}
	ratio := 0.0
	if alone.rate > 0 {
		ratio = loaded.rate / alone.rate
	}
	t.Logf("fast clients: alone %.0f req/s, under the flood %.0f req/s (ratio %.2f), %d served, %d errors",
		alone.rate, loaded.rate, ratio, loaded.ok, loaded.errors)
}

// TestFloodIPv4: 5,000 idle connections from 765 addresses (under the cap
// per address), then 12,000 from 1,200 (past the default MaxConns), do not
// keep fast clients from elsewhere from being served.
func TestFloodIPv4(t *testing.T) {
	for _, tt := range []struct{ n, addrs int }{{5000, 765}, {12000, 1200}} {
		t.Run(fmt.Sprintf("%d from %d", tt.n, tt.addrs), func(t *testing.T) {
			d := startFingerd(t, []string{"127.0.0.1:0"}, "")
			alone := fast(t, d.addr, "127.0.1.0/26", 3*time.Second)
			if alone.errors != 0 || alone.ok == 0 {
				t.Fatalf("fast clients alone: %d served, %d errors:\n%s", alone.ok, alone.errors, alone.out)
			}
			holdFlood(t, d.addr, tt.n, tt.addrs, "127.2.0.0/16", 60*time.Second)
			loaded := fast(t, d.addr, "127.0.1.0/26", 3*time.Second)
			checkServed(t, alone, loaded)
		})
	}
}

// TestFloodIPv6: 5,000 idle connections from 500 IPv6 /64s of one /48, in
// a network namespace of the test's own whose loopback owns the /48.
func TestFloodIPv6(t *testing.T) {
	testenv.Root(t, "to create a network namespace")
	testenv.Program(t, "ip", "iproute2")
	ns := fmt.Sprintf("ofiflood%d", os.Getpid())
	for _, args := range [][]string{
		{"netns", "add", ns},
		{"-n", ns, "link", "set", "lo", "up"},
		{"-n", ns, "-6", "route", "add", "local", "fd00:79::/48", "dev", "lo"},
		// Binding an address of a local route (not of an interface).
		{"netns", "exec", ns, "sh", "-c", "echo 1 >/proc/sys/net/ipv6/ip_nonlocal_bind"},
	} {
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			exec.Command("ip", "netns", "del", ns).Run()
			t.Fatalf("ip %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	t.Cleanup(func() { exec.Command("ip", "netns", "del", ns).Run() })
	in := []string{"ip", "netns", "exec", ns}
	d := startFingerd(t, []string{"127.0.0.1:7979", "[::1]:7979"}, "", in...)
	alone := fast(t, d.addr, "127.0.1.0/26", 3*time.Second, in...)
	if alone.errors != 0 || alone.ok == 0 {
		t.Fatalf("fast clients alone: %d served, %d errors:\n%s", alone.ok, alone.errors, alone.out)
	}
	flood := holdFlood(t, "[::1]:7979", 5000, 500, "fd00:79::/48", 60*time.Second, in...)
	loaded := fast(t, d.addr, "127.0.1.0/26", 3*time.Second, in...)
	checkServed(t, alone, loaded)
	// The /48 holds at most its cap (256, far below MaxConns, and each
	// /64's 10 connections are within the per-client cap): the rest of
	// its connections were evicted or refused.
	flood.Stop(t)
	m := regexp.MustCompile(`hold: (\d+) open at the end, (\d+) opened in all, (\d+) evicted \(reset or server busy\), (\d+) refused`).FindStringSubmatch(flood.Output())
	if m == nil {
		t.Fatalf("the flood's summary not understood:\n%s", flood.Output())
	}
	if m[2] == "0" || m[3] == "0" && m[4] == "0" {
		t.Errorf("the flood opened %s connections, %s evicted and %s refused; want the /48's cap to have evicted or refused some", m[2], m[3], m[4])
	}
}

// fdCount counts the open descriptors of process pid.
func fdCount(t *testing.T, pid int) int {
	t.Helper()
	es, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		t.Fatal(err)
	}
	return len(es)
}

// TestProxyFloodFromNonBalancer: with proxy_from set, silent connections
// from an address that is not a load balancer are counted before anything
// is read from them: past the per-address cap they are refused at once,
// so the daemon's descriptors stay flat, and clients elsewhere are all
// served.
func TestProxyFloodFromNonBalancer(t *testing.T) {
	_, err := os.ReadDir("/proc/self/fd")
	testenv.Require(t, err == nil, "/proc, to count fingerd's descriptors: %v", err)
	d := startFingerd(t, []string{"127.0.0.1:0"}, "proxy_from = [\"127.0.0.4\"]\nproxy_header_timeout = \"30s\"")
	pid := d.Cmd.Process.Pid
	base := fdCount(t, pid)
	alone := fast(t, d.addr, "127.0.1.0/26", 2*time.Second)

	const n = 500
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	dl := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.5")}}
	for i := 0; i < n; i++ {
		c, err := dl.Dial("tcp", d.addr)
		if err != nil {
			t.Fatalf("connection %d: %v", i, err)
		}
		conns = append(conns, c)
	}
	// Each connection reports its first line.
	type first struct {
		line string
		err  error
	}
	lines := make(chan first, n)
	for _, c := range conns {
		go func() {
			c.SetReadDeadline(time.Now().Add(2 * time.Minute)) // against a hang only
			line, err := bufio.NewReader(c).ReadString('\n')
			lines <- first{line, err}
		}()
	}
	// The connections past the per-address cap are refused at once, each
	// told so (or, past 256 refusals under way, closed without a word);
	// the 16 within it wait for their query until the read timeout.
	refusal := func(f first) bool {
		return f.line == "finger: too many connections\r\n" || f.line == "" && errors.Is(f.err, io.EOF)
	}
	refused := 0
	hang := time.After(30 * time.Second) // against a hang only
	for refused < n-16 {
		select {
		case f := <-lines:
			switch {
			case refusal(f):
				refused++
			case f.line == "finger: input timeout\r\n": // one of the 16, after the read timeout
			default:
				t.Fatalf("after %d refusals a silent connection got %q (%v), want the refusal", refused, f.line, f.err)
			}
		case <-hang:
			t.Fatalf("%d of %d silent connections from one address refused within 30s, want %d", refused, n, n-16)
		}
	}
	// The daemon's descriptors fall back to the cap's 16 and a margin
	// once the refusals' lingering close (1s) is over.
	limit := base + 16 + 8
	fds := fdCount(t, pid)
	for deadline := time.Now().Add(5 * time.Second); fds > limit && time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		fds = fdCount(t, pid)
	}
	t.Logf("descriptors: %d before, %d with %d silent connections held from 127.0.0.5", base, fds, n)
	if fds > limit {
		t.Errorf("fingerd holds %d descriptors with %d silent connections from one non-balancer address, want at most %d (the per-address cap of 16 and a margin)", fds, n, limit)
	}
	loaded := fast(t, d.addr, "127.0.1.0/26", 2*time.Second)
	// No connection within the cap was refused meanwhile.
	for more := true; more; {
		select {
		case f := <-lines:
			if refusal(f) {
				refused++
			}
		default:
			more = false
		}
	}
	if refused != n-16 {
		t.Errorf("%d of %d silent connections from one address refused, want %d", refused, n, n-16)
	}
	checkServed(t, alone, loaded)
}
