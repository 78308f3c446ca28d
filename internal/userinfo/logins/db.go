package logins

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/url"
	"os"
	"strconv"
	"syscall"
	"time"

	"github.com/openfinger/finger/internal/userinfo"

	"modernc.org/sqlite" // registers the "sqlite" driver
)

// querier is what a read runs its query on: the kept connection (a
// keptConn) or a connection opened for one read.
type querier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// keptConn is the connection a db keeps between reads. On it, PRAGMA
// data_version tells whether another connection (any process) committed a
// change since the last read, so what was read from the file can be kept
// until then.
type keptConn struct {
	*sql.Conn
	d *db
}

// dataVersion returns the connection's PRAGMA data_version.
func (c keptConn) dataVersion(ctx context.Context) (int64, error) {
	var v int64
	err := c.QueryRowContext(ctx, "PRAGMA data_version").Scan(&v)
	return v, err
}

// fileID identifies a file; a new file renamed over the path has another.
type fileID struct{ dev, ino uint64 }

func idOf(fi fs.FileInfo) fileID {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return fileID{dev: uint64(st.Dev), ino: uint64(st.Ino)}
	}
	return fileID{}
}

// Errors of the database layer. errBusy and errChanged are retried within
// the read's time; errBusy is reported when that time runs out.
var (
	errBusy    = errors.New("held by a writer")
	errChanged = errors.New("changed while being read")
	errNotDB   = errors.New("not an SQLite database")
)

// db is one database file read by the sources. Its reads are serialized:
// lookups are short, a source in front of it caches their answers, and
// one read at a time keeps the reader's own opening of the file (header,
// lock) from ever overlapping a SQLite connection's locks.
type db struct {
	path    string
	maxWait time.Duration
	log     *slog.Logger

	sem chan struct{} // holds one token: the right to read

	// Guarded by sem.
	id   fileID    // the file pool was opened on
	pool *sql.DB   // read-only connection pool; nil when not open
	conn *sql.Conn // pool's one connection, kept
	// memo is what a source derived from the file on conn, valid while
	// PRAGMA data_version is memoVersion; nil when none.
	memo        any
	memoVersion int64
	direct      bool   // WAL database without -wal: read directly under a lock
	failing     bool   // a failure has been logged and nothing worked since
	lastFail    string // the failure logged
}

func newDB(path string, maxWait time.Duration, log *slog.Logger) *db {
	if maxWait <= 0 {
		maxWait = DefaultMaxWait
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	d := &db{path: path, maxWait: maxWait, log: log, sem: make(chan struct{}, 1)}
	d.sem <- struct{}{}
	return d
}

// stat returns the identity of the file at the path; ok is false when it
// cannot be found.
func (d *db) stat() (fileID, bool) {
	fi, err := os.Stat(d.path)
	if err != nil {
		return fileID{}, false
	}
	return idOf(fi), true
}

// read runs fn on the database within the read's time: the time left of
// ctx, at most maxWait. fn returning sql.ErrNoRows means no record. The
// error wraps userinfo.ErrNotFound when the file or the record does not
// exist, is ctx's error when ctx ended, and otherwise wraps
// userinfo.ErrReported: the failure has been logged (once).
func (d *db) read(ctx context.Context, fn func(context.Context, querier) error) error {
	rctx, cancel := context.WithTimeout(ctx, d.maxWait)
	defer cancel()
	select {
	case <-d.sem:
	case <-rctx.Done():
		if err := ctx.Err(); err != nil {
			return err
		}
		// Another read holds the database for the whole wait: it is
		// waiting for a writer and will report that itself.
		return fmt.Errorf("logins: %s: %w: %w", d.path, errBusy, userinfo.ErrReported)
	}
	defer func() { d.sem <- struct{}{} }()

	err := d.readLocked(rctx, fn)
	switch {
	case err == nil, errors.Is(err, sql.ErrNoRows), errors.Is(err, userinfo.ErrNotFound):
		d.recovered()
		if err != nil {
			return fmt.Errorf("logins: %s: %w", d.path, userinfo.ErrNotFound)
		}
		return nil
	case ctx.Err() != nil:
		return ctx.Err() // the query ended: says nothing about the database
	case rctx.Err() != nil || errors.Is(err, errChanged) || isBusy(err):
		err = errBusy
	}
	return d.failed(err)
}

// failed logs err unless a failure is already logged, and returns it
// marked as reported.
func (d *db) failed(err error) error {
	if !d.failing {
		d.failing = true
		d.lastFail = err.Error()
		d.log.Warn("logins: cannot read last logins; no last login is shown from this file until it can be read",
			"path", d.path, "err", err)
	}
	return fmt.Errorf("logins: %s: %w: %w", d.path, err, userinfo.ErrReported)
}

// recovered notes a successful read, logging it after a failure.
func (d *db) recovered() {
	if d.failing {
		d.failing = false
		d.log.Info("logins: last logins readable again", "path", d.path, "after", d.lastFail)
	}
}

// readLocked runs fn, choosing how to read the file. The caller holds sem.
func (d *db) readLocked(ctx context.Context, fn func(context.Context, querier) error) error {
	for {
		fi, err := os.Stat(d.path)
		if errors.Is(err, fs.ErrNotExist) {
			d.closePool()
			return userinfo.ErrNotFound
		}
		if err != nil {
			return err
		}
		if id := idOf(fi); id != d.id {
			// New file (or the first read): forget the old connection.
			d.closePool()
			d.id, d.direct = id, false
		}
		if !d.direct || exists(d.path+"-wal") {
			d.direct = false
			err = d.readPool(ctx, fn)
			if err == nil || errors.Is(err, sql.ErrNoRows) || ctx.Err() != nil || exists(d.path+"-wal") {
				return err
			}
			// A failure without a -wal file: a WAL database whose
			// directory this reader cannot create the -shm in fails
			// this way. Check the header with the connection closed.
			d.closePool()
			wal, herr := walMode(d.path)
			if herr != nil {
				return herr
			}
			if !wal {
				return err
			}
			d.direct = true
		}
		err = d.readDirect(ctx, fn)
		if errors.Is(err, errChanged) && ctx.Err() == nil {
			if err := sleep(ctx, 5*time.Millisecond); err != nil {
				return err
			}
			continue
		}
		return err
	}
}

// readPool runs fn on the kept read-only connection, opening it if needed.
func (d *db) readPool(ctx context.Context, fn func(context.Context, querier) error) error {
	if d.pool == nil {
		// busy_timeout: SQLite waits for a writer's lock; the driver's
		// busy handler gives up as soon as ctx is done, so the wait is
		// bounded by the read's time, whichever is shorter.
		p, err := sql.Open("sqlite", dsn(d.path, "mode=ro", "_pragma=busy_timeout("+strconv.FormatInt(d.maxWait.Milliseconds(), 10)+")"))
		if err != nil {
			return err
		}
		p.SetMaxOpenConns(1)
		p.SetMaxIdleConns(1)
		c, err := p.Conn(ctx)
		if err != nil {
			p.Close()
			return err
		}
		d.pool, d.conn = p, c
	}
	err := fn(ctx, keptConn{Conn: d.conn, d: d})
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		// Start afresh next time: a connection that failed may keep a
		// stale view (a hot journal, a changed mode).
		d.closePool()
	}
	return err
}

// readDirect reads a WAL-mode database that has no -wal file without
// creating one: under a shared lock on the database file, with SQLite's
// immutable mode, on a connection opened for this read only (an immutable
// connection trusts its cache forever). The answer counts only if the
// -wal file is still absent and the file is the same afterwards; a writer
// that starts meanwhile cannot change the file without a -wal file, and
// cannot remove one while the lock is held.
func (d *db) readDirect(ctx context.Context, fn func(context.Context, querier) error) error {
	f, err := os.Open(d.path)
	if err != nil {
		return err
	}
	defer f.Close() // releases the lock
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	if idOf(fi) != d.id {
		return errChanged
	}
	if err := sharedLock(ctx, f); err != nil {
		return err
	}
	if exists(d.path+"-wal") || exists(d.path+"-journal") {
		d.direct = false // a writer is at work: SQLite's own path
		return errChanged
	}
	c, err := sql.Open("sqlite", dsn(d.path, "mode=ro", "immutable=1"))
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetMaxOpenConns(1)
	err = fn(ctx, c)
	if exists(d.path + "-wal") {
		d.direct = false
		return errChanged
	}
	if id, ok := d.stat(); !ok || id != d.id {
		return errChanged
	}
	return err
}

// closePool closes the kept connection, if any.
func (d *db) closePool() {
	d.memo = nil
	if d.conn != nil {
		d.conn.Close()
		d.conn = nil
	}
	if d.pool != nil {
		d.pool.Close()
		d.pool = nil
	}
}

// close closes the kept connection; a later read opens it again.
func (d *db) close() error {
	<-d.sem
	defer func() { d.sem <- struct{}{} }()
	d.closePool()
	d.id = fileID{}
	return nil
}

// dsn returns the SQLite URI of path with the given parameters.
func dsn(path string, params ...string) string {
	u := url.URL{Scheme: "file", Path: path}
	q := ""
	for i, p := range params {
		if i > 0 {
			q += "&"
		}
		q += p
	}
	u.RawQuery = q
	return u.String()
}

// walMode reports whether the file at path is an SQLite database in WAL
// mode, from its header.
func walMode(path string) (bool, error) {
	f, err := os.Open(path)
	if err != nil {
		return false, err
	}
	defer f.Close()
	var h [100]byte
	if _, err := io.ReadFull(f, h[:]); err != nil {
		return false, errNotDB
	}
	if string(h[:16]) != "SQLite format 3\x00" {
		return false, errNotDB
	}
	return h[18] == 2 && h[19] == 2, nil
}

func exists(path string) bool {
	_, err := os.Lstat(path)
	return err == nil
}

// sleep waits for d or until ctx is done.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// isBusy reports whether err is SQLite's SQLITE_BUSY or SQLITE_LOCKED.
func isBusy(err error) bool {
	var se *sqlite.Error
	if !errors.As(err, &se) {
		return false
	}
	code := se.Code() & 0xff
	return code == 5 || code == 6
}
