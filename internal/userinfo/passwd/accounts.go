// Package passwd provides the account and user-file sources of openfinger:
// accounts from the passwd database (Accounts), the files users publish in
// their home directories (Files), GECOS splitting, phone formatting and
// UID_MIN from login.defs.
package passwd

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"os/user"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/openfinger/finger/internal/userinfo"
)

// DefaultPath is the passwd file read when Accounts.Path is empty.
const DefaultPath = "/etc/passwd"

// Bounds on name-service lookups; see Accounts.
const (
	DefaultMaxLookups    = 16
	DefaultLookupTimeout = time.Second
)

var _ userinfo.Accounts = (*Accounts)(nil)

// Accounts is a userinfo.Accounts backed by a passwd(5) file, with a
// fallback to the system's name service (NSS: LDAP, SSSD, ...) for logins
// the file does not contain.
//
// The parsed file is cached and re-read only when its identity changes:
// device, inode, size or modification time as reported by stat(2). Tools
// that edit passwd (useradd, vipw, chfn) replace the file by rename, which
// changes the inode, so edits are picked up on the next call. An in-place
// rewrite that keeps the same size within the same mtime tick is not
// detected until the next change.
//
// An Accounts is safe for concurrent use by multiple goroutines; its
// fields must not be changed after first use. Returned accounts are fresh
// copies the caller may modify.
type Accounts struct {
	// Path is the passwd file; DefaultPath when empty.
	Path string

	// NoNSS switches the name-service fallback off: only Path is consulted.
	//
	// The fallback uses os/user.Lookup. In a binary built with cgo it asks
	// getpwnam_r, which honours nsswitch.conf (LDAP, SSSD, systemd-userdb...);
	// in a pure-Go build (CGO_ENABLED=0) os/user only reads /etc/passwd, so
	// the fallback then adds nothing beyond that file. NSS cannot enumerate
	// users through os/user, so All never includes them; and os/user reports
	// only the first GECOS field, so such accounts have a Name but no office,
	// phones or shell.
	NoNSS bool

	// MaxLookups bounds the name-service lookups outstanding at once,
	// those still running after their caller stopped waiting included;
	// DefaultMaxLookups when 0 or less. In a cgo build each outstanding
	// lookup holds an OS thread: a name service that never answers must
	// not make the daemon grow without bound. A login that would need a
	// lookup beyond the bound is answered at once as unknown.
	MaxLookups int
	// LookupTimeout bounds the wait for one name-service lookup;
	// DefaultLookupTimeout when 0 or less. A lookup that takes longer is
	// answered as an unknown login (and goes on in the background, counted
	// against MaxLookups, until the name service returns).
	LookupTimeout time.Duration
	// Logger is told when the name service stops answering in time or
	// lookups reach MaxLookups: one warning when it starts (at most one a
	// minute), one line when it answers in time again; never one per
	// query. Nil discards.
	Logger *slog.Logger
	// OnLimit, when not nil, is called for each lookup cut short by
	// LookupTimeout or MaxLookups (a metric counts them).
	OnLimit func()

	// lookupNSS replaces os/user.Lookup in tests.
	lookupNSS func(string) (*user.User, error)

	nssPending  atomic.Int64
	nssDegraded atomic.Bool
	nssWarned   atomic.Int64 // unix nanoseconds of the last warning

	mu    sync.RWMutex
	cache *snapshot
}

// fileKey identifies one version of the passwd file.
type fileKey struct {
	dev, ino uint64
	size     int64
	mtime    time.Time
}

type snapshot struct {
	key     fileKey
	list    []*userinfo.Account
	byLogin map[string]*userinfo.Account
}

func (a *Accounts) path() string {
	if a.Path == "" {
		return DefaultPath
	}
	return a.Path
}

func keyOf(fi fs.FileInfo) fileKey {
	k := fileKey{size: fi.Size(), mtime: fi.ModTime()}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		k.dev, k.ino = uint64(st.Dev), uint64(st.Ino)
	}
	return k
}

// load returns the current parsed file, re-reading it if it changed.
func (a *Accounts) load() (*snapshot, error) {
	p := a.path()
	fi, err := os.Stat(p)
	if err != nil {
		return nil, err
	}
	k := keyOf(fi)
	a.mu.RLock()
	s := a.cache
	a.mu.RUnlock()
	if s != nil && s.key == k {
		return s, nil
	}

	a.mu.Lock()
	defer a.mu.Unlock()
	if a.cache != nil && a.cache.key == k {
		return a.cache, nil // another goroutine reloaded meanwhile
	}
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	// Key the cache on the file actually read, so a replacement between
	// the stat above and the open is seen as a change next time.
	fi, err = f.Stat()
	if err != nil {
		return nil, err
	}
	list, err := Parse(f)
	if err != nil {
		return nil, err
	}
	s = &snapshot{key: keyOf(fi), list: list, byLogin: make(map[string]*userinfo.Account, len(list))}
	for _, acc := range list {
		if _, dup := s.byLogin[acc.Login]; !dup { // first entry wins, like getpwnam
			s.byLogin[acc.Login] = acc
		}
	}
	a.cache = s
	return s, nil
}

// Lookup returns the account with exactly this login (case-sensitive). The
// passwd file is consulted first, then, unless NoNSS is set, the system's
// name service. The NSS query runs in its own goroutine bounded by ctx and
// LookupTimeout: if either ends first, Lookup returns and the query
// finishes in the background. A query cut short by LookupTimeout or
// refused by MaxLookups gives an error wrapping userinfo.ErrNotFound: the
// login is answered as unknown, like one the name service does not know.
func (a *Accounts) Lookup(ctx context.Context, login string) (*userinfo.Account, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s, ferr := a.load()
	if ferr == nil {
		if acc, ok := s.byLogin[login]; ok {
			c := *acc
			return &c, nil
		}
	}
	if !validLogin(login) {
		return nil, fmt.Errorf("passwd: %w", userinfo.ErrNotFound)
	}
	if a.NoNSS {
		if ferr != nil {
			return nil, fmt.Errorf("passwd: %w", ferr)
		}
		return nil, fmt.Errorf("passwd: %w", userinfo.ErrNotFound)
	}
	acc, err := a.nss(ctx, login)
	if err != nil {
		if ferr != nil && errors.Is(err, userinfo.ErrNotFound) {
			return nil, fmt.Errorf("%w (passwd file: %w)", err, ferr)
		}
		return nil, err
	}
	return acc, nil
}

// LookupAsUnknown does the work Lookup does for a login that neither the
// file nor the name service knows, beyond the file (the caller's Lookup
// of the login has read that): it asks the name service for a stand-in
// login that does not exist, derived from login with a key of this
// process, so that repeated queries for one login meet the name service's
// caches as repeated queries for one unknown login do. It returns when
// Lookup would have: at the answer, the timeout or the end of ctx. A
// login the file does not hold was found through the name service: its
// Lookup has already done that work, and LookupAsUnknown does nothing.
func (a *Accounts) LookupAsUnknown(ctx context.Context, login string) {
	if a.NoNSS || !validLogin(login) || ctx.Err() != nil {
		return
	}
	if s, err := a.load(); err != nil || s.byLogin[login] == nil {
		return
	}
	a.nss(ctx, standIn(login))
}

// standInKey makes the stand-in logins of this process.
var standInKey = func() [32]byte {
	var k [32]byte
	rand.Read(k[:])
	return k
}()

// standIn returns a login that no name service knows, the same for the
// same login: "x" and 24 hex digits of a keyed hash of login.
func standIn(login string) string {
	h := hmac.New(sha256.New, standInKey[:])
	h.Write([]byte(login))
	return "x" + hex.EncodeToString(h.Sum(nil)[:12])
}

var _ userinfo.UnknownLookups = (*Accounts)(nil)

func (a *Accounts) nss(ctx context.Context, login string) (*userinfo.Account, error) {
	lookup := a.lookupNSS
	if lookup == nil {
		lookup = user.Lookup
	}
	max := int64(a.maxLookups())
	if a.nssPending.Add(1) > max {
		a.nssPending.Add(-1)
		a.limited(fmt.Sprintf("%d lookups outstanding", max))
		return nil, fmt.Errorf("passwd: name service: %d lookups outstanding: %w", max, userinfo.ErrNotFound)
	}
	type result struct {
		u   *user.User
		err error
	}
	ch := make(chan result, 1)
	go func() {
		defer a.nssPending.Add(-1)
		u, err := lookup(login)
		ch <- result{u, err}
	}()
	timeout := a.timeout()
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	var r result
	select {
	case r = <-ch:
		a.answered()
	case <-timer.C:
		a.limited(fmt.Sprintf("no answer within %v", timeout))
		return nil, fmt.Errorf("passwd: name service: no answer within %v: %w", timeout, userinfo.ErrNotFound)
	case <-ctx.Done():
		return nil, fmt.Errorf("passwd: name service: %w", ctx.Err())
	}
	if r.err != nil {
		var unknown user.UnknownUserError
		if errors.As(r.err, &unknown) {
			return nil, fmt.Errorf("passwd: %w", userinfo.ErrNotFound)
		}
		return nil, fmt.Errorf("passwd: name service: %w", r.err)
	}
	if r.u.Username != login {
		// Some NSS modules match case-insensitively; logins here are exact.
		return nil, fmt.Errorf("passwd: %w", userinfo.ErrNotFound)
	}
	uid, err1 := strconv.ParseUint(r.u.Uid, 10, 32)
	gid, err2 := strconv.ParseUint(r.u.Gid, 10, 32)
	if err1 != nil || err2 != nil {
		return nil, fmt.Errorf("passwd: name service: bad ids for %q: %w", login, userinfo.ErrNotFound)
	}
	// The name service gives no shell.
	return newAccount(login, uid, gid, r.u.Name, r.u.HomeDir, ""), nil
}

// limited records a lookup cut short, and tells the operator when the
// name service has just stopped answering in time.
func (a *Accounts) limited(why string) {
	if a.OnLimit != nil {
		a.OnLimit()
	}
	if a.nssDegraded.Swap(true) {
		return
	}
	now := time.Now().UnixNano()
	last := a.nssWarned.Load()
	if last != 0 && now-last < int64(time.Minute) || !a.nssWarned.CompareAndSwap(last, now) {
		return
	}
	if a.Logger != nil {
		a.Logger.Warn("passwd: the name service does not answer in time; logins it would have to look up are answered as unknown until it does",
			"reason", why, "timeout", a.timeout(), "max_lookups", a.maxLookups())
	}
}

// answered records a lookup answered in time.
func (a *Accounts) answered() {
	if a.nssDegraded.Load() && a.nssDegraded.CompareAndSwap(true, false) && a.Logger != nil {
		a.Logger.Info("passwd: the name service answers in time again")
	}
}

func (a *Accounts) timeout() time.Duration {
	if a.LookupTimeout > 0 {
		return a.LookupTimeout
	}
	return DefaultLookupTimeout
}

func (a *Accounts) maxLookups() int {
	if a.MaxLookups > 0 {
		return a.MaxLookups
	}
	return DefaultMaxLookups
}

// All returns every valid entry of the passwd file, in file order
// (duplicates included). Accounts that only the name service knows are
// not enumerable and are not returned.
func (a *Accounts) All(ctx context.Context) ([]*userinfo.Account, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s, err := a.load()
	if err != nil {
		return nil, fmt.Errorf("passwd: %w", err)
	}
	vals := make([]userinfo.Account, len(s.list))
	out := make([]*userinfo.Account, len(s.list))
	for i, acc := range s.list {
		vals[i] = *acc
		out[i] = &vals[i]
	}
	return out, nil
}
