package main

import (
	"bufio"
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
)

// listeningSockets returns the local addresses (hex, as in /proc/net/tcp)
// of the TCP sockets process pid holds in the LISTEN state.
func listeningSockets(t *testing.T, pid int) []string {
	t.Helper()
	inodes := map[string]bool{}
	dir := fmt.Sprintf("/proc/%d/fd", pid)
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		l, err := os.Readlink(filepath.Join(dir, e.Name()))
		if err == nil && strings.HasPrefix(l, "socket:[") {
			inodes[strings.TrimSuffix(strings.TrimPrefix(l, "socket:["), "]")] = true
		}
	}
	var out []string
	for _, f := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n")[1:] {
			// sl local rem st queues tr:when retrnsmt uid timeout inode
			fs := strings.Fields(line)
			if len(fs) > 9 && fs[3] == "0A" && inodes[fs[9]] {
				out = append(out, fs[1])
			}
		}
	}
	return out
}

// TestMetricsPerMode: the metrics page is served by a daemon that serves
// many connections (socket activation with Accept=no; standalone is
// TestMetrics), and counts what it served and the limits hit; a process
// that serves one connection (inetd, Accept=yes) opens no metrics
// listener even when asked to.
func TestMetricsPerMode(t *testing.T) {
	// read_timeout: a process serving one connection has it from its start;
	// the test checks the process's sockets before it sends the query,
	// which on a busy machine took past the default 10 s.
	f := newFixture(t, "max_conns_per_ip = 1\nread_timeout = \"60s\"\n")
	t.Run("Accept=no", func(t *testing.T) {
		p, addr := launchListening(t, "-config", f.config, "-metrics", "127.0.0.1:0")
		m := p.waitStarted(t)
		p.addrs, p.mAddr = []string{addr}, m[2]
		if p.mAddr == "" {
			t.Fatalf("socket-activated daemon reports no metrics address:\n%s", p.log.String())
		}
		wantAlice(t, query(t, p.addrs[0], "", aliceLine))
		waitMetric(t, p.mAddr, `fingerd_queries_total{kind="user",outcome="ok"} 1`)
		// Over max_conns_per_ip: the refusal is a limit hit.
		held := dialAccepted(t, p)
		defer held.Close()
		if r := query(t, p.addrs[0], "", aliceLine); r != "finger: too many connections\r\n" {
			t.Fatalf("second connection with max_conns_per_ip = 1: %q", r)
		}
		waitMetric(t, p.mAddr, `fingerd_limits_hit_total{limit="conns"} 1`)
	})
	oneConnection := func(t *testing.T, p *daemonProc, c net.Conn) {
		t.Helper()
		// Once the process serves its connection, it holds no listener.
		p.log.waitFor(t, `serving one connection`, 10*time.Second)
		if ls := listeningSockets(t, p.cmd.Process.Pid); len(ls) != 0 {
			t.Errorf("a process serving one connection listens on %v, want no listener", ls)
		}
		io.WriteString(c, aliceLine)
		wantAlice(t, readAll(t, c))
		if code := p.wait(t, 10*time.Second); code != 0 {
			t.Fatalf("exit %d", code)
		}
		if strings.Contains(p.log.String(), "fingerd: started") {
			t.Errorf("a process serving one connection logged a start line:\n%s", p.log.String())
		}
	}
	t.Run("Accept=yes", func(t *testing.T) {
		p, client := launchConn(t, "-config", f.config, "-metrics", "127.0.0.1:0", "-log-level", "debug")
		oneConnection(t, p, client)
	})
	t.Run("inetd", func(t *testing.T) {
		fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
		if err != nil {
			t.Fatal(err)
		}
		ours := os.NewFile(uintptr(fds[0]), "client")
		theirs := os.NewFile(uintptr(fds[1]), "server")
		defer ours.Close()
		cmd := exec.Command(binary, "-inetd", "-config", f.config, "-metrics", "127.0.0.1:0", "-log-level", "debug")
		cmd.Stdin, cmd.Stdout = theirs, theirs
		p := startCmd(t, cmd)
		theirs.Close()
		c, err := net.FileConn(ours)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		oneConnection(t, p, c)
	})
}

// silentPeer is a finger server on 127.0.0.1 that reads the query and
// then answers with reply (when not empty) and holds the connection open
// until the test ends. Each query read is sent on queries.
type silentPeer struct {
	port    string
	queries chan string
}

func startSilentPeer(t *testing.T, reply string) *silentPeer {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	t.Cleanup(func() { close(done); l.Close() })
	_, port, _ := net.SplitHostPort(l.Addr().String())
	p := &silentPeer{port: port, queries: make(chan string, 16)}
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				line, _ := bufio.NewReader(c).ReadString('\n')
				io.WriteString(c, reply)
				p.queries <- line
				<-done
			}()
		}
	}()
	return p
}

// TestForwardSettings: the [forward] table of the configuration file
// reaches the forwarder: max_hops, max_bytes and idle_timeout.
func TestForwardSettings(t *testing.T) {
	big := startSilentPeer(t, strings.Repeat("0123456789\r\n", 100))
	silent := startSilentPeer(t, "")
	f := newFixture(t, fmt.Sprintf("[forward]\nenabled = true\nallow = [\"127.0.0.1\"]\nallow_ports = [%s, %s]\n"+
		"max_hops = 1\nmax_bytes = 100\nidle_timeout = \"1s\"\ntotal_timeout = \"60s\"\n", big.port, silent.port))
	p := startDaemon(t, "-config", f.config)
	if r := query(t, p.addrs[0], "", "alice@127.0.0.1:"+big.port+"@127.0.0.1\r\n"); !strings.Contains(r, "finger: forwarding: too many hops") {
		t.Errorf("two hops with max_hops = 1: %q, want the too-many-hops refusal", r)
	}
	r := query(t, p.addrs[0], "", "alice@127.0.0.1:"+big.port+"\r\n")
	if !strings.HasPrefix(r, "0123456789\r\n") || !strings.Contains(r, "finger: forwarding: reply truncated at 100 bytes") {
		t.Errorf("a 1200-byte reply with max_bytes = 100: %q, want 100 bytes and the truncation line", r)
	}
	if body, _, _ := strings.Cut(r, "finger: forwarding:"); len(strings.ReplaceAll(body, "\r\n", "\n")) > 101 {
		t.Errorf("a 1200-byte reply with max_bytes = 100 relayed %d bytes", len(body))
	}
	if r := query(t, p.addrs[0], "", "alice@127.0.0.1:"+silent.port+"\r\n"); !strings.Contains(r, "finger: forwarding: timed out") {
		t.Errorf("a far side that never answers, idle_timeout = 1s: %q, want the timeout line", r)
	}
}

// TestStopBound: on SIGINT fingerd stops accepting, waits for queries in
// progress at most 10 seconds, then cuts them off and exits 0. The query
// in progress is a forwarded one whose far side never answers.
func TestStopBound(t *testing.T) {
	far := startSilentPeer(t, "")
	f := newFixture(t, fmt.Sprintf("read_timeout = \"60s\"\nconn_timeout = \"120s\"\n[forward]\nenabled = true\n"+
		"allow = [\"127.0.0.1\"]\nallow_ports = [%s]\nidle_timeout = \"120s\"\ntotal_timeout = \"120s\"\n", far.port))
	p := startDaemon(t, "-config", f.config)
	c := dialRetry(t, p.addrs[0])
	defer c.Close()
	io.WriteString(c, "alice@127.0.0.1:"+far.port+"\r\n")
	select {
	case q := <-far.queries: // the query is in progress
		if q != "alice\r\n" {
			t.Fatalf("far side got %q", q)
		}
	case <-time.After(10 * time.Second): // against a hang only
		t.Fatal("the query was not forwarded")
	}
	p.cmd.Process.Signal(os.Interrupt)
	p.log.waitFor(t, `fingerd: stopping`, 10*time.Second)
	stopping := time.Now()
	code := p.wait(t, 40*time.Second) // against a hang only
	waited := time.Since(stopping)
	if code != 0 {
		t.Errorf("exit status after SIGINT = %d, want 0", code)
	}
	// The stop waited for the query (10s, measured from before the log
	// line was seen), and no longer than a hang guard.
	if waited < 9*time.Second {
		t.Errorf("fingerd exited %v after SIGINT with a query in progress, want it to wait up to 10s", waited)
	}
	if !regexp.MustCompile(`queries still running at shutdown were cut off`).MatchString(p.log.String()) {
		t.Errorf("no log line about the cut-off query:\n%s", p.log.String())
	}
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.ReadAll(c); err != nil {
		t.Errorf("the cut-off client: %v, want the connection closed", err)
	}
}
