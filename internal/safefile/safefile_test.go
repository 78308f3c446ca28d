package safefile

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/openfinger/finger/internal/testenv"
)

const (
	ownerUID = 4242
	otherUID = 4343
)

// mkfile creates path with data and mode, owned by uid.
func mkfile(t *testing.T, path, data string, mode os.FileMode, uid int) {
	t.Helper()
	if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(path, uid, uid); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
}

// readSoon calls Read and fails the test if it has not returned within
// 10 seconds (a FIFO opened for reading without O_NONBLOCK blocks until
// a writer comes, that is forever).
func readSoon(t *testing.T, path string, r Rules, limit int64) (string, bool, error) {
	t.Helper()
	type result struct {
		data      []byte
		truncated bool
		err       error
	}
	ch := make(chan result, 1)
	go func() {
		d, tr, err := Read(path, r, limit)
		ch <- result{d, tr, err}
	}()
	select {
	case res := <-ch:
		return string(res.data), res.truncated, res.err
	case <-time.After(10 * time.Second):
		t.Fatalf("Read(%q) still blocked after 10s", path)
	}
	return "", false, nil
}

func TestRead(t *testing.T) {
	testenv.Root(t, "to create files owned by other users and device nodes")
	dir := t.TempDir()
	os.Chmod(dir, 0o755)
	j := func(n string) string { return filepath.Join(dir, n) }

	mkfile(t, j("good"), "Good news.\n", 0o644, 0)
	mkfile(t, j("owned"), "Alice's news.\n", 0o644, ownerUID)
	mkfile(t, j("other"), "planted\n", 0o644, otherUID)
	mkfile(t, j("groupw"), "group-writable\n", 0o664, 0)
	mkfile(t, j("otherw"), "world-writable\n", 0o646, 0)
	mkfile(t, j("private"), "private\n", 0o600, ownerUID)
	mkfile(t, j("big"), strings.Repeat("x", 100), 0o644, 0)
	mkfile(t, j("exact"), "0123456789", 0o644, 0)
	mkfile(t, j("empty"), "", 0o644, 0)
	if err := os.Symlink("/etc/shadow", j("shadowlink")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("good", j("goodlink")); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(j("fifo"), 0o644); err != nil {
		t.Fatal(err)
	}
	// A character device equal to /dev/zero: reading it never ends.
	if err := syscall.Mknod(j("device"), syscall.S_IFCHR|0o644, 1<<8|5); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(j("sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	mkfile(t, j("sub/inner"), "Inner.\n", 0o644, 0)
	// A directory of the path replaced by a symbolic link to /etc.
	if err := os.Symlink("/etc", j("etclink")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("sub", j("sublink")); err != nil {
		t.Fatal(err)
	}

	root := Rules{Owners: []uint32{0}, NotWritable: true, NoSymlinks: true}
	owner := Rules{Owners: []uint32{ownerUID}, NotWritable: true, NoSymlinks: true}
	published := Rules{Owners: []uint32{ownerUID}, OthersRead: true}
	lastOnly := Rules{Owners: []uint32{0}, NotWritable: true}
	tests := []struct {
		path      string
		rules     Rules
		limit     int64
		want      string
		truncated bool
		err       string // "" when the read succeeds; else the end of the error
	}{
		{"good", root, 1024, "Good news.\n", false, ""},
		{"owned", owner, 1024, "Alice's news.\n", false, ""},
		{"empty", root, 1024, "", false, ""},
		{"exact", root, 10, "0123456789", false, ""},
		{"big", root, 10, "xxxxxxxxxx", true, ""},
		{"big", root, 0, "", true, ""},
		{"big", root, -5, "", true, ""},
		{"big", root, 1<<63 - 1, strings.Repeat("x", 100), false, ""},
		{"sub/inner", root, 1024, "Inner.\n", false, ""},
		{"sublink/inner", lastOnly, 1024, "Inner.\n", false, ""},
		{"shadowlink", root, 1024, "", false, ": a symbolic link: refused"},
		{"shadowlink", lastOnly, 1024, "", false, ": a symbolic link: refused"},
		{"goodlink", root, 1024, "", false, ": a symbolic link: refused"},
		{"fifo", root, 1024, "", false, ": not a regular file: refused"},
		{"device", root, 1024, "", false, ": not a regular file: refused"},
		{"sub", root, 1024, "", false, ": not a regular file: refused"},
		{"other", root, 1024, "", false, ": owned by uid 4343, not by uid 0: refused"},
		{"good", owner, 1024, "", false, ": owned by uid 0, not by uid 4242: refused"},
		{"groupw", root, 1024, "", false, ": writable by group or others (mode 0664): refused"},
		{"otherw", root, 1024, "", false, ": writable by group or others (mode 0646): refused"},
		{"private", published, 1024, "", false, ": not readable by others: refused"},
		{"etclink/shadow", root, 1024, "", false, "/etclink: a symbolic link or not a directory: refused"},
		{"sublink/inner", root, 1024, "", false, "/sublink: a symbolic link or not a directory: refused"},
		{"missing", root, 1024, "", false, ": lstat: no such file or directory"},
	}
	for _, tt := range tests {
		p := j(tt.path)
		got, truncated, err := readSoon(t, p, tt.rules, tt.limit)
		if tt.err == "" {
			if err != nil || got != tt.want || truncated != tt.truncated {
				t.Errorf("Read(%q, %d) = %q, %v, %v, want %q, %v, nil", tt.path, tt.limit, got, truncated, err, tt.want, tt.truncated)
			}
			continue
		}
		if err == nil || !strings.HasPrefix(err.Error(), "safefile: "+p) || !strings.HasSuffix(err.Error(), tt.err) || got != "" {
			t.Errorf("Read(%q) = %q, %v, want an error ending in %q", tt.path, got, err, tt.err)
		}
		if strings.HasSuffix(tt.err, "refused") && !errors.Is(err, ErrRefused) {
			t.Errorf("Read(%q) error %v does not wrap ErrRefused", tt.path, err)
		}
	}
}

// TestReplacedWhileOpening: a file swapped between the check of its path
// and its opening is refused, whatever replaced it: another regular file
// that breaks no rule (caught by device and inode), a FIFO (which must not
// block the open) or a symbolic link.
func TestReplacedWhileOpening(t *testing.T) {
	testenv.Root(t, "to create files owned by root in a temporary directory")
	dir := t.TempDir()
	p := filepath.Join(dir, "motd")
	replacements := []struct {
		name string
		make func(string) error
		err  string
	}{
		{"regular file", func(tmp string) error { return os.WriteFile(tmp, []byte("swapped\n"), 0o644) },
			": replaced while being opened: refused"},
		{"FIFO", func(tmp string) error { return syscall.Mkfifo(tmp, 0o644) },
			": not a regular file: refused"},
		{"symbolic link", func(tmp string) error { return os.Symlink("/etc/shadow", tmp) },
			": open: too many levels of symbolic links"},
	}
	for _, rp := range replacements {
		for _, rules := range []Rules{
			{Owners: []uint32{0}, NotWritable: true, NoSymlinks: true},
			{Owners: []uint32{0}, NotWritable: true},
		} {
			os.Remove(p)
			mkfile(t, p, "original\n", 0o644, 0)
			rules.Lstat = func(path string, st *syscall.Stat_t) error {
				err := syscall.Lstat(path, st)
				tmp := path + ".new"
				if err := rp.make(tmp); err != nil {
					t.Fatal(err)
				}
				if err := os.Rename(tmp, path); err != nil {
					t.Fatal(err)
				}
				return err
			}
			got, _, err := readSoon(t, p, rules, 1024)
			if err == nil || !strings.HasSuffix(err.Error(), rp.err) {
				t.Errorf("Read(replaced by a %s, NoSymlinks %v) = %q, %v, want an error ending in %q", rp.name, rules.NoSymlinks, got, err, rp.err)
			}
		}
	}
}
