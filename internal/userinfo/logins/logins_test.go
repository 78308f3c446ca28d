package logins

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/openfinger/finger/internal/testenv"
	"github.com/openfinger/finger/internal/userinfo"
	"github.com/openfinger/finger/internal/userinfo/lastlog"
	"github.com/openfinger/finger/internal/userinfo/userinfotest"
)

// The schemas exactly as liblastlog2 (util-linux 2.41) and wtmpdb (0.73)
// create them; read back from the files of a Debian 13 system.
const (
	lastlog2Schema = `CREATE TABLE Lastlog2(Name TEXT PRIMARY KEY, Time INTEGER, TTY TEXT, RemoteHost TEXT, Service TEXT)`
	wtmpdbSchema   = `CREATE TABLE wtmp(ID INTEGER PRIMARY KEY, Type INTEGER, User TEXT NOT NULL, Login INTEGER, Logout INTEGER, TTY TEXT, RemoteHost TEXT, Service TEXT) STRICT`
)

// t0 is a time with whole seconds (lastlog2 keeps seconds).
var t0 = time.Date(2026, 11, 23, 9, 5, 7, 0, time.UTC)

type l2row struct {
	name      string
	sec       any // int64 or nil
	tty, host any // string or nil
}

type wrow struct {
	typ       int64
	user      string
	login     int64 // microseconds
	logout    any
	tty, host any
}

func execAll(t testing.TB, path string, stmts ...string) {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, s := range stmts {
		if _, err := db.Exec(s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
}

func writeLastlog2(t testing.TB, path string, rows []l2row) {
	t.Helper()
	writeRows(t, path, lastlog2Schema, `INSERT INTO Lastlog2 VALUES(?, ?, ?, ?, 'sshd')`, rows,
		func(r l2row) []any { return []any{r.name, r.sec, r.tty, r.host} })
}

func writeWtmpdb(t testing.TB, path string, rows []wrow) {
	t.Helper()
	writeRows(t, path, wtmpdbSchema, `INSERT INTO wtmp(Type, User, Login, Logout, TTY, RemoteHost, Service) VALUES(?, ?, ?, ?, ?, ?, 'sshd')`, rows,
		func(r wrow) []any { return []any{r.typ, r.user, r.login, r.logout, r.tty, r.host} })
}

// writeRows creates the database at path with schema and inserts rows,
// each with the arguments args gives it, in one transaction.
func writeRows[R any](t testing.TB, path, schema, insert string, rows []R, args func(R) []any) {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	tx, err := db.Begin()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(schema); err != nil {
		t.Fatal(err)
	}
	for _, r := range rows {
		if _, err := tx.Exec(insert, args(r)...); err != nil {
			t.Fatal(err)
		}
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
}

func acct(login string, uid uint32) *userinfo.Account {
	return &userinfo.Account{Login: login, UID: uid}
}

func TestLastlog2(t *testing.T) {
	path := filepath.Join(t.TempDir(), "lastlog2.db")
	writeLastlog2(t, path, []l2row{
		{"alice", t0.Unix(), "pts/3", "client.example.org"},
		{"bob", t0.Unix() - 60, "tty2", nil},      // local login: no host
		{"carol", int64(0), "pts/1", "x"},         // time 0: never
		{"dave", nil, nil, nil},                   // no time at all
		{"erin", t0.Unix() + 1, nil, "h.example"}, // no tty
	})
	alice, bob, erin := acct("alice", 1001), acct("bob", 1002), acct("erin", 1005)
	records := map[*userinfo.Account]userinfo.LastLogin{
		alice: {Time: t0, TTY: "pts/3", Host: "client.example.org"},
		bob:   {Time: t0.Add(-time.Minute), TTY: "tty2"},
		erin:  {Time: t0.Add(time.Second), Host: "h.example"},
	}
	never := []*userinfo.Account{acct("carol", 1003), acct("dave", 1004), acct("nobody-here", 1006), acct("Alice", 1001), acct("alice'--", 1)}
	src := &Lastlog2{Path: path, MaxWait: concurrentWait}
	t.Cleanup(func() { src.Close() })
	userinfotest.TestLastLogins(t, src, records, never)
}

// concurrentWait is MaxWait for the sources that userinfotest checks
// with eight concurrent readers: they take turns on one connection, and
// under the race detector on a busy machine the last in line waits longer
// than DefaultMaxWait, which is about a writer holding the file (see
// TestWriteLocked), not about other readers.
const concurrentWait = 30 * time.Second

func TestWtmpdb(t *testing.T) {
	dir := t.TempDir()
	us := func(tm time.Time) int64 { return tm.UnixMicro() }
	path := filepath.Join(dir, "wtmp.db")
	writeWtmpdb(t, path, []wrow{
		{2, "reboot", us(t0.Add(-time.Hour)), nil, "~", "6.12.0"}, // BOOT_TIME
		{3, "alice", us(t0.Add(-30 * time.Minute)), us(t0.Add(-20 * time.Minute)), "pts/1", "old.example"},
		{3, "alice", us(t0.Add(123456 * time.Microsecond)), nil, "pts/3", "client.example.org"}, // still open
		{3, "alice", us(t0.Add(-10 * time.Minute)), us(t0), "pts/2", ""},
		{3, "bob", us(t0.Add(-time.Minute)), us(t0), "tty2", nil},
		{1, "carol", us(t0), nil, "pts/9", ""}, // not a user session
	})
	alice, bob := acct("alice", 1001), acct("bob", 1002)
	records := map[*userinfo.Account]userinfo.LastLogin{
		alice: {Time: t0.Add(123456 * time.Microsecond), TTY: "pts/3", Host: "client.example.org"},
		bob:   {Time: t0.Add(-time.Minute), TTY: "tty2"},
	}
	never := []*userinfo.Account{acct("carol", 1003), acct("reboot", 0), acct("nobody-here", 1006)}

	// The default layout: the file in one place, a symbolic link at the
	// old path.
	link := filepath.Join(dir, "old", "wtmp.db")
	if err := os.Mkdir(filepath.Dir(link), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("../wtmp.db", link); err != nil {
		t.Fatal(err)
	}
	src := &Wtmpdb{Paths: []string{path, link, filepath.Join(dir, "missing.db")}, MaxWait: concurrentWait}
	t.Cleanup(func() { src.Close() })
	userinfotest.TestLastLogins(t, src, records, never)

	// Two separate files: the newest record wins.
	other := filepath.Join(dir, "other.db")
	writeWtmpdb(t, other, []wrow{
		{3, "bob", us(t0.Add(time.Hour)), nil, "pts/7", "later.example"},
		{3, "alice", us(t0.Add(-time.Hour)), nil, "pts/8", ""},
	})
	both := &Wtmpdb{Paths: []string{path, other}, MaxWait: concurrentWait}
	t.Cleanup(func() { both.Close() })
	records[bob] = userinfo.LastLogin{Time: t0.Add(time.Hour), TTY: "pts/7", Host: "later.example"}
	userinfotest.TestLastLogins(t, both, records, never)

	// A session recorded after the source has read the file shows at
	// once, for a known user and for a new one.
	execAll(t, path,
		fmt.Sprintf(`INSERT INTO wtmp(Type, User, Login, TTY, RemoteHost, Service) VALUES(3, 'alice', %d, 'pts/4', 'new.example', 'sshd')`, us(t0.Add(2*time.Hour))),
		fmt.Sprintf(`INSERT INTO wtmp(Type, User, Login, TTY, RemoteHost, Service) VALUES(3, 'carol', %d, 'tty1', NULL, 'login')`, us(t0.Add(3*time.Hour))))
	records[alice] = userinfo.LastLogin{Time: t0.Add(2 * time.Hour), TTY: "pts/4", Host: "new.example"}
	records[acct("carol", 1003)] = userinfo.LastLogin{Time: t0.Add(3 * time.Hour), TTY: "tty1"}
	userinfotest.TestLastLogins(t, both, records, []*userinfo.Account{acct("reboot", 0), acct("nobody-here", 1006)})
}

// TestNewest checks that the newest record of the old lastlog file,
// lastlog2 and wtmpdb wins.
func TestNewest(t *testing.T) {
	dir := t.TempDir()
	ll := filepath.Join(dir, "lastlog")
	// alice (UID 1001) in the old file, a day before the others.
	rec := make([]byte, lastlog.RecordSize)
	old := uint32(t0.Add(-24 * time.Hour).Unix())
	rec[0], rec[1], rec[2], rec[3] = byte(old), byte(old>>8), byte(old>>16), byte(old>>24)
	copy(rec[4:], "tty1")
	f, err := os.Create(ll)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt(rec, 1001*lastlog.RecordSize); err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt(rec, 1004*lastlog.RecordSize); err != nil {
		t.Fatal(err)
	}
	f.Close()
	l2 := filepath.Join(dir, "lastlog2.db")
	writeLastlog2(t, l2, []l2row{
		{"alice", t0.Unix(), "pts/1", "a.example"},
		{"bob", t0.Unix(), "pts/2", "b.example"},
	})
	wt := filepath.Join(dir, "wtmp.db")
	writeWtmpdb(t, wt, []wrow{
		{3, "alice", t0.Add(-time.Hour).UnixMicro(), nil, "pts/0", "older.example"},
		{3, "bob", t0.Add(time.Hour).UnixMicro(), nil, "pts/5", "newer.example"},
		{3, "carol", t0.UnixMicro(), nil, "pts/6", ""},
	})
	src := Newest{&lastlog.File{Path: ll}, &Lastlog2{Path: l2, MaxWait: concurrentWait}, &Wtmpdb{Paths: []string{wt}, MaxWait: concurrentWait}}
	t.Cleanup(func() { src.Close() })
	records := map[*userinfo.Account]userinfo.LastLogin{
		acct("alice", 1001): {Time: t0, TTY: "pts/1", Host: "a.example"},
		acct("bob", 1002):   {Time: t0.Add(time.Hour), TTY: "pts/5", Host: "newer.example"},
		acct("carol", 1003): {Time: t0, TTY: "pts/6"},
		acct("dave", 1004):  {Time: t0.Add(-24 * time.Hour), TTY: "tty1"},
	}
	userinfotest.TestLastLogins(t, src, records, []*userinfo.Account{acct("erin", 1005)})

	// A failing source makes the answer a failure, not an older record.
	garbage := filepath.Join(dir, "garbage.db")
	if err := os.WriteFile(garbage, bytes.Repeat([]byte("not sqlite "), 500), 0o644); err != nil {
		t.Fatal(err)
	}
	bad := Newest{&lastlog.File{Path: ll}, &Lastlog2{Path: garbage}}
	t.Cleanup(func() { bad.Close() })
	if got, err := bad.LastLogin(context.Background(), acct("dave", 1004)); err == nil || errors.Is(err, userinfo.ErrNotFound) {
		t.Errorf("Newest with a corrupt source: LastLogin = %+v, %v; want a failure", got, err)
	}
}

// logCounter counts the log records by level.
type logCounter struct {
	mu    sync.Mutex
	lines []string
}

func (c *logCounter) Enabled(context.Context, slog.Level) bool { return true }
func (c *logCounter) Handle(_ context.Context, r slog.Record) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	line := r.Level.String() + " " + r.Message
	r.Attrs(func(a slog.Attr) bool { line += " " + a.String(); return true })
	c.lines = append(c.lines, line)
	return nil
}
func (c *logCounter) WithAttrs([]slog.Attr) slog.Handler { return c }
func (c *logCounter) WithGroup(string) slog.Handler      { return c }
func (c *logCounter) count(level string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, l := range c.lines {
		if strings.HasPrefix(l, level+" ") {
			n++
		}
	}
	return n
}

// TestFailuresLoggedOnce checks that a broken database gives no record,
// a failure that is not ErrNotFound, within the read's time, and one log
// line however many queries ask.
func TestFailuresLoggedOnce(t *testing.T) {
	dir := t.TempDir()
	cases := map[string][]byte{
		"garbage": bytes.Repeat([]byte("\x00garbage\xff"), 1000),
		"empty":   {},
		"truncated": func() []byte {
			p := filepath.Join(dir, "full.db")
			rows := make([]l2row, 2000)
			for i := range rows {
				rows[i] = l2row{fmt.Sprintf("user%d", i), t0.Unix(), "pts/1", "h"}
			}
			writeLastlog2(t, p, rows)
			b, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			return b[:len(b)/2]
		}(),
	}
	for name, data := range cases {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(dir, name+".db")
			if err := os.WriteFile(path, data, 0o644); err != nil {
				t.Fatal(err)
			}
			logs := &logCounter{}
			src := &Lastlog2{Path: path, Logger: slog.New(logs)}
			t.Cleanup(func() { src.Close() })
			for i := range 20 {
				_, err := src.LastLogin(context.Background(), acct(fmt.Sprintf("user%d", 1990+i%20), 1000))
				if err == nil || errors.Is(err, userinfo.ErrNotFound) {
					// Half a database may still hold the first pages.
					if name == "truncated" {
						continue
					}
					t.Fatalf("LastLogin on a %s file = %v, want a failure", name, err)
				}
				if !errors.Is(err, userinfo.ErrReported) {
					t.Fatalf("LastLogin on a %s file: error %v does not wrap ErrReported", name, err)
				}
			}
			if n := logs.count("WARN"); n != 1 {
				t.Errorf("%d warnings after 20 queries, want 1: %q", n, logs.lines)
			}
		})
	}
}

// TestMissingIsNotAFailure checks that a database that does not exist is
// "no record", silently.
func TestMissingIsNotAFailure(t *testing.T) {
	logs := &logCounter{}
	src := Newest{
		&Lastlog2{Path: filepath.Join(t.TempDir(), "none.db"), Logger: slog.New(logs)},
		&Wtmpdb{Paths: []string{filepath.Join(t.TempDir(), "none.db")}, Logger: slog.New(logs)},
	}
	if _, err := src.LastLogin(context.Background(), acct("alice", 1001)); !errors.Is(err, userinfo.ErrNotFound) {
		t.Errorf("LastLogin without databases: %v, want ErrNotFound", err)
	}
	if len(logs.lines) != 0 {
		t.Errorf("logged %q for missing databases", logs.lines)
	}
}

// TestReplaced checks that a database renamed over the old one is read
// at once.
func TestReplaced(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "lastlog2.db")
	writeLastlog2(t, path, []l2row{{"alice", t0.Unix(), "pts/1", "first.example"}})
	src := &Lastlog2{Path: path}
	t.Cleanup(func() { src.Close() })
	ctx := context.Background()
	a := acct("alice", 1001)
	if ll, err := src.LastLogin(ctx, a); err != nil || ll.Host != "first.example" {
		t.Fatalf("LastLogin = %+v, %v; want first.example", ll, err)
	}
	next := filepath.Join(dir, "next.db")
	writeLastlog2(t, next, []l2row{{"alice", t0.Unix() + 60, "pts/2", "second.example"}})
	if err := os.Rename(next, path); err != nil {
		t.Fatal(err)
	}
	if ll, err := src.LastLogin(ctx, a); err != nil || ll.Host != "second.example" || !ll.Time.Equal(t0.Add(time.Minute)) {
		t.Fatalf("LastLogin after the file was replaced = %+v, %v; want second.example", ll, err)
	}
	// Replaced by garbage, then by a good file again.
	logs := &logCounter{}
	src2 := &Lastlog2{Path: path, Logger: slog.New(logs)}
	t.Cleanup(func() { src2.Close() })
	if err := os.WriteFile(next, []byte("garbage garbage garbage garbage garbage garbage garbage garbage garbage garbage garbage garbage garbage"), 0o644); err != nil {
		t.Fatal(err)
	}
	os.Rename(next, path)
	if _, err := src2.LastLogin(ctx, a); err == nil || errors.Is(err, userinfo.ErrNotFound) {
		t.Fatalf("LastLogin on garbage = %v, want a failure", err)
	}
	writeLastlog2(t, next, []l2row{{"alice", t0.Unix() + 120, "pts/3", "third.example"}})
	os.Rename(next, path)
	if ll, err := src2.LastLogin(ctx, a); err != nil || ll.Host != "third.example" {
		t.Fatalf("LastLogin after a good file came back = %+v, %v", ll, err)
	}
	if logs.count("WARN") != 1 || logs.count("INFO") != 1 {
		t.Errorf("log = %q, want one warning and one recovery", logs.lines)
	}
}

// The helper process: the test binary run again with loginsHelperEnv set
// acts as another program using the database (see TestMain).
const loginsHelperEnv = "LOGINS_TEST_HELPER"

func TestMain(m *testing.M) {
	switch os.Getenv(loginsHelperEnv) {
	case "":
		os.Exit(m.Run())
	case "lock":
		os.Exit(helperLock(os.Args[len(os.Args)-2], os.Args[len(os.Args)-1]))
	case "read":
		os.Exit(helperRead(os.Args[len(os.Args)-2], os.Args[len(os.Args)-1]))
	}
	os.Exit(2)
}

// helperLock opens the database read-write (in WAL mode when mode is
// "wal"), starts an exclusive transaction that changes alice's record,
// says "locked" and holds it until its standard input closes; then it
// commits and says "committed".
func helperLock(path, mode string) int {
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		fmt.Println(err)
		return 1
	}
	db.SetMaxOpenConns(1)
	ctx := context.Background()
	c, err := db.Conn(ctx)
	if err != nil {
		fmt.Println(err)
		return 1
	}
	if mode == "wal" {
		if _, err := c.ExecContext(ctx, "PRAGMA journal_mode=WAL"); err != nil {
			fmt.Println(err)
			return 1
		}
	}
	for _, s := range []string{"BEGIN EXCLUSIVE", "UPDATE Lastlog2 SET Time = Time + 3600, TTY = 'pts/99' WHERE Name = 'alice'"} {
		if _, err := c.ExecContext(ctx, s); err != nil {
			fmt.Println(s, err)
			return 1
		}
	}
	fmt.Println("locked")
	bufio.NewReader(os.Stdin).ReadString('\n')
	if _, err := c.ExecContext(ctx, "COMMIT"); err != nil {
		fmt.Println(err)
		return 1
	}
	// Closing the last connection of a WAL database removes -wal and -shm.
	if err := errors.Join(c.Close(), db.Close()); err != nil {
		fmt.Println(err)
		return 1
	}
	fmt.Println("committed")
	return 0
}

// holder is a helper process holding a database under a write
// transaction.
type holder struct {
	cmd   *exec.Cmd
	stdin interface{ Close() error }
	out   *bufio.Reader
}

func holdLock(t *testing.T, path, mode string) *holder {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$", path, mode)
	cmd.Env = append(os.Environ(), loginsHelperEnv+"=lock")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	h := &holder{cmd: cmd, stdin: stdin, out: bufio.NewReader(stdout)}
	t.Cleanup(func() { h.stdin.Close(); h.cmd.Wait() })
	if line, _ := h.out.ReadString('\n'); line != "locked\n" {
		t.Fatalf("lock helper: %q", line)
	}
	return h
}

// release commits the transaction and waits for the helper to end.
func (h *holder) release(t *testing.T) {
	t.Helper()
	h.stdin.Close()
	if line, _ := h.out.ReadString('\n'); line != "committed\n" {
		t.Fatalf("lock helper: %q", line)
	}
	if err := h.cmd.Wait(); err != nil {
		t.Fatalf("lock helper: %v", err)
	}
}

// TestWriteLocked checks a database another process holds under BEGIN
// EXCLUSIVE: in rollback-journal mode the read gives up within MaxWait
// with one log line however many queries come; in WAL mode readers are
// not blocked and see the last committed record. After the commit the new
// record shows.
func TestWriteLocked(t *testing.T) {
	for _, mode := range []string{"delete", "wal"} {
		t.Run(mode, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "lastlog2.db")
			writeLastlog2(t, path, []l2row{{"alice", t0.Unix(), "pts/1", "a.example"}})
			logs := &logCounter{}
			src := &Lastlog2{Path: path, MaxWait: 200 * time.Millisecond, Logger: slog.New(logs)}
			t.Cleanup(func() { src.Close() })
			a := acct("alice", 1001)
			h := holdLock(t, path, mode)
			for range 5 {
				start := time.Now()
				ll, err := src.LastLogin(context.Background(), a)
				if d := time.Since(start); d > 5*time.Second {
					t.Fatalf("LastLogin took %v under a write lock", d)
				}
				switch mode {
				case "delete":
					if err == nil || errors.Is(err, userinfo.ErrNotFound) || !errors.Is(err, userinfo.ErrReported) {
						t.Fatalf("LastLogin under a write lock = %+v, %v; want a reported failure", ll, err)
					}
				case "wal":
					if err != nil || !ll.Time.Equal(t0) || ll.TTY != "pts/1" {
						t.Fatalf("LastLogin during a WAL write = %+v, %v; want the committed record", ll, err)
					}
				}
			}
			// The query's own context ends the wait too.
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			if _, err := src.LastLogin(ctx, a); !errors.Is(err, context.Canceled) && mode == "delete" {
				t.Errorf("LastLogin with a canceled context = %v", err)
			}
			h.release(t)
			ll, err := src.LastLogin(context.Background(), a)
			if err != nil || !ll.Time.Equal(t0.Add(time.Hour)) || ll.TTY != "pts/99" {
				t.Fatalf("LastLogin after the commit = %+v, %v; want the new record", ll, err)
			}
			want := map[string]int{"delete": 1, "wal": 0}[mode]
			if n := logs.count("WARN"); n != want {
				t.Errorf("%d warnings, want %d: %q", n, want, logs.lines)
			}
		})
	}
}

// helperRead reads alice's and bob's records from a lastlog2 database and
// prints them as JSON, one line each.
func helperRead(path, _ string) int {
	logs := &logCounter{}
	src := &Lastlog2{Path: path, Logger: slog.New(logs)}
	defer src.Close()
	enc := json.NewEncoder(os.Stdout)
	for _, login := range []string{"alice", "bob", "alice"} {
		ll, err := src.LastLogin(context.Background(), acct(login, 1))
		msg := ""
		if err != nil {
			msg = err.Error()
		}
		enc.Encode(map[string]any{"login": login, "time": ll.Time.Unix(), "tty": ll.TTY, "host": ll.Host, "err": msg})
	}
	enc.Encode(map[string]any{"log": logs.lines, "direct": src.get().direct})
	return 0
}

// TestWALReadOnlyDirectory checks a WAL-mode database in a directory the
// reader cannot write, as fingerd running as nobody meets in /var/lib:
// with no writer (no -wal or -shm file) and with a writer holding an
// exclusive transaction. The reader runs as nobody, in another process;
// the directory must stay free of files it would have created.
func TestWALReadOnlyDirectory(t *testing.T) {
	testenv.Root(t, "to run the reader as nobody")
	// A directory nobody can enter, with a copy of the test binary.
	top, err := os.MkdirTemp("", "ll2-logins-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(top) })
	if err := os.Chmod(top, 0o755); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(top, "logins.test")
	data, err := os.ReadFile(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, data, 0o755); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(top, "lastlog")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "lastlog2.db")
	writeLastlog2(t, path, []l2row{{"alice", t0.Unix(), "pts/1", "a.example"}, {"bob", t0.Unix() - 5, "tty3", nil}})
	execAll(t, path, "PRAGMA journal_mode=WAL", "UPDATE Lastlog2 SET RemoteHost = RemoteHost WHERE 0")
	os.Chmod(path, 0o644)
	if exists(path + "-wal") {
		t.Fatalf("-wal left behind by a closed connection")
	}
	if wal, err := walMode(path); err != nil || !wal {
		t.Fatalf("walMode = %v, %v; want a WAL database", wal, err)
	}
	read := func() []map[string]any {
		t.Helper()
		cmd := exec.Command(bin, "-test.run=^$", path, "")
		cmd.Env = append(os.Environ(), loginsHelperEnv+"=read")
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("reader as nobody: %v: %s", err, out)
		}
		var res []map[string]any
		dec := json.NewDecoder(bytes.NewReader(out))
		for {
			var m map[string]any
			if err := dec.Decode(&m); err != nil {
				break
			}
			res = append(res, m)
		}
		if len(res) != 4 {
			t.Fatalf("reader output %q", out)
		}
		return res
	}
	check := func(res []map[string]any, wantAlice int64, direct bool) {
		t.Helper()
		if res[3]["direct"] != direct {
			t.Errorf("as nobody: read directly = %v, want %v (%v)", res[3]["direct"], direct, res)
		}
		for _, r := range res[:3] {
			want := map[string]any{"alice": float64(wantAlice), "bob": float64(t0.Unix() - 5)}[r["login"].(string)]
			if r["err"] != "" || r["time"] != want {
				t.Errorf("as nobody: %v, want time %v", r, want)
			}
		}
		if logs := res[3]["log"]; logs != nil {
			t.Errorf("as nobody: logged %v", logs)
		}
	}
	check(read(), t0.Unix(), true)
	if exists(path+"-wal") || exists(path+"-shm") {
		t.Errorf("the reader created -wal or -shm files")
	}
	// A writer in the middle of a transaction: its -wal and -shm exist,
	// the committed record shows.
	h := holdLock(t, path, "wal")
	check(read(), t0.Unix(), false)
	h.release(t)
	check(read(), t0.Unix()+3600, true)
}
