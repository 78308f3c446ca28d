package sqlite_test

import (
	"context"
	"database/sql"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/openfinger/finger/internal/store"
	"github.com/openfinger/finger/internal/store/sqlite"
	"github.com/openfinger/finger/internal/store/storetest"
)

func newURL(t *testing.T) string {
	return "sqlite:" + filepath.Join(t.TempDir(), "fingerd.db")
}

func TestConformance(t *testing.T) {
	storetest.TestStore(t, newURL)
}

func TestPath(t *testing.T) {
	tests := []struct {
		url, path string
		ok        bool
	}{
		{"sqlite:/var/lib/fingerd/fingerd.db", "/var/lib/fingerd/fingerd.db", true},
		{"sqlite:///var/lib/fingerd/fingerd.db", "/var/lib/fingerd/fingerd.db", true},
		{"sqlite:fingerd.db", "fingerd.db", true},
		{"sqlite:", "", false},
		{"sqlite://host/x.db", "", false},
		{"sqlite::memory:", "", false},
		{"sqlite:/x.db?_pragma=foo", "", false},
		{"postgres://x", "", false},
	}
	for _, tt := range tests {
		p, err := sqlite.Path(tt.url)
		if (err == nil) != tt.ok || p != tt.path {
			t.Errorf("Path(%q) = %q, %v; want %q, ok=%v", tt.url, p, err, tt.path, tt.ok)
		}
		if err != nil && !errors.Is(err, store.ErrInvalid) {
			t.Errorf("Path(%q) error %v does not wrap ErrInvalid", tt.url, err)
		}
	}
}

func TestBackup(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	st, err := store.Open(ctx, "sqlite:"+filepath.Join(dir, "a.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if _, err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	_, h := store.NewToken()
	if err := st.CreateUser(ctx, store.User{Name: "alice", Listed: true}, h); err != nil {
		t.Fatal(err)
	}
	if _, err := st.PutText(ctx, "alice", store.KindPlan, "backed up"); err != nil {
		t.Fatal(err)
	}
	b := st.(store.Backuper)
	copyPath := filepath.Join(dir, "copy.db")
	if err := b.Backup(ctx, copyPath); err != nil {
		t.Fatalf("Backup: %v", err)
	}
	if err := b.Backup(ctx, copyPath); !errors.Is(err, os.ErrExist) {
		t.Errorf("Backup over an existing file = %v, want ErrExist", err)
	}
	cp, err := store.Open(ctx, "sqlite:"+copyPath)
	if err != nil {
		t.Fatal(err)
	}
	defer cp.Close()
	if _, err := cp.Migrate(ctx); err != nil {
		t.Fatalf("Migrate of the copy: %v", err)
	}
	snap, err := cp.Snapshot(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(snap.Users) != 1 || snap.Users[0].Texts[store.KindPlan].Body != "backed up" {
		t.Errorf("the copy holds %+v, want alice with her plan", snap.Users)
	}
}

// A write waits for another process's lock, within BusyTimeout: it
// succeeds when the lock goes in time, and fails with ErrUnavailable
// saying the database is locked when it does not.
func TestLockedDatabase(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "fingerd.db")
	st, err := store.Open(ctx, "sqlite:"+path)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if _, err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	_, h := store.NewToken()
	if err := st.CreateUser(ctx, store.User{Name: "alice"}, h); err != nil {
		t.Fatal(err)
	}
	// Another process: a connection of its own that takes the write lock.
	other, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	conn, err := other.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		t.Fatal(err)
	}
	released := make(chan struct{})
	go func() {
		time.Sleep(200 * time.Millisecond)
		conn.ExecContext(ctx, "COMMIT")
		close(released)
	}()
	if _, err := st.PutText(ctx, "alice", store.KindPlan, "after the lock"); err != nil {
		t.Errorf("PutText while another process held the lock briefly: %v", err)
	}
	<-released

	if _, err := conn.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err = st.PutText(ctx, "alice", store.KindPlan, "never")
	if !errors.Is(err, store.ErrUnavailable) || !strings.Contains(err.Error(), "locked") {
		t.Errorf("PutText while the lock is held = %v, want ErrUnavailable saying locked", err)
	}
	if d := time.Since(start); d < sqlite.BusyTimeout/2 {
		t.Errorf("PutText gave up after %v, want it to wait about %v", d, sqlite.BusyTimeout)
	}
	// Reads go on while the lock is held.
	snap, err := st.Snapshot(ctx, 0)
	if err != nil || snap.Users[0].Texts[store.KindPlan].Body != "after the lock" {
		t.Errorf("Snapshot while the lock is held = %+v, %v", snap, err)
	}
	conn.ExecContext(ctx, "ROLLBACK")
}

// A write that fails alone in its commit leaves the store as it was, and
// the next write goes through.
func TestFailedWriteAlone(t *testing.T) {
	ctx := context.Background()
	st, err := store.Open(ctx, newURL(t))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if _, err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	v0, err := st.Version(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.PutText(ctx, "ghost", store.KindPlan, "boo"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("PutText(ghost) = %v, want ErrNotFound", err)
	}
	if v, _ := st.Version(ctx); v != v0 {
		t.Errorf("Version after a failed write = %d, want %d", v, v0)
	}
	if err := st.CreateUser(ctx, store.User{Name: "alice"}, store.HashToken("t")); err != nil {
		t.Fatalf("CreateUser after a failed write: %v", err)
	}
	c, err := st.PutText(ctx, "alice", store.KindPlan, "hello")
	if err != nil {
		t.Fatal(err)
	}
	if c.Version != v0+2 {
		t.Errorf("version of the second write = %d, want %d", c.Version, v0+2)
	}
	if h, err := st.History(ctx, "alice", store.KindPlan, 10); err != nil || len(h) != 1 {
		t.Errorf("History(alice) = %v, %v; want one change", h, err)
	}
}
