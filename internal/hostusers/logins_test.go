package hostusers

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/openfinger/finger"
)

// sqliteFile creates an SQLite database at path with the statements.
func sqliteFile(t *testing.T, path string, stmts ...string) {
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

// warnings counts the warnings logged.
type warnings struct {
	mu    sync.Mutex
	lines []string
}

func (w *warnings) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelWarn }
func (w *warnings) Handle(_ context.Context, r slog.Record) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.lines = append(w.lines, r.Message)
	return nil
}
func (w *warnings) WithAttrs([]slog.Attr) slog.Handler { return w }
func (w *warnings) WithGroup(string) slog.Handler      { return w }

// TestLastLoginSources checks the last-login sources as fingerd wires
// them: the newest record of lastlog2 and wtmpdb shows, and a corrupt
// database gives no last-login line, no error text in the reply and one
// warning for the operator however many queries come.
func TestLastLoginSources(t *testing.T) {
	dir := t.TempDir()
	t1 := time.Now().Add(-2 * time.Hour).Truncate(time.Second)
	t2 := t1.Add(time.Hour)
	l2 := filepath.Join(dir, "lastlog2.db")
	sqliteFile(t, l2,
		`CREATE TABLE Lastlog2(Name TEXT PRIMARY KEY, Time INTEGER, TTY TEXT, RemoteHost TEXT, Service TEXT)`,
		fmt.Sprintf(`INSERT INTO Lastlog2 VALUES('hu_alice', %d, 'pts/1', 'old.example', 'sshd')`, t1.Unix()))
	wt := filepath.Join(dir, "wtmp.db")
	sqliteFile(t, wt,
		`CREATE TABLE wtmp(ID INTEGER PRIMARY KEY, Type INTEGER, User TEXT NOT NULL, Login INTEGER, Logout INTEGER, TTY TEXT, RemoteHost TEXT, Service TEXT) STRICT`,
		fmt.Sprintf(`INSERT INTO wtmp(Type, User, Login, TTY, RemoteHost, Service) VALUES(3, 'hu_alice', %d, 'pts/2', 'new.example', 'sshd')`, t2.UnixMicro()))
	garbage := filepath.Join(dir, "garbage.db")
	if err := os.WriteFile(garbage, bytes.Repeat([]byte("no database here "), 100), 0o644); err != nil {
		t.Fatal(err)
	}

	o := testOptions(t)
	o.Sources.Lastlog2 = l2
	o.Sources.Wtmpdb = []string{wt, filepath.Join(dir, "missing.db")}
	want := "Last login " + t2.Local().Format("Mon Jan _2 15:04 (MST)") + " on pts/2 from new.example\n"
	if got := ask(t, o, "hu_alice"); !strings.Contains(got, want) {
		t.Errorf("hu_alice with lastlog2 and a newer wtmpdb record:\n%s\nwant the line %q", got, want)
	}
	o.Sources.Wtmpdb = nil
	want = "Last login " + t1.Local().Format("Mon Jan _2 15:04 (MST)") + " on pts/1 from old.example\n"
	if got := ask(t, o, "hu_alice"); !strings.Contains(got, want) {
		t.Errorf("hu_alice with lastlog2 only:\n%s\nwant the line %q", got, want)
	}

	w := &warnings{}
	o.Sources.Wtmpdb = []string{garbage}
	o.Logger = slog.New(w)
	r, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		q, _ := finger.ParseQuery("hu_alice")
		var b bytes.Buffer
		r.ServeFinger(context.Background(), &b, &finger.Request{Query: q, Line: "hu_alice"})
		got := b.String()
		if !strings.Contains(got, "Login: hu_alice") {
			t.Fatalf("query %d with a corrupt wtmpdb: %q", i, got)
		}
		for _, bad := range []string{"Last login", "Never logged in", "database", "sqlite", "SQLite", "logins", garbage} {
			if strings.Contains(got, bad) {
				t.Fatalf("query %d with a corrupt wtmpdb shows %q:\n%s", i, bad, got)
			}
		}
	}
	if len(w.lines) != 1 {
		t.Errorf("10 queries with a corrupt wtmpdb logged %d warnings, want 1: %q", len(w.lines), w.lines)
	}
}
