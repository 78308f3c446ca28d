package main

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/openfinger/finger/internal/testenv"
)

// inetdOnSocket starts cmd the way inetd does with a stream socket: the
// socket is its standard input, output and error. It returns the client
// end and the process.
func inetdOnSocket(t *testing.T, cmd *exec.Cmd) (net.Conn, *daemonProc) {
	t.Helper()
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	ours := os.NewFile(uintptr(fds[0]), "client")
	theirs := os.NewFile(uintptr(fds[1]), "server")
	defer ours.Close()
	cmd.Stdin, cmd.Stdout, cmd.Stderr = theirs, theirs, theirs
	p := startCmd(t, cmd)
	theirs.Close()
	c, err := net.FileConn(ours)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c, p
}

// wantOnlyReply checks that an inetd client got alice's entry and no log
// line.
func wantOnlyReply(t *testing.T, reply string) {
	t.Helper()
	wantAlice(t, reply)
	for _, bad := range []string{"level=", "msg=", "fingerd:", `"msg"`} {
		if strings.Contains(reply, bad) {
			t.Fatalf("inetd client got log text %q in its reply:\n%s", bad, reply)
		}
	}
}

// TestInetdNoLogToClient: when standard error is the client's socket (as
// inetd sets it up), no log line reaches the client, even at debug level.
func TestInetdNoLogToClient(t *testing.T) {
	f := newFixture(t, "")
	c, p := inetdOnSocket(t, exec.Command(binary, "-inetd", "-config", f.config, "-log-level", "debug"))
	c.Write([]byte(aliceLine))
	wantOnlyReply(t, readAll(t, c))
	if code := p.wait(t, 10*time.Second); code != 0 {
		t.Fatalf("inetd exit %d", code)
	}
}

// TestInetdSyslog: when standard error is the client's socket, the query
// is logged to syslog. fingerd runs in a mount namespace of its own in
// which /run (hence /var/run/syslog, where log/syslog looks after
// /dev/log) is a directory holding the test's own syslog socket, which
// also covers a host's /dev/log socket.
func TestInetdSyslog(t *testing.T) {
	testenv.Root(t, "to give fingerd a mount namespace with the test's syslog socket")
	unshare := testenv.Program(t, "unshare", "util-linux")
	dir := t.TempDir()
	sl, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: filepath.Join(dir, "syslog"), Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer sl.Close()
	f := newFixture(t, "")
	cmd := exec.Command(unshare, "--mount", "--propagation", "private", "--",
		"sh", "-c", `mount --bind "$1" /run || exit 1
# A host syslog socket at /dev/log (log/syslog tries it first) is covered
# by the test's; a symbolic link there now leads nowhere.
if [ -S /dev/log ] && [ ! -L /dev/log ]; then mount --bind "$1/syslog" /dev/log || exit 1; fi
exec "$2" -inetd -config "$3"`, "sh", dir, binary, f.config)
	c, p := inetdOnSocket(t, cmd)
	c.Write([]byte(aliceLine))
	wantOnlyReply(t, readAll(t, c))
	if code := p.wait(t, 10*time.Second); code != 0 {
		t.Fatalf("inetd exit %d", code)
	}
	// The query's log record arrives as a datagram of the daemon facility
	// (3<<3) with fingerd's tag.
	buf := make([]byte, 64*1024)
	var got []string
	sl.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		n, err := sl.Read(buf)
		if err != nil {
			t.Fatalf("no query record in syslog (%v); got %q", err, got)
		}
		m := string(buf[:n])
		got = append(got, m)
		if strings.Contains(m, `msg="finger query"`) && strings.Contains(m, "query=fgtest_alice") {
			if !strings.HasPrefix(m, "<30>") || !strings.Contains(m, "fingerd[") {
				t.Errorf("syslog record %q: want priority <30> (daemon.info) and tag fingerd", m)
			}
			return
		}
	}
}
