package logind

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/godbus/dbus/v5"

	"github.com/openfinger/finger/internal/testenv"
)

// The integration tests run a private dbus-daemon and python3-dbusmock's
// logind template on it (Debian packages dbus and python3-dbusmock). When
// they are missing the tests skip, or fail when $CI or $FINGER_REQUIRE_DBUS
// is set.

const mockIface = "org.freedesktop.DBus.Mock"

var (
	toolsOnce    sync.Once
	toolsMissing []string
	daemonBin    string
	pythonBin    string
)

// requireTools skips or fails t when dbus-daemon or dbusmock is absent.
func requireTools(t *testing.T) {
	t.Helper()
	toolsOnce.Do(func() {
		var err error
		if daemonBin, err = exec.LookPath("dbus-daemon"); err != nil {
			toolsMissing = append(toolsMissing, "dbus-daemon (Debian package dbus)")
		}
		pythonBin = os.Getenv("FINGER_DBUSMOCK_PYTHON")
		if pythonBin == "" {
			// python3-dbusmock is installed for the system Python, which
			// may not be the python3 first on PATH.
			pythonBin = "/usr/bin/python3"
		}
		if out, err := exec.Command(pythonBin, "-c", "import dbusmock").CombinedOutput(); err != nil {
			toolsMissing = append(toolsMissing, fmt.Sprintf("%s -m dbusmock (Debian package python3-dbusmock): %v: %s",
				pythonBin, err, bytes.TrimSpace(out)))
		}
	})
	if len(toolsMissing) == 0 {
		return
	}
	msg := "logind integration test needs " + strings.Join(toolsMissing, " and ") +
		"; install with: apt-get install -y dbus python3-dbusmock"
	if os.Getenv("FINGER_REQUIRE_DBUS") != "" {
		t.Fatal(msg)
	}
	testenv.Require(t, false, "%s", msg)
}

// proc is a child process of the test, killed by PID at cleanup.
type proc struct {
	cmd      *exec.Cmd
	waitOnce sync.Once
	waitErr  error
}

func (p *proc) pid() int { return p.cmd.Process.Pid }

func (p *proc) signal(t *testing.T, sig syscall.Signal) {
	t.Helper()
	if err := syscall.Kill(p.pid(), sig); err != nil {
		t.Fatalf("kill -%d %d: %v", sig, p.pid(), err)
	}
}

// kill ends the process and reaps it.
func (p *proc) kill() {
	_ = syscall.Kill(p.pid(), syscall.SIGKILL)
	p.waitOnce.Do(func() { p.waitErr = p.cmd.Wait() })
}

func start(t *testing.T, cmd *exec.Cmd) *proc {
	t.Helper()
	// Children die with the test binary even if cleanup never runs.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", cmd.Path, err)
	}
	p := &proc{cmd: cmd}
	t.Cleanup(p.kill)
	return p
}

// testBus is a private dbus-daemon, optionally with a mock logind on it.
type testBus struct {
	t      *testing.T
	dir    string
	addr   string
	daemon *proc
	mock   *proc

	mu  sync.Mutex
	ctl *dbus.Conn // the test's own connection, to drive the mock
}

// newBus starts a private bus (without logind).
func newBus(t *testing.T) *testBus {
	t.Helper()
	requireTools(t)
	dir, err := os.MkdirTemp("", "logind-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	b := &testBus{t: t, dir: dir, addr: "unix:path=" + filepath.Join(dir, "bus")}
	t.Cleanup(func() {
		b.mu.Lock()
		if b.ctl != nil {
			b.ctl.Close()
		}
		b.mu.Unlock()
	})
	b.startDaemon()
	return b
}

// newBusWithLogind starts a private bus and the mock logind on it.
func newBusWithLogind(t *testing.T) *testBus {
	b := newBus(t)
	b.startMock()
	return b
}

// startDaemon starts dbus-daemon listening on b.addr (again, after
// killDaemon).
func (b *testBus) startDaemon() {
	t := b.t
	t.Helper()
	cmd := exec.Command(daemonBin, "--session", "--nofork", "--print-address", "--address="+b.addr)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	logf, err := os.OpenFile(filepath.Join(b.dir, "dbus-daemon.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	cmd.Stderr = logf
	b.daemon = start(t, cmd)
	line := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		if sc.Scan() {
			line <- sc.Text()
		} else {
			line <- ""
		}
		// Keep draining so that the daemon never blocks on stdout.
		for sc.Scan() {
		}
	}()
	select {
	case l := <-line:
		if !strings.HasPrefix(l, b.addr) {
			b.dumpLogs()
			t.Fatalf("dbus-daemon printed %q, want an address starting with %q", l, b.addr)
		}
	case <-time.After(10 * time.Second):
		b.dumpLogs()
		t.Fatal("dbus-daemon did not print its address within 10s")
	}
}

// killDaemon kills dbus-daemon with SIGKILL, as a crash would.
func (b *testBus) killDaemon() {
	b.daemon.kill()
	b.mu.Lock()
	if b.ctl != nil {
		b.ctl.Close()
		b.ctl = nil
	}
	b.mu.Unlock()
}

// startMock starts python3-dbusmock's logind template on the bus and waits
// until it owns org.freedesktop.login1.
func (b *testBus) startMock() {
	t := b.t
	t.Helper()
	cmd := exec.Command(pythonBin, "-m", "dbusmock", "--template", "logind")
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "DBUS_") || strings.HasPrefix(kv, "DISPLAY=") {
			continue
		}
		env = append(env, kv)
	}
	cmd.Env = append(env, "DBUS_SYSTEM_BUS_ADDRESS="+b.addr, "DBUS_SESSION_BUS_ADDRESS="+b.addr)
	logf, err := os.OpenFile(filepath.Join(b.dir, "dbusmock.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	cmd.Stdout = logf
	cmd.Stderr = logf
	b.mock = start(t, cmd)
	deadline := time.Now().Add(30 * time.Second)
	for {
		var owned bool
		err := b.control().BusObject().Call("org.freedesktop.DBus.NameHasOwner", 0, busName).Store(&owned)
		if err == nil && owned {
			return
		}
		if time.Now().After(deadline) {
			b.dumpLogs()
			t.Fatalf("mock logind did not appear on the bus within 30s (last error %v)", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (b *testBus) dumpLogs() {
	for _, name := range []string{"dbus-daemon.log", "dbusmock.log"} {
		if data, err := os.ReadFile(filepath.Join(b.dir, name)); err == nil && len(data) > 0 {
			b.t.Logf("%s:\n%s", name, data)
		}
	}
}

// control returns the test's own connection to the bus.
func (b *testBus) control() *dbus.Conn {
	b.t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.ctl != nil && b.ctl.Connected() {
		return b.ctl
	}
	c, err := dbus.Connect(b.addr)
	if err != nil {
		b.t.Fatalf("test connection to %s: %v", b.addr, err)
	}
	b.ctl = c
	return c
}

func (b *testBus) callCtx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), 10*time.Second)
}

// addSession adds a session through the mock's AddSession and returns its
// object path.
func (b *testBus) addSession(id, seat string, uid uint32, user string, active bool) dbus.ObjectPath {
	b.t.Helper()
	ctx, cancel := b.callCtx()
	defer cancel()
	var path string
	err := b.control().Object(busName, managerPath).CallWithContext(ctx, mockIface+".AddSession", 0,
		id, seat, uid, user, active).Store(&path)
	if err != nil {
		b.dumpLogs()
		b.t.Fatalf("AddSession %s: %v", id, err)
	}
	return dbus.ObjectPath(path)
}

// setProp sets a property of a session object.
func (b *testBus) setProp(path dbus.ObjectPath, name string, value any) {
	b.t.Helper()
	ctx, cancel := b.callCtx()
	defer cancel()
	err := b.control().Object(busName, path).CallWithContext(ctx, propertiesIfce+".Set", 0,
		sessionIface, name, dbus.MakeVariant(value)).Err
	if err != nil {
		b.dumpLogs()
		b.t.Fatalf("set %s %s: %v", path, name, err)
	}
}

// seatRef is the (so) structure of a session's Seat property.
type seatRef struct {
	ID   string
	Path dbus.ObjectPath
}

// noSeat is the Seat property of a session without a seat.
var noSeat = seatRef{"", "/"}
