package postgres_test

import (
	"context"
	"database/sql"
	"errors"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/openfinger/finger/internal/store"
	"github.com/openfinger/finger/internal/store/postgres"
	"github.com/openfinger/finger/internal/store/postgres/pgtest"
	_ "github.com/openfinger/finger/internal/store/sqlite"
	"github.com/openfinger/finger/internal/store/storetest"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

func TestConformance(t *testing.T) {
	storetest.TestStore(t, func(t *testing.T) string { return pgtest.NewDatabase(t) })
}

func open(t *testing.T, url string) *postgres.Store {
	t.Helper()
	st, err := postgres.Open(context.Background(), url)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// Replicas starting together each run Migrate: every migration is applied
// once, and all of them see the same schema.
func TestMigrateConcurrent(t *testing.T) {
	url := pgtest.NewDatabase(t)
	const replicas = 8
	var wg sync.WaitGroup
	schemas := make([]int, replicas)
	errs := make([]error, replicas)
	for i := range replicas {
		st := open(t, url)
		wg.Go(func() { schemas[i], errs[i] = st.Migrate(context.Background()) })
	}
	wg.Wait()
	for i := range replicas {
		if errs[i] != nil || schemas[i] != schemas[0] || schemas[i] < 1 {
			t.Errorf("Migrate on replica %d = %d, %v; want %d, nil", i, schemas[i], errs[i], schemas[0])
		}
	}
	c, err := pgx.Connect(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(context.Background())
	var rows, distinct int
	if err := c.QueryRow(context.Background(), `SELECT count(*), count(DISTINCT version) FROM schema_migrations`).Scan(&rows, &distinct); err != nil {
		t.Fatal(err)
	}
	if rows != schemas[0] || distinct != rows {
		t.Errorf("schema_migrations has %d rows (%d versions), want %d: each migration recorded once", rows, distinct, schemas[0])
	}
}

func TestMigrateRefusesNewerSchema(t *testing.T) {
	url := pgtest.NewDatabase(t)
	st := open(t, url)
	have, err := st.Migrate(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	c, err := pgx.Connect(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(context.Background())
	if _, err := c.Exec(context.Background(), `INSERT INTO schema_migrations VALUES ($1, 'from the future', now())`, have+1); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Migrate(context.Background()); err == nil {
		t.Errorf("Migrate of a schema at version %d = nil error, want one (this build knows %d)", have+1, have)
	}
}

func migrated(t *testing.T, url string) *postgres.Store {
	t.Helper()
	st := open(t, url)
	if _, err := st.Migrate(context.Background()); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	return st
}

// waitAnnounce waits for ch to receive, up to 10 s.
func waitAnnounce(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case _, ok := <-ch:
		if !ok {
			t.Fatalf("%s: Watch channel closed", what)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("%s: no announcement within 10 s", what)
	}
}

// drain empties ch of announcements already made.
func drain(ch <-chan struct{}) {
	for {
		select {
		case <-ch:
		default:
			return
		}
	}
}

// A write through one replica is announced to another (NOTIFY reaches
// every listener, not only the writer's process).
func TestWatchAcrossReplicas(t *testing.T) {
	url := pgtest.NewDatabase(t)
	a, b := migrated(t, url), migrated(t, url)
	ctx := context.Background()
	ch := b.Watch(ctx)
	waitUp(t, b)
	drain(ch)
	if err := a.CreateUser(ctx, store.User{Name: "alice"}, store.HashToken("x")); err != nil {
		t.Fatal(err)
	}
	waitAnnounce(t, ch, "CreateUser on another replica")
	drain(ch)
	if _, err := a.PutText(ctx, "alice", store.KindPlan, "hello"); err != nil {
		t.Fatal(err)
	}
	waitAnnounce(t, ch, "PutText on another replica")
}

// waitUp waits until st's listening connection is up.
func waitUp(t *testing.T, st *postgres.Store) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for st.WatchErr() != nil {
		if time.Now().After(deadline) {
			t.Fatalf("listening connection not up after 20 s: %v", st.WatchErr())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// The listening connection is killed by the server: the store says so,
// listens again by itself, announces the reconnection (writes may have been
// missed), and goes on announcing writes.
func TestWatchReconnects(t *testing.T) {
	url := pgtest.NewDatabase(t)
	a, b := migrated(t, url), migrated(t, url)
	ctx := context.Background()
	ch := b.Watch(ctx)
	waitUp(t, b)
	srv := pgtest.Start(t)
	if err := srv.Exec(ctx, "postgres", `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
		WHERE query LIKE 'LISTEN%' AND pid <> pg_backend_pid()`); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for b.WatchErr() == nil {
		if time.Now().After(deadline) {
			t.Fatal("WatchErr() = nil for 20 s after the listening connection was killed")
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Logf("while down: WatchErr() = %v", b.WatchErr())
	waitUp(t, b)
	waitAnnounce(t, ch, "reconnection")
	drain(ch)
	if err := a.CreateUser(ctx, store.User{Name: "bob"}, store.HashToken("x")); err != nil {
		t.Fatal(err)
	}
	waitAnnounce(t, ch, "CreateUser after reconnecting")
}

// A database that stops: calls fail with ErrUnavailable and a reason,
// within bounded time, and work again when it is back, without reopening
// the store.
func TestDatabaseAway(t *testing.T) {
	url := pgtest.NewDatabase(t)
	st := migrated(t, url)
	ctx := context.Background()
	if err := st.CreateUser(ctx, store.User{Name: "alice"}, store.HashToken("x")); err != nil {
		t.Fatal(err)
	}
	ch := st.Watch(ctx)
	waitUp(t, st)
	srv := pgtest.Start(t)
	if err := srv.Stop(); err != nil {
		t.Fatal(err)
	}
	resumed := false
	defer func() {
		if !resumed {
			srv.Resume()
		}
	}()
	start := time.Now()
	_, err := st.PutText(ctx, "alice", store.KindPlan, "while away")
	if !errors.Is(err, store.ErrUnavailable) {
		t.Errorf("PutText with the database stopped = %v, want ErrUnavailable", err)
	}
	if d := time.Since(start); d > postgres.OpTimeout+5*time.Second {
		t.Errorf("PutText with the database stopped took %v, want at most about %v", d, postgres.OpTimeout)
	}
	t.Logf("PutText with the database stopped: %v", err)
	if _, err := st.Version(ctx); !errors.Is(err, store.ErrUnavailable) {
		t.Errorf("Version with the database stopped = %v, want ErrUnavailable", err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for st.WatchErr() == nil {
		if time.Now().After(deadline) {
			t.Fatal("WatchErr() = nil for 20 s with the database stopped")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := srv.Resume(); err != nil {
		t.Fatal(err)
	}
	resumed = true
	waitUp(t, st)
	waitAnnounce(t, ch, "reconnection after the database came back")
	// The pool's connections died with the server: the first calls may
	// meet one of them and fail; the store must recover on its own.
	deadline = time.Now().Add(20 * time.Second)
	for {
		_, err := st.PutText(ctx, "alice", store.KindPlan, "back")
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("PutText 20 s after the database came back: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	snap, err := st.Snapshot(ctx, 0)
	if err != nil || len(snap.Users) != 1 || snap.Users[0].Texts[store.KindPlan].Body != "back" {
		t.Errorf("Snapshot after the database came back = %+v, %v; want alice's plan \"back\"", snap, err)
	}
}

func TestOpenBadURL(t *testing.T) {
	for _, u := range []string{"postgres://a:secret@host:notaport/db", "postgres://%zz"} {
		_, err := store.Open(context.Background(), u)
		if !errors.Is(err, store.ErrInvalid) {
			t.Errorf("store.Open(%q) = %v, want ErrInvalid", u, err)
		}
		if err != nil && containsSecret(err) {
			t.Errorf("store.Open(%q) = %v: the error shows the password", u, err)
		}
	}
}

func containsSecret(err error) bool { return strings.Contains(err.Error(), "secret") }

// The PostgreSQL schema has the tables and columns of the SQLite one, and
// records the same migrations: one logical schema for both drivers.
func TestSameSchemaAsSQLite(t *testing.T) {
	ctx := context.Background()
	file := filepath.Join(t.TempDir(), "s.db")
	lite, err := store.Open(ctx, "sqlite:"+file)
	if err != nil {
		t.Fatal(err)
	}
	defer lite.Close()
	liteSchema, err := lite.Migrate(ctx)
	if err != nil {
		t.Fatal(err)
	}
	url := pgtest.NewDatabase(t)
	pgSchema, err := migrated(t, url).Migrate(ctx)
	if err != nil || pgSchema != liteSchema {
		t.Fatalf("Migrate = %d, %v; SQLite's = %d", pgSchema, err, liteSchema)
	}

	db, err := sql.Open("sqlite", file)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	want := map[string]bool{}
	rows, err := db.QueryContext(ctx, `SELECT m.name || '.' || p.name FROM sqlite_master m, pragma_table_info(m.name) p WHERE m.type = 'table'`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var col string
		rows.Scan(&col)
		want[col] = true
	}
	rows.Close()
	var liteMigrations []string
	rows, err = db.QueryContext(ctx, `SELECT version || ' ' || name FROM schema_migrations ORDER BY version`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var m string
		rows.Scan(&m)
		liteMigrations = append(liteMigrations, m)
	}
	rows.Close()

	c, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	got := map[string]bool{}
	pr, _ := c.Query(ctx, `SELECT table_name || '.' || column_name FROM information_schema.columns WHERE table_schema = 'public'`)
	cols, err := pgx.CollectRows(pr, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	for _, col := range cols {
		got[col] = true
	}
	if !maps.Equal(got, want) {
		t.Errorf("PostgreSQL columns = %v\nSQLite columns = %v", slices.Sorted(maps.Keys(got)), slices.Sorted(maps.Keys(want)))
	}
	pr, _ = c.Query(ctx, `SELECT version || ' ' || name FROM schema_migrations ORDER BY version`)
	pgMigrations, err := pgx.CollectRows(pr, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(pgMigrations, liteMigrations) {
		t.Errorf("PostgreSQL migrations = %q, SQLite's = %q", pgMigrations, liteMigrations)
	}
}
