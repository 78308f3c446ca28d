// Package postgres is the store driver for several fingerd replicas that
// share one directory of hosted users: a PostgreSQL database reached
// through a pool of connections (jackc/pgx). Importing it registers the URL
// scheme "postgres" (store.Open takes "postgresql" too), in libpq's URL form:
//
//	postgres://fingerd:PASSWORD@db.example.org:5432/fingerd?sslmode=verify-full
//
// A replica keeps nothing of its own: every write goes to the database, and
// readers hold only a cache they can rebuild from it (see store.Snapshot).
// The schema and its migrations are those of the SQLite driver, in
// PostgreSQL's types; Migrate takes an advisory lock, so replicas that
// start together apply each migration once.
//
// Every write raises the store version and announces it with NOTIFY on the
// channel Channel, in its transaction, so that the announcement is sent
// when the write commits. Watch listens on a connection of its own, which
// it checks every PingInterval and opens again, with a growing delay, when
// it is lost; each (re)connection is announced too, since writes made while
// it was down were not.
//
// A call that gets no answer within OpTimeout, a database that cannot be
// reached, refuses connections, is read-only, or is out of disk, fails with
// an error wrapping store.ErrUnavailable that says which.
package postgres

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/openfinger/finger/internal/store"
)

const (
	// OpTimeout bounds each call to the database, whatever the caller's
	// context allows: a database that does not answer makes the call fail
	// with store.ErrUnavailable rather than hang.
	OpTimeout = 5 * time.Second
	// MigrateTimeout bounds Migrate, which may wait for another replica's.
	MigrateTimeout = time.Minute
	// PingInterval is how long the listening connection may stay silent
	// before it is checked with a ping.
	PingInterval = 2 * time.Second
	// Channel is the NOTIFY channel that announces writes; the payload is
	// the new store version.
	Channel = "fingerd_store"
	// maxBackoff caps the delay between attempts to listen again.
	maxBackoff = 5 * time.Second
)

// migrateLock is the key of the advisory lock Migrate holds.
const migrateLock int64 = 0x6f66_6d69_6772_6174

func init() {
	open := func(ctx context.Context, u string) (store.Store, error) { return Open(ctx, u) }
	store.Register("postgres", open)
}

// Store is a store.Store in a PostgreSQL database.
type Store struct {
	pool   *pgxpool.Pool
	listen *pgx.ConnConfig // for the listening connection
	closed atomic.Bool

	ctx    context.Context // ends the listener
	cancel context.CancelFunc
	wg     sync.WaitGroup

	watchers store.Announcer

	mu        sync.Mutex // guards closing, listening and the link state
	listening bool       // the listener runs
	linkErr   error      // why the listening connection is down; nil when up
	linkUp    bool
}

var (
	_ store.Store   = (*Store)(nil)
	_ store.Watcher = (*Store)(nil)
)

// Open returns a store for the database at the URL. It does not connect:
// the first call does, so that a replica can start while the database is
// away. It does not migrate; call Migrate.
func Open(ctx context.Context, u string) (*Store, error) {
	cfg, err := pgxpool.ParseConfig(u)
	if err != nil {
		// The error may quote the URL, password included.
		return nil, fmt.Errorf("postgres: %w: cannot parse the store URL (want postgres://USER:PASSWORD@HOST:PORT/DATABASE)", store.ErrInvalid)
	}
	cc := cfg.ConnConfig
	if cc.ConnectTimeout == 0 {
		cc.ConnectTimeout = OpTimeout
	}
	if cc.RuntimeParams["application_name"] == "" {
		cc.RuntimeParams["application_name"] = "fingerd"
	}
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	lctx, cancel := context.WithCancel(context.Background())
	return &Store{
		pool:   pool,
		listen: cc.Copy(),
		ctx:    lctx,
		cancel: cancel,
	}, nil
}

// Close closes the pool and the listening connection, and ends every Watch.
func (s *Store) Close() error {
	// Under s.mu, so that Watch starts no listener once Close waits for
	// the listener to end.
	s.mu.Lock()
	closed := s.closed.Swap(true)
	s.mu.Unlock()
	if closed {
		return nil
	}
	s.cancel()
	s.wg.Wait()
	s.watchers.Close()
	s.pool.Close()
	return nil
}

func (s *Store) check() error {
	if s.closed.Load() {
		return fmt.Errorf("postgres: %w", store.ErrClosed)
	}
	return nil
}

// op returns the context of one call: the caller's, bounded by OpTimeout.
func op(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, OpTimeout)
}

// fail turns a driver error into the store's. parent is the caller's
// context: when it ended, the error says so plainly; when the call's own
// bound ran out, or the database cannot be reached or cannot do the work,
// the error wraps store.ErrUnavailable with the reason.
func fail(parent context.Context, op string, err error) error {
	for _, e := range []error{store.ErrNotFound, store.ErrExists, store.ErrInvalid, store.ErrClosed, store.ErrToken} {
		if errors.Is(err, e) {
			return err
		}
	}
	if parent.Err() != nil {
		return fmt.Errorf("postgres: %s: %w", op, parent.Err())
	}
	unavailable := func(reason string) error {
		return fmt.Errorf("postgres: %s: %w: %s (%v)", op, store.ErrUnavailable, reason, err)
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch {
		case pe.Code == "25006":
			return unavailable("database is read-only")
		case pe.Code == "53100":
			return unavailable("database disk full")
		case pe.Code == "53300":
			return unavailable("too many connections to the database")
		case len(pe.Code) == 5 && pe.Code[:2] == "28":
			return unavailable("the database refused the store's credentials")
		case len(pe.Code) == 5 && (pe.Code[:2] == "08" || pe.Code[:2] == "53" || pe.Code[:2] == "57" || pe.Code[:2] == "58"):
			return unavailable("the database cannot serve now")
		}
		return fmt.Errorf("postgres: %s: %w", op, err)
	}
	var ce *pgconn.ConnectError
	switch {
	case errors.Is(err, context.DeadlineExceeded) || pgconn.Timeout(err):
		return unavailable(fmt.Sprintf("no answer from the database within %v", OpTimeout))
	case errors.As(err, &ce):
		return unavailable("cannot connect to the database")
	}
	// Anything else is the connection failing under the call.
	return unavailable("connection to the database lost")
}

// Migrate applies the migrations the database has not had yet, each in its
// own transaction, holding an advisory lock so that replicas starting
// together apply each one once.
func (s *Store) Migrate(ctx context.Context) (int, error) {
	if err := s.check(); err != nil {
		return 0, err
	}
	if err := store.CheckMigrations(migrations); err != nil {
		return 0, err
	}
	parent := ctx
	ctx, cancel := context.WithTimeout(ctx, MigrateTimeout)
	defer cancel()
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return 0, fail(parent, "migrate", err)
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock($1)`, migrateLock); err != nil {
		return 0, fail(parent, "migrate: lock", err)
	}
	defer func() {
		uctx, cancel := context.WithTimeout(context.Background(), OpTimeout)
		defer cancel()
		if _, err := conn.Exec(uctx, `SELECT pg_advisory_unlock($1)`, migrateLock); err != nil {
			// The lock ends with the session: do not hand the
			// session back to the pool.
			conn.Conn().Close(uctx)
		}
	}()
	if _, err := conn.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version integer PRIMARY KEY, name text NOT NULL, applied timestamptz NOT NULL)`); err != nil {
		return 0, fail(parent, "migrate", err)
	}
	have := 0
	if err := conn.QueryRow(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&have); err != nil {
		return 0, fail(parent, "migrate", err)
	}
	if have > len(migrations) {
		return have, fmt.Errorf("postgres: schema version %d is newer than this fingerd knows (%d)", have, len(migrations))
	}
	for _, m := range migrations[have:] {
		err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, m.SQL); err != nil {
				return fmt.Errorf("migration %d (%s): %w", m.Version, m.Name, err)
			}
			_, err := tx.Exec(ctx, `INSERT INTO schema_migrations (version, name, applied) VALUES ($1, $2, $3)`,
				m.Version, m.Name, store.Now())
			return err
		})
		if err != nil {
			return 0, fail(parent, "migrate", err)
		}
		have = m.Version
	}
	return have, nil
}

// write runs fn in a transaction that raises the store version and
// announces it; local watchers are told once it is committed.
func (s *Store) write(ctx context.Context, what string, fn func(ctx context.Context, tx pgx.Tx, version int64) error) (int64, error) {
	if err := s.check(); err != nil {
		return 0, err
	}
	parent := ctx
	ctx, cancel := op(ctx)
	defer cancel()
	var v int64
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if err := tx.QueryRow(ctx, `UPDATE meta SET version = version + 1 WHERE id = 1 RETURNING version`).Scan(&v); err != nil {
			return err
		}
		if err := fn(ctx, tx, v); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `SELECT pg_notify($1, $2)`, Channel, strconv.FormatInt(v, 10))
		return err
	})
	if err != nil {
		return 0, fail(parent, what, err)
	}
	s.watchers.Announce()
	return v, nil
}

// Watch announces the writes of every process on the database, through
// LISTEN on a connection of its own, opened at the first call.
func (s *Store) Watch(ctx context.Context) <-chan struct{} {
	ch := s.watchers.Watch(ctx)
	s.mu.Lock()
	if !s.listening && !s.closed.Load() {
		s.listening = true
		s.wg.Add(1)
		go s.listenLoop()
	}
	s.mu.Unlock()
	return ch
}

// WatchErr reports the state of the listening connection: nil while it is
// up, otherwise why it is not (before the first Watch: that nothing
// listens yet).
func (s *Store) WatchErr() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.linkUp:
		return nil
	case s.linkErr != nil:
		return s.linkErr
	case !s.listening:
		return errors.New("postgres: not listening")
	}
	return errors.New("postgres: connecting to listen")
}

func (s *Store) setLink(err error) {
	s.mu.Lock()
	s.linkUp, s.linkErr = err == nil, err
	s.mu.Unlock()
}

// listenLoop keeps a listening connection open until the store closes.
func (s *Store) listenLoop() {
	defer s.wg.Done()
	backoff := 100 * time.Millisecond
	for s.ctx.Err() == nil {
		start := time.Now()
		err := s.listenOnce()
		if s.ctx.Err() != nil {
			return
		}
		s.setLink(fail(s.ctx, "listen", err))
		if time.Since(start) > 2*maxBackoff {
			backoff = 100 * time.Millisecond
		}
		select {
		case <-time.After(backoff):
		case <-s.ctx.Done():
			return
		}
		backoff = min(2*backoff, maxBackoff)
	}
}

// listenOnce opens a connection, listens, and relays notifications until
// the connection fails or the store closes.
func (s *Store) listenOnce() error {
	ctx, cancel := op(s.ctx)
	conn, err := pgx.ConnectConfig(ctx, s.listen.Copy())
	cancel()
	if err != nil {
		return err
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		conn.Close(ctx)
	}()
	ctx, cancel = op(s.ctx)
	_, err = conn.Exec(ctx, "LISTEN "+Channel)
	cancel()
	if err != nil {
		return err
	}
	s.setLink(nil)
	// Writes made while nobody listened were not announced.
	s.watchers.Announce()
	for {
		ctx, cancel := context.WithTimeout(s.ctx, PingInterval)
		_, err := conn.WaitForNotification(ctx)
		cancel()
		switch {
		case err == nil:
			s.watchers.Announce()
			continue
		case s.ctx.Err() != nil:
			return nil
		case !pgconn.Timeout(err):
			return err
		}
		// Silent for PingInterval: make sure the link is still there.
		ctx, cancel = context.WithTimeout(s.ctx, PingInterval)
		err = conn.Ping(ctx)
		cancel()
		if err != nil {
			return err
		}
	}
}

// invalid returns the first of the refusals of package store's checks,
// with the package prefix, or nil when every check passed.
func invalid(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return fmt.Errorf("postgres: %w", err)
		}
	}
	return nil
}

func notFound(name string) error {
	return fmt.Errorf("postgres: user %q: %w", name, store.ErrNotFound)
}

// touch raises the user's version to v; it reports ErrNotFound when there
// is no such user.
func touch(ctx context.Context, tx pgx.Tx, name string, v int64) error {
	tag, err := tx.Exec(ctx, `UPDATE users SET version = $1 WHERE name = $2`, v, name)
	if err != nil {
		return err
	}
	if tag.RowsAffected() == 0 {
		return notFound(name)
	}
	return nil
}

// CreateUser adds a user.
func (s *Store) CreateUser(ctx context.Context, u store.User, tokenHash []byte) error {
	if err := invalid(store.ValidName(u.Name), store.ValidRealName(u.RealName), store.ValidTokenHash(tokenHash)); err != nil {
		return err
	}
	created := u.Created.UTC().Truncate(time.Microsecond)
	if u.Created.IsZero() {
		created = store.Now()
	}
	_, err := s.write(ctx, "create user", func(ctx context.Context, tx pgx.Tx, v int64) error {
		tag, err := tx.Exec(ctx, `INSERT INTO users (name, real_name, listed, hidden, created, token_hash, version)
			VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (name) DO NOTHING`,
			u.Name, u.RealName, u.Listed, u.Hidden, created, tokenHash, v)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return fmt.Errorf("postgres: user %q: %w", u.Name, store.ErrExists)
		}
		_, err = tx.Exec(ctx, `DELETE FROM tombstones WHERE name = $1`, u.Name)
		return err
	})
	return err
}

// UpdateUser sets a user's real name and flags.
func (s *Store) UpdateUser(ctx context.Context, u store.User) error {
	if err := invalid(store.ValidName(u.Name), store.ValidRealName(u.RealName)); err != nil {
		return err
	}
	_, err := s.write(ctx, "update user", func(ctx context.Context, tx pgx.Tx, v int64) error {
		tag, err := tx.Exec(ctx, `UPDATE users SET real_name = $1, listed = $2, hidden = $3, version = $4 WHERE name = $5`,
			u.RealName, u.Listed, u.Hidden, v, u.Name)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
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
	_, err := s.write(ctx, "delete user", func(ctx context.Context, tx pgx.Tx, v int64) error {
		tag, err := tx.Exec(ctx, `DELETE FROM users WHERE name = $1`, name)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return notFound(name)
		}
		for _, q := range []string{`DELETE FROM texts WHERE name = $1`, `DELETE FROM history WHERE name = $1`} {
			if _, err := tx.Exec(ctx, q, name); err != nil {
				return err
			}
		}
		_, err = tx.Exec(ctx, `INSERT INTO tombstones (name, version) VALUES ($1, $2)
			ON CONFLICT (name) DO UPDATE SET version = excluded.version`, name, v)
		return err
	})
	return err
}

const userColumns = `name, real_name, listed, hidden, created`

func scanUser(r pgx.Row, extra ...any) (store.User, error) {
	var u store.User
	err := r.Scan(append([]any{&u.Name, &u.RealName, &u.Listed, &u.Hidden, &u.Created}, extra...)...)
	u.Created = u.Created.UTC()
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
	parent := ctx
	ctx, cancel := op(ctx)
	defer cancel()
	u, err := scanUser(s.pool.QueryRow(ctx, `SELECT `+userColumns+` FROM users WHERE name = $1`, name))
	if errors.Is(err, pgx.ErrNoRows) {
		return store.User{}, notFound(name)
	}
	if err != nil {
		return store.User{}, fail(parent, "user", err)
	}
	return u, nil
}

// Users returns every user, sorted by name.
func (s *Store) Users(ctx context.Context) ([]store.User, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	parent := ctx
	ctx, cancel := op(ctx)
	defer cancel()
	rows, _ := s.pool.Query(ctx, `SELECT `+userColumns+` FROM users ORDER BY name COLLATE "C"`)
	users, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.User, error) { return scanUser(r) })
	if err != nil {
		return nil, fail(parent, "users", err)
	}
	return users, nil
}

// SetToken replaces a user's token hash.
func (s *Store) SetToken(ctx context.Context, name string, tokenHash []byte) error {
	if err := invalid(store.ValidName(name), store.ValidTokenHash(tokenHash)); err != nil {
		return err
	}
	_, err := s.write(ctx, "set token", func(ctx context.Context, tx pgx.Tx, v int64) error {
		tag, err := tx.Exec(ctx, `UPDATE users SET token_hash = $1, version = $2 WHERE name = $3`, tokenHash, v, name)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return notFound(name)
		}
		return nil
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
	parent := ctx
	ctx, cancel := op(ctx)
	defer cancel()
	var h []byte
	err := s.pool.QueryRow(ctx, `SELECT token_hash FROM users WHERE name = $1`, name).Scan(&h)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, notFound(name)
	}
	if err != nil {
		return nil, fail(parent, "token", err)
	}
	return h, nil
}

// record adds a change to the history and drops what falls beyond
// store.HistoryLimit.
func record(ctx context.Context, tx pgx.Tx, c store.Change) error {
	if _, err := tx.Exec(ctx, `INSERT INTO history (version, name, kind, body, at, deleted) VALUES ($1, $2, $3, $4, $5, $6)`,
		c.Version, c.Name, string(c.Kind), c.Body, c.At, c.Deleted); err != nil {
		return err
	}
	_, err := tx.Exec(ctx, `DELETE FROM history WHERE name = $1 AND kind = $2 AND version <=
		(SELECT version FROM history WHERE name = $1 AND kind = $2 ORDER BY version DESC LIMIT 1 OFFSET $3)`,
		c.Name, string(c.Kind), store.HistoryLimit)
	return err
}

// touchWithToken raises the user's version to v if the user's token hash
// is tokenHash; it reports ErrNotFound when there is no such user and
// ErrToken when the hash is another.
func touchWithToken(ctx context.Context, tx pgx.Tx, name string, tokenHash []byte, v int64) error {
	tag, err := tx.Exec(ctx, `UPDATE users SET version = $1 WHERE name = $2 AND token_hash = $3`, v, name, tokenHash)
	if err != nil {
		return err
	}
	if tag.RowsAffected() > 0 {
		return nil
	}
	var one int
	if err := tx.QueryRow(ctx, `SELECT 1 FROM users WHERE name = $1`, name).Scan(&one); errors.Is(err, pgx.ErrNoRows) {
		return notFound(name)
	} else if err != nil {
		return err
	}
	return fmt.Errorf("postgres: user %q: %w", name, store.ErrToken)
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
	v, err := s.write(ctx, "publish", func(ctx context.Context, tx pgx.Tx, v int64) error {
		touched := touch(ctx, tx, name, v)
		if tokenHash != nil {
			touched = touchWithToken(ctx, tx, name, tokenHash, v)
		}
		if touched != nil {
			return touched
		}
		if _, err := tx.Exec(ctx, `INSERT INTO texts (name, kind, body, changed, version) VALUES ($1, $2, $3, $4, $5)
			ON CONFLICT (name, kind) DO UPDATE SET body = excluded.body, changed = excluded.changed, version = excluded.version`,
			name, string(k), body, c.At, v); err != nil {
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
	v, err := s.write(ctx, "delete text", func(ctx context.Context, tx pgx.Tx, v int64) error {
		if err := touch(ctx, tx, name, v); err != nil {
			return err
		}
		tag, err := tx.Exec(ctx, `DELETE FROM texts WHERE name = $1 AND kind = $2`, name, string(k))
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return fmt.Errorf("postgres: %s of %q: %w", k, name, store.ErrNotFound)
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

// Version returns the store version: one single-row query.
func (s *Store) Version(ctx context.Context) (int64, error) {
	if err := s.check(); err != nil {
		return 0, err
	}
	parent := ctx
	ctx, cancel := op(ctx)
	defer cancel()
	var v int64
	if err := s.pool.QueryRow(ctx, `SELECT version FROM meta WHERE id = 1`).Scan(&v); err != nil {
		return 0, fail(parent, "version", err)
	}
	return v, nil
}

// Snapshot returns the directory or what changed in it after since, read
// in one repeatable-read transaction.
func (s *Store) Snapshot(ctx context.Context, since int64) (*store.Snapshot, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	parent := ctx
	ctx, cancel := op(ctx)
	defer cancel()
	var snap *store.Snapshot
	err := pgx.BeginTxFunc(ctx, s.pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		var err error
		snap, err = snapshot(ctx, tx, since)
		return err
	})
	if err != nil {
		return nil, fail(parent, "snapshot", err)
	}
	return snap, nil
}

func snapshot(ctx context.Context, tx pgx.Tx, since int64) (*store.Snapshot, error) {
	var version int64
	if err := tx.QueryRow(ctx, `SELECT version FROM meta WHERE id = 1`).Scan(&version); err != nil {
		return nil, err
	}
	b := store.NewSnapshotBuilder(version, since)
	rows, _ := tx.Query(ctx, `SELECT `+userColumns+`, token_hash, version FROM users WHERE version > $1`, b.Since())
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
	if b.Users() > 0 {
		q := `SELECT t.name, t.kind, t.body, t.changed FROM texts t`
		args := []any{}
		if !b.Full() {
			q += ` JOIN users u ON u.name = t.name WHERE u.version > $1`
			args = append(args, b.Since())
		}
		rows, _ := tx.Query(ctx, q, args...)
		var name, kind, body string
		var changed time.Time
		_, err := pgx.ForEachRow(rows, []any{&name, &kind, &body, &changed}, func() error {
			b.AddText(name, store.Text{Kind: store.Kind(kind), Body: body, Changed: changed.UTC()})
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	if !b.Full() {
		rows, _ := tx.Query(ctx, `SELECT name FROM tombstones WHERE version > $1`, b.Since())
		var name string
		_, err := pgx.ForEachRow(rows, []any{&name}, func() error {
			b.AddDeleted(name)
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	return b.Snapshot(), nil
}

func collectChanges(rows pgx.Rows) ([]store.Change, error) {
	changes, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.Change, error) {
		var c store.Change
		var kind string
		err := r.Scan(&c.Version, &c.Name, &kind, &c.Body, &c.At, &c.Deleted)
		c.Kind, c.At = store.Kind(kind), c.At.UTC()
		return c, err
	})
	if changes == nil && err == nil {
		changes = []store.Change{}
	}
	return changes, err
}

// History returns a user's newest changes of one kind.
func (s *Store) History(ctx context.Context, name string, k store.Kind, limit int) ([]store.Change, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	if err := invalid(store.ValidName(name), store.ValidKind(k)); err != nil {
		return nil, err
	}
	parent := ctx
	ctx, cancel := op(ctx)
	defer cancel()
	var changes []store.Change
	err := pgx.BeginTxFunc(ctx, s.pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		var one int
		if err := tx.QueryRow(ctx, `SELECT 1 FROM users WHERE name = $1`, name).Scan(&one); errors.Is(err, pgx.ErrNoRows) {
			return notFound(name)
		} else if err != nil {
			return err
		}
		rows, _ := tx.Query(ctx, `SELECT version, name, kind, body, at, deleted FROM history
			WHERE name = $1 AND kind = $2 ORDER BY version DESC LIMIT $3`, name, string(k), max(limit, 0))
		var err error
		changes, err = collectChanges(rows)
		return err
	})
	if err != nil {
		return nil, fail(parent, "history", err)
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
	parent := ctx
	ctx, cancel := op(ctx)
	defer cancel()
	rows, _ := s.pool.Query(ctx, `SELECT h.version, h.name, h.kind, h.body, h.at, h.deleted
		FROM history h JOIN users u ON u.name = h.name
		WHERE h.kind = $1 AND u.listed AND NOT u.hidden ORDER BY h.version DESC LIMIT $2`, string(k), max(limit, 0))
	changes, err := collectChanges(rows)
	if err != nil {
		return nil, fail(parent, "recent", err)
	}
	return changes, nil
}
