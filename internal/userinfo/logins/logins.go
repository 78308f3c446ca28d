// Package logins reads users' last logins from the SQLite databases of
// recent Linux systems: lastlog2 (util-linux's liblastlog2, written by
// pam_lastlog2) and wtmpdb (written by pam_wtmpdb and sshd). Debian 13 and
// Fedora 43 keep last logins there instead of in /var/log/lastlog.
//
// The databases are read with modernc.org/sqlite, a pure-Go SQLite: fingerd
// stays a static binary built without cgo or a C toolchain, and it is the
// SQLite the project already uses elsewhere.
//
// Reading is read-only and never blocks a query for long:
//
//   - Connections are opened read-only (mode=ro) on first use, kept, and
//     opened again when the file is replaced (its inode changes).
//   - Every read is bounded by the query's context and by MaxWait: a
//     database held under a write transaction longer than that gives no
//     answer, not a hung query.
//   - A database in WAL mode whose directory the reader cannot write (the
//     usual case for a daemon running as nobody) has no -shm file to share
//     while no writer has it open; it is then read directly (SQLite's
//     immutable mode) while the reader holds a shared lock on the database
//     file, and the answer is dropped unless the -wal file is still absent
//     and the file unchanged afterwards. A writer cannot change the file
//     under that lock without leaving a -wal file behind, so no torn data is
//     ever returned.
//   - A missing database means "no record" and is not logged. Any other
//     failure (busy, corrupt, not a database, unreadable, wrong schema) is
//     logged once, when a source starts failing, and again only after it has
//     worked in between; the error returned wraps userinfo.ErrReported so
//     that the Responder does not log it once per query, and the client sees
//     no last-login line at all (never an error text).
package logins

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/openfinger/finger/internal/userinfo"
)

// Default paths. wtmpdb 0.75 and later keep the database in /var/log and
// leave a symbolic link at the older path; Debian 13 (wtmpdb 0.73) already
// does the same. Both paths are read, and a file reached by both is read
// once.
const (
	DefaultLastlog2Path = "/var/lib/lastlog/lastlog2.db"
	DefaultWtmpdbPath   = "/var/log/wtmp.db"
	OldWtmpdbPath       = "/var/lib/wtmpdb/wtmp.db"
)

// DefaultWtmpdbPaths returns the default wtmpdb paths, newest layout first.
func DefaultWtmpdbPaths() []string { return []string{DefaultWtmpdbPath, OldWtmpdbPath} }

// DefaultMaxWait bounds how long one lookup waits for a database held by a
// writer. pam_lastlog2 and pam_wtmpdb hold their write locks for
// milliseconds.
const DefaultMaxWait = 500 * time.Millisecond

// wtmpdb record types (wtmpdb.h).
const wtmpUserProcess = 3

var (
	_ userinfo.LastLogins = (*Lastlog2)(nil)
	_ userinfo.LastLogins = (*Wtmpdb)(nil)
	_ userinfo.LastLogins = Newest(nil)
	_ io.Closer           = (*Lastlog2)(nil)
	_ io.Closer           = (*Wtmpdb)(nil)
	_ io.Closer           = Newest(nil)
)

// Lastlog2 is a userinfo.LastLogins reading a lastlog2 database: table
// Lastlog2(Name, Time, TTY, RemoteHost, Service), one row per user, Time in
// seconds since the epoch. A user without a row, or with a zero Time, has
// no record.
//
// A Lastlog2 is safe for concurrent use; its fields must not change after
// first use. Close releases its connection.
type Lastlog2 struct {
	Path    string        // DefaultLastlog2Path when empty
	MaxWait time.Duration // DefaultMaxWait when 0 or less
	Logger  *slog.Logger  // receives failures, once per run of failures; nil discards them

	once sync.Once
	db   *db
}

func (l *Lastlog2) get() *db {
	l.once.Do(func() {
		l.db = newDB(or(l.Path, DefaultLastlog2Path), l.MaxWait, l.Logger)
	})
	return l.db
}

// LastLogin returns the last login of a.
func (l *Lastlog2) LastLogin(ctx context.Context, a *userinfo.Account) (userinfo.LastLogin, error) {
	if a == nil {
		return userinfo.LastLogin{}, fmt.Errorf("logins: no account: %w", userinfo.ErrNotFound)
	}
	var ll userinfo.LastLogin
	err := l.get().read(ctx, func(ctx context.Context, q querier) error {
		var sec sql.NullInt64
		var tty, host sql.NullString
		err := q.QueryRowContext(ctx, `SELECT Time, TTY, RemoteHost FROM Lastlog2 WHERE Name = ?`, a.Login).
			Scan(&sec, &tty, &host)
		if err != nil {
			return err
		}
		if sec.Int64 > 0 {
			ll = userinfo.LastLogin{Time: time.Unix(sec.Int64, 0), TTY: tty.String, Host: host.String}
		}
		return nil
	})
	return found(ll, err, a.Login)
}

// Close closes the database connection, if one is open.
func (l *Lastlog2) Close() error {
	return l.get().close()
}

// Wtmpdb is a userinfo.LastLogins reading wtmpdb databases: table wtmp(ID,
// Type, User, Login, Logout, TTY, RemoteHost, Service), one row per
// session, Login in microseconds since the epoch. The last login is the
// user session (Type 3) that began last, whether it has ended or is still
// open (Logout NULL). Every path that exists is read and the newest record
// wins; paths that lead to the same file (the symbolic link wtmpdb leaves
// at its old path) are read once.
//
// A Wtmpdb is safe for concurrent use; its fields must not change after
// first use. Close releases its connections.
type Wtmpdb struct {
	Paths   []string      // DefaultWtmpdbPaths when empty
	MaxWait time.Duration // DefaultMaxWait when 0 or less
	Logger  *slog.Logger  // receives failures, once per run of failures; nil discards them

	once sync.Once
	dbs  []*db
}

func (w *Wtmpdb) get() []*db {
	w.once.Do(func() {
		paths := w.Paths
		if len(paths) == 0 {
			paths = DefaultWtmpdbPaths()
		}
		for _, p := range paths {
			w.dbs = append(w.dbs, newDB(p, w.MaxWait, w.Logger))
		}
	})
	return w.dbs
}

// LastLogin returns the last login of a.
func (w *Wtmpdb) LastLogin(ctx context.Context, a *userinfo.Account) (userinfo.LastLogin, error) {
	if a == nil {
		return userinfo.LastLogin{}, fmt.Errorf("logins: no account: %w", userinfo.ErrNotFound)
	}
	var best userinfo.LastLogin
	var errs []error
	var seen []fileID
	for _, d := range w.get() {
		id, ok := d.stat()
		if !ok || containsID(seen, id) {
			continue
		}
		seen = append(seen, id)
		var ll userinfo.LastLogin
		err := d.read(ctx, func(ctx context.Context, q querier) error {
			if c, ok := q.(keptConn); ok {
				m, err := wtmpSummary(ctx, c)
				if err != nil {
					return err
				}
				if m != nil {
					ll = m[a.Login]
					return nil
				}
			}
			var usec sql.NullInt64
			var tty, host sql.NullString
			err := q.QueryRowContext(ctx, `SELECT Login, TTY, RemoteHost FROM wtmp
				WHERE User = ? AND Type = ? ORDER BY Login DESC LIMIT 1`, a.Login, wtmpUserProcess).
				Scan(&usec, &tty, &host)
			if err != nil {
				return err
			}
			if usec.Int64 > 0 {
				ll = userinfo.LastLogin{Time: time.UnixMicro(usec.Int64), TTY: tty.String, Host: host.String}
			}
			return nil
		})
		if err != nil && !errors.Is(err, userinfo.ErrNotFound) {
			errs = append(errs, err)
			continue
		}
		if ll.Time.After(best.Time) {
			best = ll
		}
	}
	if len(errs) > 0 {
		return userinfo.LastLogin{}, errors.Join(errs...)
	}
	return found(best, nil, a.Login)
}

// Close closes the database connections that are open.
func (w *Wtmpdb) Close() error {
	var errs []error
	for _, d := range w.get() {
		errs = append(errs, d.close())
	}
	return errors.Join(errs...)
}

// maxSummary bounds the users a wtmpdb summary holds; a database with
// more is asked user by user.
const maxSummary = 1 << 17

// summaryAfter is how many lookups of an unchanged wtmpdb database are
// answered user by user before a summary is built. Building one scans the
// table and fills a map, which costs about as much as 7 to 30 per-user
// queries (BenchmarkWtmpdb); waiting that many lookups keeps the cost
// within about twice the best choice, whether logins or lookups are the
// more frequent.
const summaryAfter = 16

// wtmpMemo is what a Wtmpdb keeps about one version of a database.
type wtmpMemo struct {
	lookups int                           // since the database last changed
	users   map[string]userinfo.LastLogin // the summary; nil: none yet
	tooBig  bool                          // more than maxSummary users
}

// wtmpSummary returns the last login of every user in the wtmpdb database
// on c, or nil when lookups should ask for the one user. wtmpdb has no
// index on User, so asking for one user scans the whole table; once the
// database has gone unchanged (PRAGMA data_version) for summaryAfter
// lookups, the table is scanned once into a summary kept until it
// changes.
func wtmpSummary(ctx context.Context, c keptConn) (map[string]userinfo.LastLogin, error) {
	v, err := c.dataVersion(ctx)
	if err != nil {
		return nil, err
	}
	memo, ok := c.d.memo.(*wtmpMemo)
	if !ok || c.d.memoVersion != v {
		memo = &wtmpMemo{}
		c.d.memo, c.d.memoVersion = memo, v
	}
	memo.lookups++
	if memo.users != nil || memo.tooBig || memo.lookups <= summaryAfter {
		return memo.users, nil
	}
	// SQLite takes the bare columns of a max() query from the row that
	// holds the maximum.
	rows, err := c.QueryContext(ctx, `SELECT User, max(Login), TTY, RemoteHost FROM wtmp
		WHERE Type = ? AND Login > 0 GROUP BY User LIMIT ?`, wtmpUserProcess, maxSummary+1)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	m := make(map[string]userinfo.LastLogin)
	for rows.Next() {
		var user string
		var usec int64
		var tty, host sql.NullString
		if err := rows.Scan(&user, &usec, &tty, &host); err != nil {
			return nil, err
		}
		m[user] = userinfo.LastLogin{Time: time.UnixMicro(usec), TTY: tty.String, Host: host.String}
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if len(m) > maxSummary {
		memo.tooBig = true
		return nil, nil
	}
	memo.users = m
	return m, nil
}

// found turns the outcome of a lookup into the LastLogins convention.
func found(ll userinfo.LastLogin, err error, login string) (userinfo.LastLogin, error) {
	switch {
	case err != nil:
		return userinfo.LastLogin{}, err
	case ll.Time.IsZero():
		return userinfo.LastLogin{}, fmt.Errorf("logins: %q: %w", login, userinfo.ErrNotFound)
	}
	return ll, nil
}

func containsID(ids []fileID, id fileID) bool {
	for _, x := range ids {
		if x == id {
			return true
		}
	}
	return false
}

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// Newest is a userinfo.LastLogins that asks every source and returns the
// newest record. When a source fails (other than with ErrNotFound), the
// answer is that failure: the newest record cannot be known, and an older
// record from another source would be wrong. When no source has a record,
// the error wraps ErrNotFound.
type Newest []userinfo.LastLogins

// LastLogin returns the newest record of a among the sources.
func (n Newest) LastLogin(ctx context.Context, a *userinfo.Account) (userinfo.LastLogin, error) {
	var best userinfo.LastLogin
	var errs []error
	for _, src := range n {
		if err := ctx.Err(); err != nil {
			return userinfo.LastLogin{}, err
		}
		ll, err := src.LastLogin(ctx, a)
		switch {
		case errors.Is(err, userinfo.ErrNotFound):
		case err != nil:
			errs = append(errs, err)
		case ll.Time.After(best.Time):
			best = ll
		}
	}
	if len(errs) > 0 {
		return userinfo.LastLogin{}, errors.Join(errs...)
	}
	if best.Time.IsZero() {
		return userinfo.LastLogin{}, fmt.Errorf("logins: %w", userinfo.ErrNotFound)
	}
	return best, nil
}

// Close closes the sources that are io.Closers.
func (n Newest) Close() error {
	var errs []error
	for _, src := range n {
		if c, ok := src.(io.Closer); ok {
			errs = append(errs, c.Close())
		}
	}
	return errors.Join(errs...)
}
