package main

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/godbus/dbus/v5"

	"github.com/openfinger/finger/internal/privilege"
	"github.com/openfinger/finger/internal/testenv"
)

// busConfig is the configuration of the test's private bus: like a
// session bus, but any user may connect, as on the system bus, so that
// fingerd can connect after dropping to nobody.
const busConfig = `<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:path=%s</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
`

// requireDBus returns the paths of dbus-daemon and of a Python with
// dbusmock. It fails under CI when they are missing and skips elsewhere.
func requireDBus(t *testing.T) (daemon, python string) {
	t.Helper()
	var missing []string
	daemon, err := exec.LookPath("dbus-daemon")
	if err != nil {
		missing = append(missing, "dbus-daemon (Debian package dbus)")
	}
	python = os.Getenv("FINGER_DBUSMOCK_PYTHON")
	if python == "" {
		python = "/usr/bin/python3"
	}
	if out, err := exec.Command(python, "-c", "import dbusmock").CombinedOutput(); err != nil {
		missing = append(missing, fmt.Sprintf("%s -m dbusmock (Debian package python3-dbusmock): %v: %s", python, err, strings.TrimSpace(string(out))))
	}
	testenv.Require(t, len(missing) == 0, "%s", strings.Join(missing, " and "))
	return daemon, python
}

// startBus starts a private dbus-daemon and python3-dbusmock's logind
// template on it, and returns the bus address and a connection to it.
func startBus(t *testing.T, dir string) (string, *dbus.Conn) {
	t.Helper()
	daemonBin, python := requireDBus(t)
	sock := filepath.Join(dir, "bus")
	conf := filepath.Join(dir, "bus.conf")
	if err := os.WriteFile(conf, []byte(fmt.Sprintf(busConfig, sock)), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(daemonBin, "--config-file="+conf, "--nofork", "--print-address")
	cmd.Env = []string{"PATH=/usr/bin:/bin"}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	d := startCmd(t, cmd)
	line := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		sc.Scan()
		line <- sc.Text()
		for sc.Scan() {
		}
	}()
	var addr string
	select {
	case addr = <-line:
	case <-time.After(10 * time.Second):
		t.Fatalf("dbus-daemon did not print its address:\n%s", d.log.String())
	}
	if !strings.HasPrefix(addr, "unix:path="+sock) {
		t.Fatalf("dbus-daemon printed %q, want an address on %s\n%s", addr, sock, d.log.String())
	}
	addr = "unix:path=" + sock

	mock := exec.Command(python, "-m", "dbusmock", "--template", "logind")
	mock.Env = []string{"PATH=/usr/bin:/bin", "DBUS_SYSTEM_BUS_ADDRESS=" + addr, "DBUS_SESSION_BUS_ADDRESS=" + addr}
	m := startCmd(t, mock)

	conn, err := dbus.Connect(addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	deadline := time.Now().Add(30 * time.Second)
	for {
		var owned bool
		err := conn.BusObject().Call("org.freedesktop.DBus.NameHasOwner", 0, "org.freedesktop.login1").Store(&owned)
		if err == nil && owned {
			return addr, conn
		}
		if time.Now().After(deadline) {
			t.Fatalf("mock logind did not appear on the bus (last error %v):\n%s", err, m.log.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// addSession adds a session to the mock logind and sets properties on it.
func addSession(t *testing.T, conn *dbus.Conn, id, seat string, uid uint32, user string, props map[string]any) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var path dbus.ObjectPath
	err := conn.Object("org.freedesktop.login1", "/org/freedesktop/login1").CallWithContext(ctx,
		"org.freedesktop.DBus.Mock.AddSession", 0, id, seat, uid, user, true).Store(&path)
	if err != nil {
		t.Fatalf("AddSession %s: %v", id, err)
	}
	for name, v := range props {
		err := conn.Object("org.freedesktop.login1", path).CallWithContext(ctx, "org.freedesktop.DBus.Properties.Set", 0,
			"org.freedesktop.login1.Session", name, dbus.MakeVariant(v)).Err
		if err != nil {
			t.Fatalf("set %s of session %s: %v", name, id, err)
		}
	}
}

// TestLogindSessions runs fingerd as root, dropping to nobody, with
// sessions from a mock logind on a private bus: {C} lists the mock's
// sessions of known users, and the bus sees fingerd connect as nobody.
func TestLogindSessions(t *testing.T) {
	needRootForDrop(t)
	f := newFixture(t, "")
	addr, conn := startBus(t, f.dir)
	login := time.Date(2020, 1, 2, 3, 4, 0, 0, time.UTC)
	addSession(t, conn, "c1", "seat0", 1001, "fgtest_alice", map[string]any{
		"TTY": "pts/97", "Remote": true, "RemoteHost": "client.example.net",
		"Timestamp": uint64(login.UnixMicro()),
	})
	addSession(t, conn, "c2", "seat0", 1002, "fgtest_bob", map[string]any{"Timestamp": uint64(login.UnixMicro())})
	addSession(t, conn, "c3", "seat0", 4242, "fgtest_ghost", nil) // not in passwd: not listed

	for _, sessions := range []string{"logind", "auto"} {
		t.Run(sessions, func(t *testing.T) {
			cfg := filepath.Join(f.dir, "logind-"+sessions+".toml")
			doc := fmt.Sprintf("[server]\nlisten = [\"127.0.0.1:0\"]\nuser = \"nobody\"\n[sources]\npasswd = %q\nsessions = %q\nutmp = %q\nlastlog = \"\"\nlastlog2 = \"\"\nwtmpdb = []\nmail_spool = \"\"\nlogin_defs = %q\n",
				filepath.Join(f.dir, "passwd"), sessions, filepath.Join(f.dir, "no-utmp"), filepath.Join(f.dir, "login.defs"))
			if err := os.WriteFile(cfg, []byte(doc), 0o644); err != nil {
				t.Fatal(err)
			}
			cmd := exec.Command(binary, "-config", cfg, "-log-level", "debug")
			cmd.Env = []string{"PATH=/usr/bin:/bin", "TZ=UTC", "DBUS_SYSTEM_BUS_ADDRESS=" + addr}
			p := startCmd(t, cmd)
			m := p.waitStarted(t)
			r := query(t, strings.Split(m[1], ",")[0], "", "\r\n")
			for _, re := range []string{
				`^Login +Name +Tty +Idle +Login Time +Office +Office Phone\r\n`,
				`\r\nfgtest_alice +Alice Liddell +pts/97 +Jan  2  2020 \(client\.example\.net\)\r\n`,
				`\r\nfgtest_bob +Bob Dobbs +seat0 +Jan  2  2020\r\n`,
			} {
				if !regexp.MustCompile(re).MatchString(r) {
					t.Errorf("{C} = %q, want a match for %s", r, re)
				}
			}
			if strings.Contains(r, "ghost") || strings.Count(r, "\r\n") != 3 {
				t.Errorf("{C} = %q, want exactly the header, alice and bob", r)
			}
			if r := query(t, strings.Split(m[1], ",")[0], "", "fgtest_bob\r\n"); !strings.Contains(r, "On since Thu Jan  2 03:04 (UTC) on seat0") {
				t.Errorf("fgtest_bob = %q, want his logind session", r)
			}
			wantConnectedAsNobody(t, conn)
			// The connection was made under Landlock where the kernel has
			// it (ABI 9 and later restrict connecting to Unix sockets by
			// path; fingerd grants the bus socket's directory).
			ll := p.log.waitFor(t, `Landlock (applied|not available)`, 10*time.Second)
			testenv.Require(t, ll[1] == "applied", "Landlock in the kernel (fingerd logged: Landlock %s)", ll[1])
		})
	}
}

// wantConnectedAsNobody checks that some connection to the bus belongs
// to nobody: fingerd's, made after it dropped root.
func wantConnectedAsNobody(t *testing.T, conn *dbus.Conn) {
	t.Helper()
	id, err := privilege.Lookup("nobody", "")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	if err := conn.BusObject().Call("org.freedesktop.DBus.ListNames", 0).Store(&names); err != nil {
		t.Fatal(err)
	}
	for _, n := range names {
		if !strings.HasPrefix(n, ":") {
			continue
		}
		var uid uint32
		if conn.BusObject().Call("org.freedesktop.DBus.GetConnectionUnixUser", 0, n).Store(&uid) == nil && int(uid) == id.UID {
			return
		}
	}
	t.Errorf("no connection of uid %d (nobody) on the bus; fingerd did not reach logind as the serving user", id.UID)
}
