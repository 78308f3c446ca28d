package logind

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/openfinger/finger/internal/userinfo"
)

// makeTTY creates a stand-in terminal file under dev with the given mode
// and access time.
func makeTTY(t *testing.T, dev, name string, mode os.FileMode, atime time.Time) {
	t.Helper()
	p := filepath.Join(dev, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(p, atime, atime); err != nil {
		t.Fatal(err)
	}
}

func usecOf(t time.Time) uint64 { return uint64(t.UnixMicro()) }

// near reports whether d is within tol of want.
func near(d, want, tol time.Duration) bool {
	return d >= want-tol && d <= want+tol
}

// mustSessions queries s and fails the test on error.
func mustSessions(t *testing.T, s userinfo.Sessions) []userinfo.Session {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	ss, err := s.Sessions(ctx)
	if err != nil {
		t.Fatalf("Sessions: %v", err)
	}
	return ss
}

func logins(ss []userinfo.Session) []string {
	var out []string
	for _, s := range ss {
		out = append(out, s.Login+"@"+s.TTY)
	}
	return out
}

func TestSessionsFromMockLogind(t *testing.T) {
	b := newBusWithLogind(t)
	now := time.Now()
	dev := t.TempDir()
	makeTTY(t, dev, "tty7", 0o620, now.Add(-time.Hour))
	makeTTY(t, dev, "pts/3", 0o600, now.Add(-5*time.Minute))
	t1 := time.Date(2024, 5, 1, 10, 0, 0, 123456000, time.UTC)
	t2 := time.Date(2024, 5, 2, 8, 30, 0, 0, time.UTC)
	t3 := time.Date(2024, 5, 3, 9, 0, 0, 0, time.UTC)

	// alice on the console.
	p := b.addSession("c1", "seat0", 1000, "alice", true)
	b.setProp(p, "TTY", "tty7")
	b.setProp(p, "Type", "tty")
	b.setProp(p, "Timestamp", usecOf(t1))
	// alice again, on a terminal that does not exist under dev.
	p = b.addSession("c8", "seat0", 1000, "alice", true)
	b.setProp(p, "TTY", "tty9")
	b.setProp(p, "Timestamp", usecOf(t3))
	// bob over ssh: no seat, a pty, a remote host.
	p = b.addSession("c2", "seat0", 1001, "bob", true)
	b.setProp(p, "Seat", noSeat)
	b.setProp(p, "TTY", "/dev/pts/3")
	b.setProp(p, "Remote", true)
	b.setProp(p, "RemoteHost", "client.example.net")
	b.setProp(p, "Timestamp", usecOf(t2))
	// carol on a graphical seat, idle for ten minutes.
	p = b.addSession("c4", "seat1", 1002, "carol", true)
	b.setProp(p, "Type", "wayland")
	b.setProp(p, "IdleHint", true)
	b.setProp(p, "IdleSinceHint", usecOf(now.Add(-10*time.Minute)))
	// dave: no seat, no tty (sftp-like); default mock timestamp (42µs).
	p = b.addSession("c5", "seat0", 1003, "dave", false)
	b.setProp(p, "Seat", noSeat)
	// Sessions that must not be listed.
	p = b.addSession("c3", "seat0", 60, "gdm", true)
	b.setProp(p, "Class", "greeter")
	p = b.addSession("c6", "seat0", 1000, "alice", true)
	b.setProp(p, "State", "closing")
	b.setProp(p, "TTY", "tty7")
	p = b.addSession("c7", "seat0", 1004, "erin", true)
	b.setProp(p, "Class", "background")
	p = b.addSession("c9", "seat0", 1005, "frank", true)
	b.setProp(p, "Class", "manager")

	s := &Sessions{Address: b.addr, Dev: dev}
	t.Cleanup(func() { s.Close() })
	got := mustSessions(t, s)

	wantOrder := []string{"alice@tty7", "alice@tty9", "bob@pts/3", "carol@seat1", "dave@"}
	if !reflect.DeepEqual(logins(got), wantOrder) {
		t.Fatalf("sessions = %v, want %v (full: %+v)", logins(got), wantOrder, got)
	}
	tol := 2 * time.Minute
	checks := []struct {
		host    string
		login   time.Time
		idle    time.Duration // <0: unknown
		msgsOff bool
	}{
		{"", t1, time.Hour, false},
		{"", t3, -1, false},
		{"client.example.net", t2, 5 * time.Minute, true},
		{"", time.UnixMicro(42), 10 * time.Minute, false},
		{"", time.UnixMicro(42), -1, false},
	}
	for i, c := range checks {
		g := got[i]
		if g.Host != c.host {
			t.Errorf("%s: Host = %q, want %q", wantOrder[i], g.Host, c.host)
		}
		if !g.LoginTime.Equal(c.login) {
			t.Errorf("%s: LoginTime = %v, want %v", wantOrder[i], g.LoginTime, c.login)
		}
		if c.idle < 0 {
			if g.Idle >= 0 {
				t.Errorf("%s: Idle = %v, want unknown (<0)", wantOrder[i], g.Idle)
			}
		} else if !near(g.Idle, c.idle, tol) {
			t.Errorf("%s: Idle = %v, want about %v", wantOrder[i], g.Idle, c.idle)
		}
		if g.MessagesOff != c.msgsOff {
			t.Errorf("%s: MessagesOff = %v, want %v", wantOrder[i], g.MessagesOff, c.msgsOff)
		}
	}

	if !s.Available(context.Background()) {
		t.Error("Available = false with logind on the bus")
	}
}

func TestNoSessions(t *testing.T) {
	b := newBusWithLogind(t)
	s := &Sessions{Address: b.addr}
	t.Cleanup(func() { s.Close() })
	got := mustSessions(t, s)
	if got == nil || len(got) != 0 {
		t.Fatalf("Sessions = %#v, want an empty, non-nil list", got)
	}
}

func TestMaxSessions(t *testing.T) {
	b := newBusWithLogind(t)
	for i, u := range []string{"u1", "u2", "u3", "u4", "u5"} {
		b.addSession("s"+u, "seat0", uint32(2000+i), u, true)
	}
	s := &Sessions{Address: b.addr, MaxSessions: 3}
	t.Cleanup(func() { s.Close() })
	if got := mustSessions(t, s); len(got) != 3 {
		t.Fatalf("got %d sessions with MaxSessions 3: %v", len(got), logins(got))
	}
	s2 := &Sessions{Address: b.addr}
	t.Cleanup(func() { s2.Close() })
	if got := mustSessions(t, s2); len(got) != 5 {
		t.Fatalf("got %d sessions with the default cap: %v", len(got), logins(got))
	}
}

func TestSystemBusFromEnvironment(t *testing.T) {
	b := newBusWithLogind(t)
	b.addSession("e1", "seat0", 1000, "alice", true)
	t.Setenv("DBUS_SYSTEM_BUS_ADDRESS", b.addr)
	var s Sessions // zero value: the system bus
	t.Cleanup(func() { s.Close() })
	if got := mustSessions(t, &s); len(got) != 1 || got[0].Login != "alice" || got[0].TTY != "seat0" {
		t.Fatalf("Sessions = %+v, want alice on seat0", got)
	}
}

// staticSessions stands in for the utmp source behind Fallback.
type staticSessions []userinfo.Session

func (s staticSessions) Sessions(context.Context) ([]userinfo.Session, error) { return s, nil }

var fromUtmp = staticSessions{{Login: "utmpuser", TTY: "pts/9", Idle: -1}}

func TestUnavailable(t *testing.T) {
	b := newBus(t) // a bus without logind
	ctx := context.Background()

	noLogind := &Sessions{Address: b.addr}
	t.Cleanup(func() { noLogind.Close() })
	if noLogind.Available(ctx) {
		t.Error("Available = true on a bus without logind")
	}
	if _, err := noLogind.Sessions(ctx); !errors.Is(err, ErrUnavailable) {
		t.Errorf("Sessions on a bus without logind: err = %v, want ErrUnavailable", err)
	}

	noBus := &Sessions{Address: "unix:path=" + filepath.Join(t.TempDir(), "no-such-bus")}
	if noBus.Available(ctx) {
		t.Error("Available = true without a bus")
	}
	if _, err := noBus.Sessions(ctx); !errors.Is(err, ErrUnavailable) {
		t.Errorf("Sessions without a bus: err = %v, want ErrUnavailable", err)
	}

	for name, primary := range map[string]*Sessions{"no logind": noLogind, "no bus": noBus} {
		got := mustSessions(t, &Fallback{Primary: primary, Secondary: fromUtmp})
		if !reflect.DeepEqual(got, []userinfo.Session(fromUtmp)) {
			t.Errorf("%s: Fallback = %+v, want the secondary's %+v", name, got, fromUtmp)
		}
		if got := mustSessions(t, &Fallback{Primary: primary}); got == nil || len(got) != 0 {
			t.Errorf("%s: Fallback without secondary = %#v, want an empty list", name, got)
		}
	}

	// Once logind appears, the same values use it.
	b.startMock()
	b.addSession("a1", "seat0", 1000, "alice", true)
	if !noLogind.Available(ctx) {
		t.Error("Available = false after logind appeared")
	}
	got := mustSessions(t, &Fallback{Primary: noLogind, Secondary: fromUtmp})
	if len(got) != 1 || got[0].Login != "alice" {
		t.Errorf("Fallback with logind = %+v, want alice from logind", got)
	}
}

// queryAsync runs s.Sessions in the background.
func queryAsync(s userinfo.Sessions, ctx context.Context) <-chan error {
	ch := make(chan error, 1)
	go func() {
		_, err := s.Sessions(ctx)
		ch <- err
	}()
	return ch
}

// waitErr waits up to limit for the query's result and returns it.
func waitErr(t *testing.T, ch <-chan error, limit time.Duration) error {
	t.Helper()
	select {
	case err := <-ch:
		return err
	case <-time.After(limit):
		t.Fatalf("query still blocked after %v", limit)
		return nil
	}
}

func TestLogindHangsTimeout(t *testing.T) {
	b := newBusWithLogind(t)
	b.addSession("h1", "seat0", 1000, "alice", true)
	s := &Sessions{Address: b.addr, Timeout: 300 * time.Millisecond}
	t.Cleanup(func() { s.Close() })
	mustSessions(t, s)

	b.mock.signal(t, syscall.SIGSTOP)
	start := time.Now()
	err := waitErr(t, queryAsync(s, context.Background()), 5*time.Second)
	if err == nil {
		t.Fatal("Sessions succeeded while logind was stopped")
	}
	if !errors.Is(err, context.DeadlineExceeded) || errors.Is(err, ErrUnavailable) {
		t.Errorf("err = %v, want a timeout that is not ErrUnavailable", err)
	}
	t.Logf("stopped logind: error after %v: %v", time.Since(start), err)

	// A hung logind is an error, not a reason to fall back.
	_, err = (&Fallback{Primary: s, Secondary: fromUtmp}).Sessions(context.Background())
	if err == nil {
		t.Error("Fallback used the secondary while logind was hung")
	}

	// The caller's context bounds the query too.
	slow := &Sessions{Address: b.addr, Timeout: time.Minute}
	t.Cleanup(func() { slow.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if err := waitErr(t, queryAsync(slow, ctx), 5*time.Second); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("with a 200ms context: err = %v, want DeadlineExceeded", err)
	}

	b.mock.signal(t, syscall.SIGCONT)
	if got := mustSessions(t, s); len(got) != 1 {
		t.Fatalf("after SIGCONT: %v", logins(got))
	}
}

func TestLogindKilledMidQuery(t *testing.T) {
	b := newBusWithLogind(t)
	b.addSession("k1", "seat0", 1000, "alice", true)
	// A long timeout: the error must come from logind dying, not the clock.
	s := &Sessions{Address: b.addr, Timeout: time.Minute}
	t.Cleanup(func() { s.Close() })
	mustSessions(t, s)

	b.mock.signal(t, syscall.SIGSTOP)
	pending := queryAsync(s, context.Background())
	time.Sleep(300 * time.Millisecond)
	select {
	case err := <-pending:
		t.Fatalf("query returned while logind was stopped: %v", err)
	default:
	}
	b.mock.kill()
	start := time.Now()
	err := waitErr(t, pending, 10*time.Second)
	if err == nil {
		t.Fatal("Sessions succeeded although logind was killed during the query")
	}
	t.Logf("logind killed: error after %v: %v", time.Since(start), err)

	// logind is gone: unavailable, and Fallback switches to the secondary.
	if _, err := s.Sessions(context.Background()); !errors.Is(err, ErrUnavailable) {
		t.Errorf("with logind gone: err = %v, want ErrUnavailable", err)
	}
	if got := mustSessions(t, &Fallback{Primary: s, Secondary: fromUtmp}); len(got) != 1 || got[0].Login != "utmpuser" {
		t.Errorf("Fallback with logind gone = %+v", got)
	}

	// A restarted logind answers again.
	b.startMock()
	b.addSession("k2", "seat0", 1001, "bob", true)
	if got := mustSessions(t, s); len(got) != 1 || got[0].Login != "bob" {
		t.Fatalf("after restarting logind: %+v, want bob", got)
	}
}

func TestBusRestartedMidQuery(t *testing.T) {
	b := newBusWithLogind(t)
	b.addSession("r1", "seat0", 1000, "alice", true)
	s := &Sessions{Address: b.addr, Timeout: time.Minute}
	t.Cleanup(func() { s.Close() })
	mustSessions(t, s)

	b.mock.signal(t, syscall.SIGSTOP)
	pending := queryAsync(s, context.Background())
	time.Sleep(300 * time.Millisecond)
	b.killDaemon()
	start := time.Now()
	err := waitErr(t, pending, 10*time.Second)
	if err == nil {
		t.Fatal("Sessions succeeded although the bus died during the query")
	}
	t.Logf("bus killed: error after %v: %v", time.Since(start), err)
	b.mock.kill()

	// No bus: unavailable, quickly.
	start = time.Now()
	if _, err := s.Sessions(context.Background()); !errors.Is(err, ErrUnavailable) {
		t.Errorf("with the bus down: err = %v, want ErrUnavailable", err)
	}
	if s.Available(context.Background()) {
		t.Error("Available = true with the bus down")
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("queries with the bus down took %v", d)
	}

	// The bus and logind come back: the same Sessions reconnects.
	b.startDaemon()
	b.startMock()
	b.addSession("r2", "seat0", 1001, "bob", true)
	if got := mustSessions(t, s); len(got) != 1 || got[0].Login != "bob" {
		t.Fatalf("after restarting the bus: %+v, want bob", got)
	}
	if !s.Available(context.Background()) {
		t.Error("Available = false after the bus came back")
	}
}

func TestConcurrentQueries(t *testing.T) {
	b := newBusWithLogind(t)
	for i, u := range []string{"alice", "bob", "carol"} {
		b.addSession("p"+u, "seat0", uint32(1000+i), u, true)
	}
	s := &Sessions{Address: b.addr}
	t.Cleanup(func() { s.Close() })
	want := []string{"alice@seat0", "bob@seat0", "carol@seat0"}
	var wg sync.WaitGroup
	errs := make(chan error, 100)
	for g := 0; g < 16; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 5; i++ {
				ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
				ss, err := s.Sessions(ctx)
				cancel()
				if err != nil {
					errs <- err
					return
				}
				if got := logins(ss); !reflect.DeepEqual(got, want) {
					errs <- errors.New("unexpected sessions: " + strings.Join(got, ","))
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
