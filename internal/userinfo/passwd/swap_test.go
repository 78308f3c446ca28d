package passwd

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/openfinger/finger/internal/userinfo"
)

// swapAfterLstat returns an lstat that, for path p only, runs the real
// lstat(2) and then calls swap: the file is replaced between the checks on
// its name and the open, as a user racing the daemon would do.
func swapAfterLstat(t *testing.T, p string, swap func()) func(string, *syscall.Stat_t) error {
	return func(name string, st *syscall.Stat_t) error {
		err := syscall.Lstat(name, st)
		if name == p {
			swap()
		}
		return err
	}
}

// swapHome makes a home owned by the test's user holding a world-readable
// .plan and another published file, and returns the account.
func swapHome(t *testing.T) (*userinfo.Account, string) {
	t.Helper()
	home := t.TempDir()
	os.Chmod(home, 0o755)
	for name, data := range map[string]string{".plan": "the plan that was checked\n", "other": "another published file\n"} {
		if err := os.WriteFile(filepath.Join(home, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	uid := uint32(os.Geteuid())
	return &userinfo.Account{Login: "fgtest", UID: uid, GID: uid, Home: home}, home
}

// TestReadFileReplacedAfterLstat: a .plan replaced by another file after
// it was checked is not served, even when the other file would pass the
// checks itself: what is read is the file that was checked.
func TestReadFileReplacedAfterLstat(t *testing.T) {
	acc, home := swapHome(t)
	plan := filepath.Join(home, ".plan")
	f := &Files{lstat: swapAfterLstat(t, plan, func() {
		if err := os.Rename(filepath.Join(home, "other"), plan); err != nil {
			t.Error(err)
		}
	})}
	got, err := f.ReadFile(context.Background(), acc, ".plan", 4096)
	if !errors.Is(err, userinfo.ErrNotFound) {
		t.Fatalf("ReadFile of a .plan replaced after lstat = %q, %v; want ErrNotFound", got.Data, err)
	}
}

// TestReadFileSymlinkAfterLstat: a .plan that is a symbolic link when it
// is opened is never followed, even when the link leads to the very file
// lstat saw (so that every later check on the open file would pass).
func TestReadFileSymlinkAfterLstat(t *testing.T) {
	acc, home := swapHome(t)
	plan := filepath.Join(home, ".plan")
	moved := filepath.Join(home, "moved")
	f := &Files{lstat: swapAfterLstat(t, plan, func() {
		if err := os.Rename(plan, moved); err != nil {
			t.Error(err)
		}
		if err := os.Symlink(moved, plan); err != nil {
			t.Error(err)
		}
	})}
	got, err := f.ReadFile(context.Background(), acc, ".plan", 4096)
	if !errors.Is(err, userinfo.ErrNotFound) {
		t.Fatalf("ReadFile of a .plan made a symlink after lstat = %q, %v; want ErrNotFound", got.Data, err)
	}
}

// TestReadFileUnswapped: without a swap the same home's .plan is served,
// so the two tests above fail for the swap and nothing else.
func TestReadFileUnswapped(t *testing.T) {
	acc, _ := swapHome(t)
	got, err := (&Files{}).ReadFile(context.Background(), acc, ".plan", 4096)
	if err != nil || string(got.Data) != "the plan that was checked\n" {
		t.Fatalf("ReadFile(.plan) = %q, %v; want the plan", got.Data, err)
	}
}
