// Package sqlite is the embedded store driver: the directory of hosted
// users in one SQLite file, through modernc.org/sqlite (pure Go, no cgo).
// Importing it registers the URL scheme "sqlite":
//
//	sqlite:/var/lib/fingerd/fingerd.db
//
// The file is in WAL mode, so readers never wait for the writer. Writes go
// through one connection of the process and wait up to BusyTimeout for
// other processes (such as `fingerd user add`) holding the write lock; a
// lock held longer, a read-only or full disk, or an I/O error fail with an
// error wrapping store.ErrUnavailable that says which. Each commit is
// synced to disk before a write returns.
package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	msqlite "modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/openfinger/finger/internal/store"
)

// BusyTimeout is how long a write waits for another process's write lock.
const BusyTimeout = 5 * time.Second

// readers is the number of read connections.
const readers = 4

func init() {
	store.Register("sqlite", func(ctx context.Context, u string) (store.Store, error) {
		return Open(ctx, u)
	})
}

// Store is a store.Store in one SQLite file.
type Store struct {
	path   string
	w      *sql.DB // one connection: every write of this process
	r      *sql.DB // read connections
	wstmts stmtCache
	rstmts stmtCache
	closed atomic.Bool

	jobs       chan *writeJob
	stop       chan struct{} // closed by Close
	writerDone chan struct{}

	watchers store.Announcer
}

var (
	_ store.Store    = (*Store)(nil)
	_ store.Watcher  = (*Store)(nil)
	_ store.Backuper = (*Store)(nil)
)

// Path returns the file name in a "sqlite:" URL: "sqlite:/x/y.db" and
// "sqlite:///x/y.db" are /x/y.db, "sqlite:y.db" is y.db.
func Path(u string) (string, error) {
	p, ok := strings.CutPrefix(u, "sqlite:")
	if !ok {
		return "", fmt.Errorf("%w: sqlite: URL %q does not start with sqlite:", store.ErrInvalid, u)
	}
	if rest, ok := strings.CutPrefix(p, "//"); ok {
		if !strings.HasPrefix(rest, "/") {
			return "", fmt.Errorf("%w: sqlite: URL %q names a host; want sqlite:/path/to/file.db", store.ErrInvalid, u)
		}
		p = rest
	}
	if p == "" || strings.ContainsAny(p, "?#\x00") || p == ":memory:" {
		return "", fmt.Errorf("%w: sqlite: URL %q: want sqlite:/path/to/file.db", store.ErrInvalid, u)
	}
	return p, nil
}

// Open opens (creating if need be) the SQLite file named by the URL
// ("sqlite:/path/to/file.db"). It does not migrate; call Migrate.
func Open(ctx context.Context, u string) (*Store, error) {
	path, err := Path(u)
	if err != nil {
		return nil, err
	}
	dsn := func(extra string) string {
		q := url.Values{}
		q.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", BusyTimeout.Milliseconds()))
		q.Add("_pragma", "journal_mode(WAL)")
		q.Add("_pragma", "synchronous(FULL)")
		q.Add("_pragma", "foreign_keys(1)")
		// Statement journals and temporary tables in memory: the daemon
		// may write only the store's directory (Landlock), not /tmp.
		q.Add("_pragma", "temp_store(2)")
		if extra != "" {
			q.Add("_pragma", extra)
		}
		return "file:" + (&url.URL{Path: path}).EscapedPath() + "?" + q.Encode()
	}
	w, err := sql.Open("sqlite", dsn("")+"&_txlock=immediate")
	if err != nil {
		return nil, fmt.Errorf("sqlite: %w", err)
	}
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxIdleTime(0)
	r, err := sql.Open("sqlite", dsn("query_only(1)"))
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("sqlite: %w", err)
	}
	r.SetMaxOpenConns(readers)
	r.SetMaxIdleConns(readers)
	s := &Store{path: path, w: w, r: r}
	s.wstmts.db, s.rstmts.db = w, r
	s.jobs, s.stop, s.writerDone = make(chan *writeJob), make(chan struct{}), make(chan struct{})
	// Connect now, so that a file that cannot be opened is an error of
	// Open and not of the first query.
	go s.writer()
	if err := w.PingContext(ctx); err != nil {
		s.Close()
		return nil, s.fail("open "+path, err)
	}
	return s, nil
}

// fail turns a driver error into the store's: lock, disk and I/O faults
// wrap store.ErrUnavailable with the reason; other errors are returned
// with the package prefix.
func (s *Store) fail(op string, err error) error {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("sqlite: %s: %w", op, err)
	}
	var se *msqlite.Error
	if errors.As(err, &se) {
		if reason := s.reason(se.Code() & 0xff); reason != "" {
			return fmt.Errorf("sqlite: %s: %w: %s (%v)", op, store.ErrUnavailable, reason, err)
		}
	}
	return fmt.Errorf("sqlite: %s: %w", op, err)
}

// reason names the fault behind a primary SQLite result code, or is ""
// for errors that are not faults of the disk or the database file.
func (s *Store) reason(code int) string {
	switch code {
	case sqlite3.SQLITE_READONLY, sqlite3.SQLITE_IOERR, sqlite3.SQLITE_CANTOPEN:
		// A file system that turned read-only under the open database
		// (ext4's errors=remount-ro on a failing disk) shows as an I/O
		// error: say what the operator has to fix.
		if readOnlyFS(filepath.Dir(s.path)) {
			return "disk is read-only"
		}
	}
	switch code {
	case sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED:
		return fmt.Sprintf("database locked for more than %v", BusyTimeout)
	case sqlite3.SQLITE_READONLY:
		return "database is read-only"
	case sqlite3.SQLITE_FULL:
		return "disk full"
	case sqlite3.SQLITE_IOERR:
		return "I/O error"
	case sqlite3.SQLITE_CANTOPEN:
		return "cannot open the database file"
	case sqlite3.SQLITE_NOMEM:
		return "out of memory"
	case sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB:
		return "database file is damaged or not a database"
	case sqlite3.SQLITE_PERM, sqlite3.SQLITE_AUTH:
		return "permission denied"
	}
	return ""
}

func (s *Store) check() error {
	if s.closed.Load() {
		return fmt.Errorf("sqlite: %w", store.ErrClosed)
	}
	return nil
}

// Close closes the file and ends every Watch.
func (s *Store) Close() error {
	if s.closed.Swap(true) {
		return nil
	}
	s.watchers.Close()
	close(s.stop)
	<-s.writerDone
	return errors.Join(s.r.Close(), s.w.Close())
}

// Migrate applies the migrations the file has not had yet, each in its own
// transaction; a second process migrating at the same time waits for the
// write lock and then finds the work done.
func (s *Store) Migrate(ctx context.Context) (int, error) {
	if err := s.check(); err != nil {
		return 0, err
	}
	if err := store.CheckMigrations(migrations); err != nil {
		return 0, err
	}
	have := 0
	// A current schema needs no write lock: a store on a disk that went
	// read-only still opens for reading.
	if err := s.rstmts.queryRow(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&have); err == nil && have >= len(migrations) {
		if have > len(migrations) {
			return have, fmt.Errorf("sqlite: schema version %d is newer than this fingerd knows (%d)", have, len(migrations))
		}
		return have, nil
	}
	for _, m := range migrations {
		err := s.tx(ctx, func(tx qtx) error {
			if _, err := tx.Tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
				version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied INTEGER NOT NULL)`); err != nil {
				return err
			}
			if err := tx.Tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&have); err != nil {
				return err
			}
			if have >= m.Version {
				return nil
			}
			if _, err := tx.Tx.ExecContext(ctx, m.SQL); err != nil {
				return fmt.Errorf("migration %d (%s): %w", m.Version, m.Name, err)
			}
			_, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (version, name, applied) VALUES (?, ?, ?)`,
				m.Version, m.Name, store.Now().UnixMicro())
			have = m.Version
			return err
		})
		if err != nil {
			return 0, s.fail("migrate", err)
		}
	}
	if have > len(migrations) {
		return have, fmt.Errorf("sqlite: schema version %d is newer than this fingerd knows (%d)", have, len(migrations))
	}
	return have, nil
}

// tx runs fn in a write transaction.
func (s *Store) tx(ctx context.Context, fn func(qtx) error) error {
	t, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	tx := qtx{t, &s.wstmts}
	defer s.wstmts.prepareWanted(ctx)
	if err := fn(tx); err != nil {
		tx.Rollback()
		return err
	}
	return tx.Commit()
}

// maxBatch is the most writes committed together.
const maxBatch = 64

// errWriteFailed rolls back the transaction of a write alone in its batch
// that failed; the write's own error is in its job.
var errWriteFailed = errors.New("sqlite: write failed")

// writeJob is one write waiting for the writer goroutine.
type writeJob struct {
	ctx  context.Context
	fn   func(tx qtx, version int64) error
	v    int64
	err  error
	done chan struct{}
}

// write runs fn in a write transaction that raises the store version, and
// announces the write to watchers once it is committed. Writes that arrive
// while one is being committed are committed together, each in a
// savepoint of its own: one sync of the disk for all of them, and a write
// that fails leaves the others alone.
func (s *Store) write(ctx context.Context, op string, fn func(tx qtx, version int64) error) (int64, error) {
	if err := s.check(); err != nil {
		return 0, err
	}
	j := &writeJob{ctx: ctx, fn: fn, done: make(chan struct{})}
	select {
	case s.jobs <- j:
	case <-ctx.Done():
		return 0, fmt.Errorf("sqlite: %s: %w", op, ctx.Err())
	case <-s.stop:
		return 0, fmt.Errorf("sqlite: %w", store.ErrClosed)
	}
	<-j.done
	if err := j.err; err != nil {
		var known bool
		for _, e := range []error{store.ErrNotFound, store.ErrExists, store.ErrInvalid, store.ErrToken} {
			known = known || errors.Is(err, e)
		}
		if known {
			return 0, err
		}
		return 0, s.fail(op, err)
	}
	return j.v, nil
}

// writer commits the writes, in batches, until the store is closed.
func (s *Store) writer() {
	defer close(s.writerDone)
	for {
		var batch []*writeJob
		select {
		case j := <-s.jobs:
			batch = append(batch, j)
		case <-s.stop:
			return
		}
	fill:
		for len(batch) < maxBatch {
			select {
			case j := <-s.jobs:
				batch = append(batch, j)
			default:
				break fill
			}
		}
		s.commit(batch)
	}
}

// commit runs a batch of writes in one transaction.
func (s *Store) commit(batch []*writeJob) {
	// The statements do not run under the writers' contexts: an
	// interrupted statement can roll back the whole transaction. Each
	// is bounded by BusyTimeout.
	ctx := context.Background()
	ok := 0
	// A write alone in its transaction needs no savepoint: when it fails,
	// the transaction is rolled back.
	alone := len(batch) == 1
	err := s.tx(ctx, func(tx qtx) error {
		for _, j := range batch {
			if err := j.ctx.Err(); err != nil {
				j.err = err
				continue
			}
			if !alone {
				if _, err := tx.Tx.ExecContext(ctx, `SAVEPOINT w`); err != nil {
					return err
				}
			}
			var v int64
			err := tx.QueryRowContext(ctx, `UPDATE meta SET version = version + 1 WHERE id = 1 RETURNING version`).Scan(&v)
			if err == nil {
				err = j.fn(tx, v)
			}
			if err != nil {
				j.err = err
				if alone {
					return errWriteFailed
				}
				if _, err := tx.Tx.ExecContext(ctx, `ROLLBACK TO w`); err != nil {
					return err
				}
			} else {
				j.v = v
				ok++
			}
			if !alone {
				if _, err := tx.Tx.ExecContext(ctx, `RELEASE w`); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if errors.Is(err, errWriteFailed) {
		err = nil // the write has its error; nothing else was in the transaction
	}
	for _, j := range batch {
		if err != nil && j.err == nil {
			j.err, j.v = err, 0
		}
		close(j.done)
	}
	if err == nil && ok > 0 {
		s.watchers.Announce()
	}
}

// Watch announces the writes of this process. Other processes' writes are
// seen by polling Version.
func (s *Store) Watch(ctx context.Context) <-chan struct{} {
	return s.watchers.Watch(ctx)
}

// invalid returns the first of the refusals of package store's checks,
// with the package prefix, or nil when every check passed.
func invalid(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return fmt.Errorf("sqlite: %w", err)
		}
	}
	return nil
}

func notFound(name string) error {
	return fmt.Errorf("sqlite: user %q: %w", name, store.ErrNotFound)
}

// touch raises the user's version to v; it reports ErrNotFound when there
// is no such user.
func touch(ctx context.Context, tx qtx, name string, v int64) error {
	res, err := tx.ExecContext(ctx, `UPDATE users SET version = ? WHERE name = ?`, v, name)
	if err != nil {
		return err
	}
	if n, err := res.RowsAffected(); err != nil {
		return err
	} else if n == 0 {
		return notFound(name)
	}
	return nil
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

func micro(us int64) time.Time { return time.UnixMicro(us).UTC() }

// CreateUser adds a user.
func (s *Store) CreateUser(ctx context.Context, u store.User, tokenHash []byte) error {
	if err := invalid(store.ValidName(u.Name), store.ValidRealName(u.RealName), store.ValidTokenHash(tokenHash)); err != nil {
		return err
	}
	created := u.Created.UTC().Truncate(time.Microsecond)
	if u.Created.IsZero() {
		created = store.Now()
	}
	_, err := s.write(ctx, "create user", func(tx qtx, v int64) error {
		res, err := tx.ExecContext(ctx, `INSERT INTO users (name, real_name, listed, hidden, created, token_hash, version)
			VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (name) DO NOTHING`,
			u.Name, u.RealName, b2i(u.Listed), b2i(u.Hidden), created.UnixMicro(), tokenHash, v)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			return fmt.Errorf("sqlite: user %q: %w", u.Name, store.ErrExists)
		}
		_, err = tx.ExecContext(ctx, `DELETE FROM tombstones WHERE name = ?`, u.Name)
		return err
	})
	return err
}

// UpdateUser sets a user's real name and flags.
func (s *Store) UpdateUser(ctx context.Context, u store.User) error {
	if err := invalid(store.ValidName(u.Name), store.ValidRealName(u.RealName)); err != nil {
		return err
	}
	_, err := s.write(ctx, "update user", func(tx qtx, v int64) error {
		res, err := tx.ExecContext(ctx, `UPDATE users SET real_name = ?, listed = ?, hidden = ?, version = ? WHERE name = ?`,
			u.RealName, b2i(u.Listed), b2i(u.Hidden), v, u.Name)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			return notFound(u.Name)
		}
		return nil
	})
	return err
}

// DeleteUser removes a user and everything of theirs.
func (s *Store) DeleteUser(ctx context.Context, name string) error {
	if err := invalid(store.ValidName(name)); err != nil {
		return err
	}
	_, err := s.write(ctx, "delete user", func(tx qtx, v int64) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM users WHERE name = ?`, name)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			return notFound(name)
		}
		for _, q := range []string{`DELETE FROM texts WHERE name = ?`, `DELETE FROM history WHERE name = ?`} {
			if _, err := tx.ExecContext(ctx, q, name); err != nil {
				return err
			}
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO tombstones (name, version) VALUES (?, ?)
			ON CONFLICT (name) DO UPDATE SET version = excluded.version`, name, v)
		return err
	})
	return err
}

const userColumns = `name, real_name, listed, hidden, created`

type scanner interface{ Scan(...any) error }

func scanUser(r scanner, extra ...any) (store.User, error) {
	var u store.User
	var created int64
	err := r.Scan(append([]any{&u.Name, &u.RealName, &u.Listed, &u.Hidden, &created}, extra...)...)
	u.Created = micro(created)
	return u, err
}

// User returns one user.
func (s *Store) User(ctx context.Context, name string) (store.User, error) {
	if err := s.check(); err != nil {
		return store.User{}, err
	}
	if err := invalid(store.ValidName(name)); err != nil {
		return store.User{}, err
	}
	u, err := scanUser(s.rstmts.queryRow(ctx, `SELECT `+userColumns+` FROM users WHERE name = ?`, name))
	if errors.Is(err, sql.ErrNoRows) {
		return store.User{}, notFound(name)
	}
	if err != nil {
		return store.User{}, s.fail("user", err)
	}
	return u, nil
}

// Users returns every user, sorted by name.
func (s *Store) Users(ctx context.Context) ([]store.User, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	rows, err := s.rstmts.query(ctx, `SELECT `+userColumns+` FROM users ORDER BY name`)
	if err != nil {
		return nil, s.fail("users", err)
	}
	defer rows.Close()
	var users []store.User
	for rows.Next() {
		u, err := scanUser(rows)
		if err != nil {
			return nil, s.fail("users", err)
		}
		users = append(users, u)
	}
	if err := rows.Err(); err != nil {
		return nil, s.fail("users", err)
	}
	return users, nil
}

// SetToken replaces a user's token hash.
func (s *Store) SetToken(ctx context.Context, name string, tokenHash []byte) error {
	if err := invalid(store.ValidName(name), store.ValidTokenHash(tokenHash)); err != nil {
		return err
	}
	_, err := s.write(ctx, "set token", func(tx qtx, v int64) error {
		if err := touch(ctx, tx, name, v); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `UPDATE users SET token_hash = ? WHERE name = ?`, tokenHash, name)
		return err
	})
	return err
}

// TokenHash returns a user's token hash.
func (s *Store) TokenHash(ctx context.Context, name string) ([]byte, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	if err := invalid(store.ValidName(name)); err != nil {
		return nil, err
	}
	var h []byte
	err := s.rstmts.queryRow(ctx, `SELECT token_hash FROM users WHERE name = ?`, name).Scan(&h)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, notFound(name)
	}
	if err != nil {
		return nil, s.fail("token", err)
	}
	return h, nil
}

// record adds a change to the history and drops what falls beyond
// store.HistoryLimit.
func record(ctx context.Context, tx qtx, c store.Change) error {
	if _, err := tx.ExecContext(ctx, `INSERT INTO history (version, name, kind, body, at, deleted) VALUES (?, ?, ?, ?, ?, ?)`,
		c.Version, c.Name, string(c.Kind), c.Body, c.At.UnixMicro(), b2i(c.Deleted)); err != nil {
		return err
	}
	_, err := tx.ExecContext(ctx, `DELETE FROM history WHERE name = ?1 AND kind = ?2 AND version <=
		(SELECT version FROM history WHERE name = ?1 AND kind = ?2 ORDER BY version DESC LIMIT 1 OFFSET ?3)`,
		c.Name, string(c.Kind), store.HistoryLimit)
	return err
}

// touchWithToken raises the user's version to v if the user's token hash
// is tokenHash; it reports ErrNotFound when there is no such user and
// ErrToken when the hash is another.
func touchWithToken(ctx context.Context, tx qtx, name string, tokenHash []byte, v int64) error {
	res, err := tx.ExecContext(ctx, `UPDATE users SET version = ? WHERE name = ? AND token_hash = ?`, v, name, tokenHash)
	if err != nil {
		return err
	}
	if n, err := res.RowsAffected(); err != nil {
		return err
	} else if n > 0 {
		return nil
	}
	var one int
	if err := tx.QueryRowContext(ctx, `SELECT 1 FROM users WHERE name = ?`, name).Scan(&one); errors.Is(err, sql.ErrNoRows) {
		return notFound(name)
	} else if err != nil {
		return err
	}
	return fmt.Errorf("sqlite: user %q: %w", name, store.ErrToken)
}

// PutText publishes a text.
func (s *Store) PutText(ctx context.Context, name string, k store.Kind, body string) (store.Change, error) {
	return s.putText(ctx, name, nil, k, body)
}

// PutTextWithToken publishes a text if the user's token hash is tokenHash.
func (s *Store) PutTextWithToken(ctx context.Context, name string, tokenHash []byte, k store.Kind, body string) (store.Change, error) {
	if err := invalid(store.ValidTokenHash(tokenHash)); err != nil {
		return store.Change{}, err
	}
	return s.putText(ctx, name, tokenHash, k, body)
}

// putText publishes a text, if tokenHash is not nil only for that hash.
func (s *Store) putText(ctx context.Context, name string, tokenHash []byte, k store.Kind, body string) (store.Change, error) {
	if err := invalid(store.ValidName(name), store.ValidKind(k), store.ValidText(body)); err != nil {
		return store.Change{}, err
	}
	c := store.Change{Name: name, Kind: k, Body: body, At: store.Now()}
	v, err := s.write(ctx, "publish", func(tx qtx, v int64) error {
		touched := touch(ctx, tx, name, v)
		if tokenHash != nil {
			touched = touchWithToken(ctx, tx, name, tokenHash, v)
		}
		if touched != nil {
			return touched
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO texts (name, kind, body, changed, version) VALUES (?, ?, ?, ?, ?)
			ON CONFLICT (name, kind) DO UPDATE SET body = excluded.body, changed = excluded.changed, version = excluded.version`,
			name, string(k), body, c.At.UnixMicro(), v); err != nil {
			return err
		}
		c.Version = v
		return record(ctx, tx, c)
	})
	if err != nil {
		return store.Change{}, err
	}
	c.Version = v
	return c, nil
}

// DeleteText removes a text.
func (s *Store) DeleteText(ctx context.Context, name string, k store.Kind) (store.Change, error) {
	if err := invalid(store.ValidName(name), store.ValidKind(k)); err != nil {
		return store.Change{}, err
	}
	c := store.Change{Name: name, Kind: k, At: store.Now(), Deleted: true}
	v, err := s.write(ctx, "delete text", func(tx qtx, v int64) error {
		if err := touch(ctx, tx, name, v); err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, `DELETE FROM texts WHERE name = ? AND kind = ?`, name, string(k))
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			return fmt.Errorf("sqlite: %s of %q: %w", k, name, store.ErrNotFound)
		}
		c.Version = v
		return record(ctx, tx, c)
	})
	if err != nil {
		return store.Change{}, err
	}
	c.Version = v
	return c, nil
}

// Version returns the store version.
func (s *Store) Version(ctx context.Context) (int64, error) {
	if err := s.check(); err != nil {
		return 0, err
	}
	var v int64
	if err := s.rstmts.queryRow(ctx, `SELECT version FROM meta WHERE id = 1`).Scan(&v); err != nil {
		return 0, s.fail("version", err)
	}
	return v, nil
}

// Snapshot returns the directory or what changed in it after since, read
// in one transaction.
func (s *Store) Snapshot(ctx context.Context, since int64) (*store.Snapshot, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	t, err := s.r.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, s.fail("snapshot", err)
	}
	snap, err := snapshot(ctx, qtx{t, &s.rstmts}, since)
	t.Rollback()
	s.rstmts.prepareWanted(ctx)
	if err != nil {
		return nil, s.fail("snapshot", err)
	}
	return snap, nil
}

func snapshot(ctx context.Context, tx qtx, since int64) (*store.Snapshot, error) {
	var version int64
	if err := tx.QueryRowContext(ctx, `SELECT version FROM meta WHERE id = 1`).Scan(&version); err != nil {
		return nil, err
	}
	b := store.NewSnapshotBuilder(version, since)
	// No ORDER BY: it would make SQLite scan every user in name order
	// rather than search the version index. The builder sorts.
	rows, err := tx.QueryContext(ctx, `SELECT `+userColumns+`, token_hash, version FROM users WHERE version > ?`, b.Since())
	if err != nil {
		return nil, err
	}
	for rows.Next() {
		var v int64
		var h []byte
		u, err := scanUser(rows, &h, &v)
		if err != nil {
			rows.Close()
			return nil, err
		}
		b.AddUser(u, h, v)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	rows.Close()
	if b.Users() > 0 {
		q := `SELECT name, kind, body, changed FROM texts`
		if !b.Full() {
			// Through the index of users by version, not a scan of texts.
			q += ` WHERE name IN (SELECT name FROM users WHERE version > ?)`
		}
		rows, err := tx.QueryContext(ctx, q, b.Since())
		if err != nil {
			return nil, err
		}
		for rows.Next() {
			var name, kind, body string
			var changed int64
			if err := rows.Scan(&name, &kind, &body, &changed); err != nil {
				rows.Close()
				return nil, err
			}
			b.AddText(name, store.Text{Kind: store.Kind(kind), Body: body, Changed: micro(changed)})
		}
		if err := rows.Err(); err != nil {
			return nil, err
		}
		rows.Close()
	}
	if !b.Full() {
		rows, err := tx.QueryContext(ctx, `SELECT name FROM tombstones WHERE version > ?`, b.Since())
		if err != nil {
			return nil, err
		}
		defer rows.Close()
		for rows.Next() {
			var name string
			if err := rows.Scan(&name); err != nil {
				return nil, err
			}
			b.AddDeleted(name)
		}
		if err := rows.Err(); err != nil {
			return nil, err
		}
	}
	return b.Snapshot(), nil
}

func scanChanges(rows *sql.Rows) ([]store.Change, error) {
	defer rows.Close()
	changes := []store.Change{}
	for rows.Next() {
		var c store.Change
		var kind string
		var at int64
		if err := rows.Scan(&c.Version, &c.Name, &kind, &c.Body, &at, &c.Deleted); err != nil {
			return nil, err
		}
		c.Kind, c.At = store.Kind(kind), micro(at)
		changes = append(changes, c)
	}
	return changes, rows.Err()
}

// History returns a user's newest changes of one kind.
func (s *Store) History(ctx context.Context, name string, k store.Kind, limit int) ([]store.Change, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	if err := invalid(store.ValidName(name), store.ValidKind(k)); err != nil {
		return nil, err
	}
	t, err := s.r.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, s.fail("history", err)
	}
	defer s.rstmts.prepareWanted(ctx)
	defer t.Rollback()
	tx := qtx{t, &s.rstmts}
	var one int
	if err := tx.QueryRowContext(ctx, `SELECT 1 FROM users WHERE name = ?`, name).Scan(&one); errors.Is(err, sql.ErrNoRows) {
		return nil, notFound(name)
	} else if err != nil {
		return nil, s.fail("history", err)
	}
	rows, err := tx.QueryContext(ctx, `SELECT version, name, kind, body, at, deleted FROM history
		WHERE name = ? AND kind = ? ORDER BY version DESC LIMIT ?`, name, string(k), max(limit, 0))
	if err != nil {
		return nil, s.fail("history", err)
	}
	changes, err := scanChanges(rows)
	if err != nil {
		return nil, s.fail("history", err)
	}
	return changes, nil
}

// Recent returns the newest changes of one kind of listed, visible users.
func (s *Store) Recent(ctx context.Context, k store.Kind, limit int) ([]store.Change, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	if err := invalid(store.ValidKind(k)); err != nil {
		return nil, err
	}
	rows, err := s.rstmts.query(ctx, `SELECT h.version, h.name, h.kind, h.body, h.at, h.deleted
		FROM history h JOIN users u ON u.name = h.name
		WHERE h.kind = ? AND u.listed AND NOT u.hidden ORDER BY h.version DESC LIMIT ?`, string(k), max(limit, 0))
	if err != nil {
		return nil, s.fail("recent", err)
	}
	changes, err := scanChanges(rows)
	if err != nil {
		return nil, s.fail("recent", err)
	}
	return changes, nil
}

// Backup writes a consistent copy of the database to path (which must not
// exist) while the store stays in use, with SQLite's VACUUM INTO.
func (s *Store) Backup(ctx context.Context, path string) error {
	if err := s.check(); err != nil {
		return err
	}
	if _, err := os.Lstat(path); err == nil {
		return fmt.Errorf("sqlite: backup: %s: %w", path, os.ErrExist)
	}
	db, err := sql.Open("sqlite", "file:"+(&url.URL{Path: s.path}).EscapedPath()+
		fmt.Sprintf("?_pragma=busy_timeout(%d)", BusyTimeout.Milliseconds()))
	if err != nil {
		return fmt.Errorf("sqlite: backup: %w", err)
	}
	defer db.Close()
	if _, err := db.ExecContext(ctx, `VACUUM INTO ?`, path); err != nil {
		return s.fail("backup to "+path, err)
	}
	return nil
}

// stmtCache keeps the statements of one database prepared: SQLite spends
// more time parsing a short statement than running it.
type stmtCache struct {
	db     *sql.DB
	mu     sync.Mutex
	m      map[string]*sql.Stmt
	wanted map[string]bool // run unprepared in a transaction, to prepare after it
}

// cached returns the prepared statement of q, or nil after noting that q
// is wanted. A transaction must not prepare on the database: that needs a
// free connection, and the transaction holds one (the only one, for
// writes).
func (c *stmtCache) cached(q string) *sql.Stmt {
	c.mu.Lock()
	defer c.mu.Unlock()
	if st, ok := c.m[q]; ok {
		return st
	}
	if c.wanted == nil {
		c.wanted = make(map[string]bool)
	}
	c.wanted[q] = true
	return nil
}

// prepareWanted prepares the statements transactions ran unprepared. The
// caller holds no connection of c.db.
func (c *stmtCache) prepareWanted(ctx context.Context) {
	c.mu.Lock()
	var qs []string
	for q := range c.wanted {
		qs = append(qs, q)
	}
	clear(c.wanted)
	c.mu.Unlock()
	for _, q := range qs {
		c.get(ctx, q)
	}
}

func (c *stmtCache) get(ctx context.Context, q string) (*sql.Stmt, error) {
	c.mu.Lock()
	st, ok := c.m[q]
	c.mu.Unlock()
	if ok {
		return st, nil
	}
	// Prepare without the lock: preparing waits for a free connection,
	// and a transaction holding one may be waiting for the lock.
	st, err := c.db.PrepareContext(ctx, q)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if old, ok := c.m[q]; ok {
		st.Close()
		return old, nil
	}
	if c.m == nil {
		c.m = make(map[string]*sql.Stmt)
	}
	c.m[q] = st
	return st, nil
}

func (c *stmtCache) queryRow(ctx context.Context, q string, args ...any) scanner {
	st, err := c.get(ctx, q)
	if err != nil {
		return errRow{err}
	}
	return st.QueryRowContext(ctx, args...)
}

func (c *stmtCache) query(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	st, err := c.get(ctx, q)
	if err != nil {
		return nil, err
	}
	return st.QueryContext(ctx, args...)
}

type errRow struct{ err error }

func (r errRow) Scan(...any) error { return r.err }

// qtx is a transaction that runs its statements prepared.
type qtx struct {
	*sql.Tx
	c *stmtCache
}

func (t qtx) ExecContext(ctx context.Context, q string, args ...any) (sql.Result, error) {
	if st := t.c.cached(q); st != nil {
		return t.Tx.StmtContext(ctx, st).ExecContext(ctx, args...)
	}
	return t.Tx.ExecContext(ctx, q, args...)
}

func (t qtx) QueryRowContext(ctx context.Context, q string, args ...any) scanner {
	if st := t.c.cached(q); st != nil {
		return t.Tx.StmtContext(ctx, st).QueryRowContext(ctx, args...)
	}
	return t.Tx.QueryRowContext(ctx, q, args...)
}

func (t qtx) QueryContext(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	if st := t.c.cached(q); st != nil {
		return t.Tx.StmtContext(ctx, st).QueryContext(ctx, args...)
	}
	return t.Tx.QueryContext(ctx, q, args...)
}

// readOnlyFS reports whether dir's file system refuses writes as
// read-only. It tries to create a file there: a file system that turned
// read-only under errors=remount-ro still says "rw" to statfs on Linux.
func readOnlyFS(dir string) bool {
	f, err := os.CreateTemp(dir, ".fingerd-write-probe-*")
	if err != nil {
		return errors.Is(err, syscall.EROFS)
	}
	f.Close()
	os.Remove(f.Name())
	return false
}
