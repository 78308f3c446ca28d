package passwd

import (
	"context"
	"errors"
	"math"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/openfinger/finger/internal/testenv"
	"github.com/openfinger/finger/internal/userinfo"
)

const (
	userUID  = 4242
	otherUID = 4343
)

// mkfile creates path with data and mode, owned by uid.
func mkfile(t *testing.T, path, data string, mode os.FileMode, uid int) {
	t.Helper()
	if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	chownChmod(t, path, mode, uid)
}

func chownChmod(t *testing.T, path string, mode os.FileMode, uid int) {
	t.Helper()
	if err := os.Lchown(path, uid, uid); err != nil {
		t.Fatal(err)
	}
	if mode != 0 {
		if err := os.Chmod(path, mode); err != nil {
			t.Fatal(err)
		}
	}
}

func needRoot(t *testing.T) {
	t.Helper()
	testenv.Root(t, "to create files owned by other users and device nodes")
}

// homeFixture builds a home directory with one entry per case.
func homeFixture(t *testing.T) *userinfo.Account {
	t.Helper()
	needRoot(t)
	home := filepath.Join(t.TempDir(), "home")
	if err := os.Mkdir(home, 0o755); err != nil {
		t.Fatal(err)
	}
	chownChmod(t, home, 0o755, userUID)
	j := func(n string) string { return filepath.Join(home, n) }

	mkfile(t, j(".plan"), "Working on finger.\n", 0o644, userUID)
	mkfile(t, j("utf8"), "你好, 世界 — Grüße\n", 0o444, userUID)
	mkfile(t, j("empty"), "", 0o644, userUID)
	mkfile(t, j("exact"), "0123456789", 0o644, userUID)
	mkfile(t, j("huge"), strings.Repeat("x", 200*1024), 0o644, userUID)
	mkfile(t, j("private"), "secret\n", 0o600, userUID)
	mkfile(t, j("grouponly"), "group\n", 0o640, userUID)
	mkfile(t, j("notowned"), "planted by someone else\n", 0o644, otherUID)
	mkfile(t, j("rootowned"), "root\n", 0o644, 0)
	mkfile(t, j("target"), "world readable target\n", 0o644, userUID)

	if err := os.Symlink("/etc/shadow", j("shadowlink")); err != nil {
		t.Fatal(err)
	}
	chownChmod(t, j("shadowlink"), 0, userUID)
	if err := os.Symlink("target", j("ownlink")); err != nil {
		t.Fatal(err)
	}
	chownChmod(t, j("ownlink"), 0, userUID)
	if err := os.Symlink("/nonexistent", j("dangling")); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(j("fifo"), 0o644); err != nil {
		t.Fatal(err)
	}
	chownChmod(t, j("fifo"), 0o644, userUID)
	// A character device equal to /dev/zero: reading it would never end.
	if err := syscall.Mknod(j("device"), syscall.S_IFCHR|0o644, 1<<8|5); err != nil {
		t.Fatal(err)
	}
	chownChmod(t, j("device"), 0o644, userUID)
	if err := os.Mkdir(j("dir"), 0o755); err != nil {
		t.Fatal(err)
	}
	chownChmod(t, j("dir"), 0o755, userUID)
	l, err := net.Listen("unix", j("socket"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	chownChmod(t, j("socket"), 0o777, userUID)
	if err := os.Link(j("notowned"), j("hardlink")); err != nil {
		t.Fatal(err)
	}
	return &userinfo.Account{Login: "fgtest", UID: userUID, GID: userUID, Home: home}
}

func TestReadFile(t *testing.T) {
	acc := homeFixture(t)
	f := &Files{}
	tests := []struct {
		name      string
		max       int64
		want      string // data when ok
		truncated bool
		ok        bool
	}{
		{".plan", 4096, "Working on finger.\n", false, true},
		{"utf8", 4096, "你好, 世界 — Grüße\n", false, true},
		{"empty", 4096, "", false, true},
		{"exact", 10, "0123456789", false, true},
		{"exact", 9, "012345678", true, true},
		{"exact", 0, "", true, true},
		{"exact", -1, "", true, true},
		{"exact", math.MaxInt64, "0123456789", false, true},
		{"huge", 1000, strings.Repeat("x", 1000), true, true},
		{"huge", 200 * 1024, strings.Repeat("x", 200*1024), false, true},
		{"private", 4096, "", false, false},
		{"grouponly", 4096, "", false, false},
		{"notowned", 4096, "", false, false},
		{"hardlink", 4096, "", false, false},
		{"rootowned", 4096, "", false, false},
		{"shadowlink", 4096, "", false, false},
		{"ownlink", 4096, "", false, false},
		{"dangling", 4096, "", false, false},
		{"fifo", 4096, "", false, false},
		{"device", 4096, "", false, false},
		{"dir", 4096, "", false, false},
		{"socket", 4096, "", false, false},
		{"missing", 4096, "", false, false},
		{"", 4096, "", false, false},
		{".", 4096, "", false, false},
		{"..", 4096, "", false, false},
		{"../home/.plan", 4096, "", false, false},
		{"dir/x", 4096, "", false, false},
		{"nul\x00", 4096, "", false, false},
	}
	for _, tt := range tests {
		// A read that blocks (a FIFO, a device) would end with the
		// context, after a minute: far over the bound below.
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		start := time.Now()
		got, err := f.ReadFile(ctx, acc, tt.name, tt.max)
		cancel()
		if d := time.Since(start); d > 10*time.Second {
			t.Errorf("ReadFile(%q) took %v: it blocked", tt.name, d)
		}
		if !tt.ok {
			if !errors.Is(err, userinfo.ErrNotFound) || got.Data != nil || got.Truncated {
				t.Errorf("ReadFile(%q, %d) = %q (truncated %v), %v, want nothing and ErrNotFound",
					tt.name, tt.max, got.Data, got.Truncated, err)
			}
			continue
		}
		if err != nil || string(got.Data) != tt.want || got.Truncated != tt.truncated {
			t.Errorf("ReadFile(%q, %d) = %.40q (%d bytes, truncated %v), %v, want %.40q (%d bytes, truncated %v)",
				tt.name, tt.max, got.Data, len(got.Data), got.Truncated, err, tt.want, len(tt.want), tt.truncated)
		}
	}
}

func TestReadFileWrongAccount(t *testing.T) {
	acc := homeFixture(t)
	f := &Files{}
	ctx := context.Background()
	// The same published file, asked for as another UID, is not published.
	other := *acc
	other.UID = otherUID
	if got, err := f.ReadFile(ctx, &other, ".plan", 4096); !errors.Is(err, userinfo.ErrNotFound) {
		t.Errorf("ReadFile(.plan as uid %d) = %q, %v, want ErrNotFound", otherUID, got.Data, err)
	}
	for _, home := range []string{"", "relative/home", ".", "home/../etc"} {
		a := *acc
		a.Home = home
		if got, err := f.ReadFile(ctx, &a, ".plan", 4096); !errors.Is(err, userinfo.ErrNotFound) {
			t.Errorf("ReadFile(.plan, home %q) = %q, %v, want ErrNotFound", home, got.Data, err)
		}
	}
	if _, err := f.ReadFile(ctx, nil, ".plan", 4096); !errors.Is(err, userinfo.ErrNotFound) {
		t.Errorf("ReadFile(nil account) error = %v, want ErrNotFound", err)
	}
	missing := *acc
	missing.Home = filepath.Join(acc.Home, "nonexistent")
	if _, err := f.ReadFile(ctx, &missing, ".plan", 4096); !errors.Is(err, userinfo.ErrNotFound) {
		t.Errorf("ReadFile(.plan, missing home) error = %v, want ErrNotFound", err)
	}
	fileHome := *acc
	fileHome.Home = filepath.Join(acc.Home, ".plan")
	if _, err := f.ReadFile(ctx, &fileHome, ".plan", 4096); !errors.Is(err, userinfo.ErrNotFound) {
		t.Errorf("ReadFile(.plan, home is a file) error = %v, want ErrNotFound", err)
	}
}

// hang returns an lstat that blocks on paths under dir until release is
// called.
func hang(dir string) (fn func(string, *syscall.Stat_t) error, release func()) {
	ch := make(chan struct{})
	var once sync.Once
	return func(p string, st *syscall.Stat_t) error {
			if strings.HasPrefix(p, dir) {
				<-ch
				return syscall.EIO
			}
			return syscall.Lstat(p, st)
		}, func() {
			once.Do(func() { close(ch) })
		}
}

func TestHungHome(t *testing.T) {
	acc := &userinfo.Account{Login: "nfs", UID: userUID, Home: "/net/stale/nfs"}
	hung, release := hang("/net/stale")
	defer release()
	f := &Files{MaxPending: 2, lstat: hung}

	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	got, err := f.ReadFile(ctx, acc, ".plan", 4096)
	if !errors.Is(err, userinfo.ErrNotFound) || !errors.Is(err, context.DeadlineExceeded) || got.Data != nil {
		t.Errorf("ReadFile(hung home) = %q, %v, want ErrNotFound and DeadlineExceeded", got.Data, err)
	}
	if d := time.Since(start); d > 10*time.Second { // against a hang only
		t.Errorf("ReadFile(hung home) took %v, want about 50ms", d)
	}

	ctx2, cancel2 := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel2()
	// Whether the user asked to hide cannot be known: the opt-out wins,
	// whatever HideUnreadableHomes says (it is about private homes).
	if !f.Hidden(ctx2, acc) {
		t.Errorf("Hidden(hung home) = false, want true (a fault never loses an opt-out)")
	}
	// Two operations are now pending: Hidden fails at once, and hides.
	if !f.Hidden(context.Background(), acc) {
		t.Errorf("Hidden(with 2 pending) = false, want true")
	}
	// Two operations are now pending: the next one fails at once.
	// Were it to wait for the hung operations, it would end only with
	// this context, after a minute.
	ctx4, cancel4 := context.WithTimeout(context.Background(), time.Minute)
	defer cancel4()
	start = time.Now()
	_, err = f.ReadFile(ctx4, acc, ".plan", 4096)
	if !errors.Is(err, userinfo.ErrNotFound) || !errors.Is(err, errBusy) {
		t.Errorf("ReadFile(with %d pending) error = %v, want ErrNotFound and errBusy", 2, err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("ReadFile(with pending operations) took %v, want an immediate failure", d)
	}
	hideUnknown := &Files{HideUnreadableHomes: true, lstat: hung}
	ctx3, cancel3 := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel3()
	if !hideUnknown.Hidden(ctx3, acc) {
		t.Errorf("Hidden(hung home, HideUnreadableHomes) = false, want true")
	}
	release()
	// The lingering goroutines finish and release their slots.
	deadline := time.Now().Add(5 * time.Second)
	for f.pending.Load() != 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if n := f.pending.Load(); n != 0 {
		t.Errorf("pending operations after release = %d, want 0", n)
	}
}

func TestHidden(t *testing.T) {
	needRoot(t)
	dir := t.TempDir()
	mkhome := func(name string) *userinfo.Account {
		home := filepath.Join(dir, name)
		if err := os.Mkdir(home, 0o755); err != nil {
			t.Fatal(err)
		}
		return &userinfo.Account{Login: name, UID: userUID, Home: home}
	}
	plain := mkhome("plain")
	regular := mkhome("regular")
	mkfile(t, filepath.Join(regular.Home, ".nofinger"), "", 0o600, 0) // any owner, any mode
	link := mkhome("link")
	if err := os.Symlink("/nonexistent", filepath.Join(link.Home, ".nofinger")); err != nil {
		t.Fatal(err)
	}
	dirEntry := mkhome("direntry")
	if err := os.Mkdir(filepath.Join(dirEntry.Home, ".nofinger"), 0o700); err != nil {
		t.Fatal(err)
	}
	missingHome := &userinfo.Account{Login: "gone", UID: userUID, Home: filepath.Join(dir, "gone")}
	fileHome := &userinfo.Account{Login: "filehome", UID: userUID, Home: filepath.Join(regular.Home, ".nofinger")}
	relHome := &userinfo.Account{Login: "rel", UID: userUID, Home: "rel/home"}

	tests := []struct {
		acc              *userinfo.Account
		want, wantStrict bool // HideUnreadableHomes false, true
	}{
		{plain, false, false},
		{regular, true, true},
		{link, true, true},
		{dirEntry, true, true},
		{missingHome, false, false},
		{fileHome, false, false},
		{relHome, false, true},
		{nil, false, true},
	}
	for _, tt := range tests {
		for _, strict := range []bool{false, true} {
			f := &Files{HideUnreadableHomes: strict}
			want := tt.want
			if strict {
				want = tt.wantStrict
			}
			if got := f.Hidden(context.Background(), tt.acc); got != want {
				t.Errorf("Files{HideUnreadableHomes: %v}.Hidden(%+v) = %v, want %v", strict, tt.acc, got, want)
			}
		}
	}
}

// TestHiddenPrivateHome checks a home that cannot be searched (EACCES).
// As root every home is searchable, so lstat's answer is simulated.
func TestHiddenPrivateHome(t *testing.T) {
	acc := &userinfo.Account{Login: "private", UID: userUID, Home: filepath.Join(t.TempDir(), "private")}
	if err := os.Mkdir(acc.Home, 0o700); err != nil {
		t.Fatal(err)
	}
	var private func(string, *syscall.Stat_t) error
	if os.Geteuid() == 0 {
		private = func(p string, st *syscall.Stat_t) error {
			if strings.HasPrefix(p, acc.Home+"/") {
				return syscall.EACCES
			}
			return syscall.Lstat(p, st)
		}
	} else if err := os.Chmod(acc.Home, 0); err != nil {
		t.Fatal(err)
	} else {
		defer os.Chmod(acc.Home, 0o700)
	}
	ctx := context.Background()
	if (&Files{lstat: private}).Hidden(ctx, acc) {
		t.Errorf("Files{}.Hidden(private home) = true, want false")
	}
	if !(&Files{HideUnreadableHomes: true, lstat: private}).Hidden(ctx, acc) {
		t.Errorf("Files{HideUnreadableHomes: true}.Hidden(private home) = false, want true")
	}
	if got, err := (&Files{lstat: private}).ReadFile(ctx, acc, ".plan", 100); !errors.Is(err, userinfo.ErrNotFound) {
		t.Errorf("ReadFile(private home) = %q, %v, want ErrNotFound", got.Data, err)
	}
}

// TestHiddenFault: a failing file system (EIO, ESTALE) hides the user, with
// or without HideUnreadableHomes; only EACCES follows that switch.
func TestHiddenFault(t *testing.T) {
	acc := &userinfo.Account{Login: "nfs", UID: userUID, Home: "/net/broken/nfs"}
	for _, errno := range []syscall.Errno{syscall.EIO, syscall.ESTALE, syscall.ELOOP} {
		failing := func(string, *syscall.Stat_t) error { return errno }
		if !(&Files{lstat: failing}).Hidden(context.Background(), acc) {
			t.Errorf("Hidden with lstat failing %v = false, want true", errno)
		}
	}
}

func TestFilesCanceled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	acc := &userinfo.Account{Login: "x", UID: userUID, Home: t.TempDir()}
	if _, err := (&Files{}).ReadFile(ctx, acc, ".plan", 10); !errors.Is(err, userinfo.ErrNotFound) || !errors.Is(err, context.Canceled) {
		t.Errorf("ReadFile(canceled ctx) error = %v, want ErrNotFound and Canceled", err)
	}
}
