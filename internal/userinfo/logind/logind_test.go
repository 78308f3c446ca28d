package logind

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/godbus/dbus/v5"

	"github.com/openfinger/finger/internal/userinfo"
)

// props builds a GetAll reply.
func props(kv ...any) map[string]dbus.Variant {
	m := make(map[string]dbus.Variant)
	for i := 0; i < len(kv); i += 2 {
		m[kv[i].(string)] = dbus.MakeVariant(kv[i+1])
	}
	return m
}

// seatProp is the Seat property as godbus decodes a (so) structure.
func seatProp(id string) []any {
	path := dbus.ObjectPath("/")
	if id != "" {
		path = dbus.ObjectPath("/org/freedesktop/login1/seat/" + id)
	}
	return []any{id, path}
}

func TestConvert(t *testing.T) {
	now := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	dev := t.TempDir()
	makeTTY(t, dev, "pts/1", 0o620, now.Add(-90*time.Second))
	makeTTY(t, dev, "tty2", 0o600, now.Add(-3*time.Hour))
	makeTTY(t, dev, "future", 0o620, now.Add(time.Hour)) // clock skew
	if err := os.MkdirAll(filepath.Join(dev, "dir"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("pts/1", filepath.Join(dev, "link")); err != nil {
		t.Fatal(err)
	}
	login := time.Date(2025, 3, 1, 8, 15, 30, 250000000, time.UTC)
	idleSince := now.Add(-7 * time.Minute)

	tests := []struct {
		name  string
		l     listed
		props map[string]dbus.Variant
		want  userinfo.Session
		skip  bool
	}{
		{
			name: "ssh with pty",
			props: props("Name", "alice", "Class", "user", "State", "active", "TTY", "pts/1",
				"Seat", seatProp(""), "Remote", true, "RemoteHost", "ws.example.org",
				"Timestamp", usecOf(login), "IdleHint", false, "IdleSinceHint", uint64(0)),
			want: userinfo.Session{Login: "alice", TTY: "pts/1", Host: "ws.example.org",
				LoginTime: login, Idle: 90 * time.Second},
		},
		{
			name:  "console, messages off, /dev/ prefix",
			props: props("Name", "root", "Class", "user", "State", "online", "TTY", "/dev/tty2", "Seat", seatProp("seat0"), "Timestamp", usecOf(login)),
			want:  userinfo.Session{Login: "root", TTY: "tty2", LoginTime: login, Idle: 3 * time.Hour, MessagesOff: true},
		},
		{
			name:  "access time in the future",
			props: props("Name", "bob", "Class", "user", "TTY", "future"),
			want:  userinfo.Session{Login: "bob", TTY: "future", Idle: 0},
		},
		{
			name: "graphical seat, idle hint",
			props: props("Name", "carol", "Class", "user", "State", "active", "TTY", "",
				"Seat", seatProp("seat0"), "IdleHint", true, "IdleSinceHint", usecOf(idleSince),
				"Timestamp", usecOf(login)),
			want: userinfo.Session{Login: "carol", TTY: "seat0", LoginTime: login, Idle: 7 * time.Minute},
		},
		{
			name:  "idle hint without a time",
			props: props("Name", "carol", "Class", "user", "Seat", seatProp("seat1"), "IdleHint", true, "IdleSinceHint", uint64(0)),
			want:  userinfo.Session{Login: "carol", TTY: "seat1", Idle: -1},
		},
		{
			name:  "seat from ListSessions when the property is missing",
			l:     listed{User: "dave", Seat: "seat2"},
			props: props("Class", "user"),
			want:  userinfo.Session{Login: "dave", TTY: "seat2", Idle: -1},
		},
		{
			name:  "no tty, no seat, not idle",
			props: props("Name", "erin", "Class", "user", "Seat", seatProp(""), "IdleHint", false, "Timestamp", uint64(0)),
			want:  userinfo.Session{Login: "erin", Idle: -1},
		},
		{
			name:  "tty missing under dev falls back to the idle hint",
			props: props("Name", "frank", "Class", "user", "TTY", "pts/99", "IdleHint", true, "IdleSinceHint", usecOf(idleSince)),
			want:  userinfo.Session{Login: "frank", TTY: "pts/99", Idle: 7 * time.Minute},
		},
		{
			name:  "tty escaping dev is not stat'ed",
			props: props("Name", "mallory", "Class", "user", "TTY", "../etc/passwd"),
			want:  userinfo.Session{Login: "mallory", TTY: "../etc/passwd", Idle: -1},
		},
		{
			name:  "directory is not a terminal",
			props: props("Name", "gina", "Class", "user", "TTY", "dir"),
			want:  userinfo.Session{Login: "gina", TTY: "dir", Idle: -1},
		},
		{
			name:  "symbolic link is not followed",
			props: props("Name", "hank", "Class", "user", "TTY", "link"),
			want:  userinfo.Session{Login: "hank", TTY: "link", Idle: -1},
		},
		{
			name:  "user-early class",
			props: props("Name", "root", "Class", "user-early", "TTY", "tty2"),
			want:  userinfo.Session{Login: "root", TTY: "tty2", Idle: 3 * time.Hour, MessagesOff: true},
		},
		{name: "greeter", props: props("Name", "gdm", "Class", "greeter", "TTY", "tty1"), skip: true},
		{name: "lock screen", props: props("Name", "alice", "Class", "lock-screen"), skip: true},
		{name: "background", props: props("Name", "alice", "Class", "background"), skip: true},
		{name: "manager", props: props("Name", "alice", "Class", "manager"), skip: true},
		{name: "user-incomplete", props: props("Name", "alice", "Class", "user-incomplete"), skip: true},
		{name: "no class", props: props("Name", "alice"), skip: true},
		{name: "closing", props: props("Name", "alice", "Class", "user", "State", "closing", "TTY", "pts/1"), skip: true},
		{name: "no name at all", props: props("Class", "user", "TTY", "pts/1"), skip: true},
		{
			name:  "wrong property types are ignored",
			l:     listed{User: "ivan"},
			props: props("Name", uint32(5), "Class", "user", "TTY", true, "Timestamp", "soon", "IdleHint", "yes"),
			want:  userinfo.Session{Login: "ivan", Idle: -1},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := convert(tc.l, tc.props, dev, now)
			if tc.skip {
				if ok {
					t.Fatalf("convert reported %+v, want the session skipped", got)
				}
				return
			}
			if !ok {
				t.Fatal("convert skipped the session")
			}
			if got.Login != tc.want.Login || got.TTY != tc.want.TTY || got.Host != tc.want.Host ||
				got.MessagesOff != tc.want.MessagesOff || !got.LoginTime.Equal(tc.want.LoginTime) {
				t.Errorf("convert = %+v, want %+v", got, tc.want)
			}
			if tc.want.Idle < 0 {
				if got.Idle >= 0 {
					t.Errorf("Idle = %v, want unknown", got.Idle)
				}
			} else if !near(got.Idle, tc.want.Idle, time.Second) {
				t.Errorf("Idle = %v, want %v", got.Idle, tc.want.Idle)
			}
		})
	}
}

func TestErrorClassification(t *testing.T) {
	for name, want := range map[string]bool{
		"org.freedesktop.DBus.Error.ServiceUnknown":              true,
		"org.freedesktop.DBus.Error.NameHasNoOwner":              true,
		"org.freedesktop.DBus.Error.Spawn.ChildExited":           true,
		"org.freedesktop.DBus.Error.NoReply":                     false,
		"org.freedesktop.DBus.Error.AccessDenied":                false,
		"org.freedesktop.DBus.Error.UnknownObject":               false,
		"org.freedesktop.DBus.Error.Spawn":                       false,
		"org.freedesktop.login1.NoSuchSession":                   false,
		"org.freedesktop.DBus.Error.LimitsExceeded.TooManyCalls": false,
	} {
		e := dbus.Error{Name: name, Body: []any{"message"}}
		if got := unavailable(fmt.Errorf("wrapped: %w", e)); got != want {
			t.Errorf("unavailable(%s) = %v, want %v", name, got, want)
		}
		if got := unavailable(&e); got != want {
			t.Errorf("unavailable(&%s) = %v, want %v", name, got, want)
		}
	}
	if unavailable(errors.New("EOF")) || unavailable(context.DeadlineExceeded) {
		t.Error("plain errors classified as unavailable")
	}
	if !gone(dbus.Error{Name: "org.freedesktop.DBus.Error.UnknownObject"}) || gone(dbus.Error{Name: "org.freedesktop.DBus.Error.NoReply"}) {
		t.Error("gone misclassifies")
	}
}

// errSessions is a Primary that always fails.
type errSessions struct{ err error }

func (e errSessions) Sessions(context.Context) ([]userinfo.Session, error) { return nil, e.err }

func TestFallbackChoice(t *testing.T) {
	ctx := context.Background()
	unavail := fmt.Errorf("logind: ListSessions: %w: %w", ErrUnavailable, dbus.Error{Name: "org.freedesktop.DBus.Error.ServiceUnknown"})
	other := errors.New("logind: ListSessions: context deadline exceeded")

	got, err := (&Fallback{Primary: errSessions{unavail}, Secondary: fromUtmp}).Sessions(ctx)
	if err != nil || len(got) != 1 || got[0].Login != "utmpuser" {
		t.Errorf("unavailable primary: %+v, %v; want the secondary", got, err)
	}
	if _, err := (&Fallback{Primary: errSessions{other}, Secondary: fromUtmp}).Sessions(ctx); err != other {
		t.Errorf("failing primary: err = %v, want %v", err, other)
	}
	got, err = (&Fallback{Primary: staticSessions{{Login: "x"}}, Secondary: fromUtmp}).Sessions(ctx)
	if err != nil || len(got) != 1 || got[0].Login != "x" {
		t.Errorf("working primary: %+v, %v", got, err)
	}
	got, err = (&Fallback{Primary: errSessions{unavail}}).Sessions(ctx)
	if err != nil || got == nil || len(got) != 0 {
		t.Errorf("no secondary: %#v, %v; want an empty list", got, err)
	}
	got, err = (&Fallback{Secondary: fromUtmp}).Sessions(ctx)
	if err != nil || len(got) != 1 {
		t.Errorf("no primary: %+v, %v", got, err)
	}
}

// TestSilentBus checks that a bus which accepts the connection but never
// completes the handshake costs at most Timeout, and that the half-open
// connection is closed.
func TestSilentBus(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "silent")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 4)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted <- c
		}
	}()

	s := &Sessions{Address: "unix:path=" + sock, Timeout: 300 * time.Millisecond}
	start := time.Now()
	_, err = s.Sessions(context.Background())
	if err == nil {
		t.Fatal("Sessions succeeded against a silent bus")
	}
	if d := time.Since(start); d > 10*time.Second { // against a hang only
		t.Errorf("Sessions took %v with Timeout 300ms", d)
	}
	if errors.Is(err, ErrUnavailable) || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("err = %v, want a timeout that is not ErrUnavailable", err)
	}
	if s.Available(context.Background()) {
		t.Error("Available = true for a silent bus")
	}

	select {
	case c := <-accepted:
		defer c.Close()
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := io.Copy(io.Discard, c); err != nil {
			t.Errorf("the abandoned connection was not closed: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no connection reached the silent bus")
	}
}

func TestCanceledContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	s := &Sessions{Address: "unix:path=" + filepath.Join(t.TempDir(), "none")}
	if _, err := s.Sessions(ctx); err == nil {
		t.Error("Sessions succeeded with a canceled context")
	}
}

func TestDefaults(t *testing.T) {
	t.Setenv("DBUS_SYSTEM_BUS_ADDRESS", "")
	var s Sessions
	if s.address() != DefaultSystemBusAddress || s.timeout() != DefaultTimeout ||
		s.dev() != DefaultDev || s.maxSessions() != DefaultMaxSessions {
		t.Errorf("zero Sessions defaults: %q %v %q %d", s.address(), s.timeout(), s.dev(), s.maxSessions())
	}
	t.Setenv("DBUS_SYSTEM_BUS_ADDRESS", "unix:path=/tmp/x")
	if s.address() != "unix:path=/tmp/x" {
		t.Errorf("address ignores DBUS_SYSTEM_BUS_ADDRESS: %q", s.address())
	}
	s.Address = "unix:path=/tmp/y"
	if s.address() != "unix:path=/tmp/y" {
		t.Errorf("address ignores Address: %q", s.address())
	}
	if !usec(1<<63).IsZero() || !usec(0).Equal(time.Unix(0, 0)) {
		t.Error("usec bounds")
	}
}

// countingSessions counts the calls and answers like its inner source.
type countingSessions struct {
	n     atomic.Int64
	inner userinfo.Sessions
}

func (c *countingSessions) Sessions(ctx context.Context) ([]userinfo.Session, error) {
	c.n.Add(1)
	return c.inner.Sessions(ctx)
}

// TestFallbackRetry: an unavailable primary is asked once per Retry period,
// not on every query; a negative Retry asks it every time.
func TestFallbackRetry(t *testing.T) {
	ctx := context.Background()
	unavail := fmt.Errorf("logind: %w", ErrUnavailable)
	for _, tt := range []struct {
		retry time.Duration
		want  int64
	}{
		{0, 1},               // DefaultRetry: 10 s, far longer than the loop
		{time.Hour, 1},       // the same, explicit
		{-1, 5},              // every time
		{time.Nanosecond, 5}, // expired before each next query
	} {
		p := &countingSessions{inner: errSessions{unavail}}
		f := &Fallback{Primary: p, Secondary: fromUtmp, Retry: tt.retry}
		for i := 0; i < 5; i++ {
			if tt.retry == time.Nanosecond {
				time.Sleep(time.Millisecond)
			}
			got, err := f.Sessions(ctx)
			if err != nil || len(got) != 1 || got[0].Login != "utmpuser" {
				t.Fatalf("Retry %v, query %d: %+v, %v; want the secondary", tt.retry, i, got, err)
			}
		}
		if n := p.n.Load(); n != tt.want {
			t.Errorf("Retry %v: primary asked %d times in 5 queries, want %d", tt.retry, n, tt.want)
		}
	}
	// A primary that works is asked every time.
	p := &countingSessions{inner: staticSessions{{Login: "x"}}}
	f := &Fallback{Primary: p, Secondary: fromUtmp}
	for i := 0; i < 3; i++ {
		f.Sessions(ctx)
	}
	if n := p.n.Load(); n != 3 {
		t.Errorf("working primary asked %d times in 3 queries, want 3", n)
	}
}
