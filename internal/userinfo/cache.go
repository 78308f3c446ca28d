package userinfo

import (
	"context"
	"errors"
	"io"
	"sync"
	"time"
)

// Defaults of the caching wrappers.
const (
	// DefaultCacheTTL is how long a cached answer is used: changes to a
	// source show within this time.
	DefaultCacheTTL = time.Second
	// DefaultCacheEntries bounds the entries of one cache.
	DefaultCacheEntries = 1024
	// DefaultCacheBytes bounds the file contents CachedFiles holds.
	DefaultCacheBytes = 8 << 20
)

// The caching wrappers below sit in front of a source and answer repeated
// questions from memory for a short time (TTL), which takes the file-system
// work out of a busy daemon's hot path. They follow the same rules:
//
//   - TTL 0 means DefaultCacheTTL; a negative TTL turns caching off (every
//     call goes to the source).
//   - Answers and errors wrapping ErrNotFound are cached: "no such file" is
//     the common case. Other errors are not, so a failing source is asked
//     again on the next call, and neither is anything answered while the
//     caller's context was done (a timeout says nothing about the data).
//   - Each cache holds at most MaxEntries entries (DefaultCacheEntries when
//     0 or less), and CachedFiles at most MaxBytes of file contents
//     (DefaultCacheBytes when 0 or less). When a new entry does not fit,
//     expired entries are dropped; if that frees too little, the cache is
//     emptied. Memory stays bounded whatever the queries.
//   - Cached values are shared between callers: the slices they hold
//     (UserFile.Data, the session list) must not be modified. The
//     Responder only reads them.
//   - They are safe for concurrent use; their fields must not change after
//     first use.
//
// A wrapper keeps its entries for its whole life: a new wrapper (as a
// daemon builds on reload) starts empty.

// cacheTTL returns the effective TTL; ok is false when caching is off.
func cacheTTL(ttl time.Duration) (time.Duration, bool) {
	switch {
	case ttl < 0:
		return 0, false
	case ttl == 0:
		return DefaultCacheTTL, true
	}
	return ttl, true
}

// ctxEnded reports whether ctx is done or err comes from a context.
func ctxEnded(ctx context.Context, err error) bool {
	return ctx.Err() != nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}

// cacheable reports whether the outcome of a source call may be cached.
func cacheable(ctx context.Context, err error) bool {
	return (err == nil || errors.Is(err, ErrNotFound)) && !ctxEnded(ctx, err)
}

// cacheEntry is one cached answer.
type cacheEntry[V any] struct {
	v       V
	err     error // nil or an error wrapping ErrNotFound
	size    int64
	expires time.Time
}

// cacheLimits are the bounds and clock of one operation.
type cacheLimits struct {
	ttl        time.Duration
	maxEntries int
	maxBytes   int64 // 0: entries are not counted in bytes
	now        func() time.Time
}

func limits(ttl time.Duration, maxEntries int, maxBytes int64, now func() time.Time) cacheLimits {
	if maxEntries <= 0 {
		maxEntries = DefaultCacheEntries
	}
	if now == nil {
		now = time.Now
	}
	return cacheLimits{ttl: ttl, maxEntries: maxEntries, maxBytes: maxBytes, now: now}
}

// ttlCache is a bounded map of answers that expire.
type ttlCache[K comparable, V any] struct {
	mu    sync.Mutex
	m     map[K]cacheEntry[V]
	bytes int64
}

// get returns the entry of k if it has not expired.
func (c *ttlCache[K, V]) get(k K, now time.Time) (cacheEntry[V], bool) {
	c.mu.Lock()
	e, ok := c.m[k]
	c.mu.Unlock()
	if !ok || !now.Before(e.expires) {
		return cacheEntry[V]{}, false
	}
	return e, true
}

// put stores e under k, making room within lim first.
func (c *ttlCache[K, V]) put(k K, e cacheEntry[V], lim *cacheLimits, now time.Time) {
	if lim.maxBytes > 0 && e.size > lim.maxBytes {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = make(map[K]cacheEntry[V])
	}
	if old, ok := c.m[k]; ok {
		delete(c.m, k)
		c.bytes -= old.size
	}
	full := func() bool {
		return len(c.m) >= lim.maxEntries || (lim.maxBytes > 0 && c.bytes+e.size > lim.maxBytes)
	}
	if full() {
		// Drop what has expired; when that frees less than an eighth of
		// the entries, start afresh, so that making room costs O(1) per
		// insertion over time.
		before := len(c.m)
		for k, old := range c.m {
			if !now.Before(old.expires) {
				delete(c.m, k)
				c.bytes -= old.size
			}
		}
		if full() || before-len(c.m) < lim.maxEntries/8 {
			clear(c.m)
			c.bytes = 0
		}
	}
	c.m[k] = e
	c.bytes += e.size
}

// len returns the number of entries and their size in bytes.
func (c *ttlCache[K, V]) len() (int, int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.m), c.bytes
}

// through answers k from c or from load, caching what may be cached.
func through[K comparable, V any](ctx context.Context, c *ttlCache[K, V], lim cacheLimits, k K, size func(V) int64, load func() (V, error)) (V, error) {
	now := lim.now()
	if e, ok := c.get(k, now); ok {
		return e.v, e.err
	}
	v, err := load()
	if cacheable(ctx, err) {
		e := cacheEntry[V]{v: v, err: err, expires: now.Add(lim.ttl)}
		if size != nil {
			e.size = size(v)
		}
		c.put(k, e, &lim, now)
	}
	return v, err
}

// accountKey identifies an account for the sources that look at its
// login and UID only.
type accountKey struct {
	login string
	uid   uint32
}

// CachedLastLogins is a LastLogins that caches the answers of Source
// per account (login and UID) for TTL; see the rules above.
type CachedLastLogins struct {
	Source     LastLogins
	TTL        time.Duration // DefaultCacheTTL when 0; no caching when negative
	MaxEntries int           // DefaultCacheEntries when 0 or less

	now   func() time.Time // time.Now when nil
	cache ttlCache[accountKey, LastLogin]
}

var (
	_ LastLogins = (*CachedLastLogins)(nil)
	_ io.Closer  = (*CachedLastLogins)(nil)
)

// Close closes the wrapped source if it is an io.Closer.
func (c *CachedLastLogins) Close() error {
	if cl, ok := c.Source.(io.Closer); ok {
		return cl.Close()
	}
	return nil
}

// LastLogin returns the last login of a.
func (c *CachedLastLogins) LastLogin(ctx context.Context, a *Account) (LastLogin, error) {
	ttl, on := cacheTTL(c.TTL)
	if !on || a == nil {
		return c.Source.LastLogin(ctx, a)
	}
	return through(ctx, &c.cache, limits(ttl, c.MaxEntries, 0, c.now), accountKey{a.Login, a.UID}, nil,
		func() (LastLogin, error) { return c.Source.LastLogin(ctx, a) })
}

// CachedMailboxes is a Mailboxes that caches the mail status of each
// account (login and UID) for TTL; see the rules above.
type CachedMailboxes struct {
	Source     Mailboxes
	TTL        time.Duration // DefaultCacheTTL when 0; no caching when negative
	MaxEntries int           // DefaultCacheEntries when 0 or less

	now   func() time.Time // time.Now when nil
	cache ttlCache[accountKey, MailStatus]
}

var _ Mailboxes = (*CachedMailboxes)(nil)

// Mail returns the mail status of a.
func (c *CachedMailboxes) Mail(ctx context.Context, a *Account) (MailStatus, error) {
	ttl, on := cacheTTL(c.TTL)
	if !on || a == nil {
		return c.Source.Mail(ctx, a)
	}
	return through(ctx, &c.cache, limits(ttl, c.MaxEntries, 0, c.now), accountKey{a.Login, a.UID}, nil,
		func() (MailStatus, error) { return c.Source.Mail(ctx, a) })
}

// fileKey identifies one ReadFile or Hidden question.
type fileKey struct {
	login, home string
	uid         uint32
	name        string
	max         int64
	hidden      bool // the question is Hidden, not ReadFile
}

// fileAnswer is the answer to a ReadFile or a Hidden question.
type fileAnswer struct {
	file   UserFile
	hidden bool
}

// entryOverhead approximates the memory of a cache entry besides its
// strings and data, for the byte bound.
const entryOverhead = 128

// CachedFiles is a Files that caches, per account (login, home directory
// and UID), the published files by name and size cap, and whether the
// account is hidden, for TTL; see the rules above. A ~/.nofinger created
// or removed shows within TTL.
//
// The checks the wrapped source makes (ownership, mode, symbolic links)
// are made when an answer is loaded; a cached answer is one the source
// gave within TTL.
type CachedFiles struct {
	Source     Files
	TTL        time.Duration // DefaultCacheTTL when 0; no caching when negative
	MaxEntries int           // DefaultCacheEntries when 0 or less
	MaxBytes   int64         // DefaultCacheBytes when 0 or less

	now   func() time.Time // time.Now when nil
	cache ttlCache[fileKey, fileAnswer]
}

var _ Files = (*CachedFiles)(nil)

func (c *CachedFiles) limits(ttl time.Duration) cacheLimits {
	maxBytes := c.MaxBytes
	if maxBytes <= 0 {
		maxBytes = DefaultCacheBytes
	}
	return limits(ttl, c.MaxEntries, maxBytes, c.now)
}

func fileSize(k *fileKey) func(fileAnswer) int64 {
	return func(v fileAnswer) int64 {
		return entryOverhead + int64(len(k.login)+len(k.home)+len(k.name)+cap(v.file.Data))
	}
}

// ReadFile returns the named file of a, at most max bytes. The Data of the
// result is shared and must not be modified.
func (c *CachedFiles) ReadFile(ctx context.Context, a *Account, name string, max int64) (UserFile, error) {
	ttl, on := cacheTTL(c.TTL)
	if !on || a == nil {
		return c.Source.ReadFile(ctx, a, name, max)
	}
	k := fileKey{login: a.Login, home: a.Home, uid: a.UID, name: name, max: max}
	v, err := through(ctx, &c.cache, c.limits(ttl), k, fileSize(&k), func() (fileAnswer, error) {
		f, err := c.Source.ReadFile(ctx, a, name, max)
		return fileAnswer{file: f}, err
	})
	return v.file, err
}

// Hidden reports whether a asked not to be fingered.
func (c *CachedFiles) Hidden(ctx context.Context, a *Account) bool {
	ttl, on := cacheTTL(c.TTL)
	if !on || a == nil {
		return c.Source.Hidden(ctx, a)
	}
	k := fileKey{login: a.Login, home: a.Home, uid: a.UID, hidden: true}
	v, _ := through(ctx, &c.cache, c.limits(ttl), k, fileSize(&k), func() (fileAnswer, error) {
		return fileAnswer{hidden: c.Source.Hidden(ctx, a)}, nil
	})
	return v.hidden
}

// CachedSessions is a Sessions that caches the whole session list for
// TTL; see the rules above. Callers that ask while the list is being
// loaded wait for that load (or for their own context) and share its
// result instead of loading it again. Idle times are those computed when
// the list was loaded, so they may lag by up to TTL.
//
// Close closes the wrapped source when it is an io.Closer.
type CachedSessions struct {
	Source Sessions
	TTL    time.Duration // DefaultCacheTTL when 0; no caching when negative

	now     func() time.Time // time.Now when nil
	mu      sync.Mutex
	list    []Session
	expires time.Time // list is valid before this time; zero: no list
	loading *sessionsLoad
}

// sessionsLoad is a load of the session list in progress.
type sessionsLoad struct {
	done     chan struct{}
	list     []Session
	err      error
	canceled bool // the loading caller's context ended
}

var (
	_ Sessions  = (*CachedSessions)(nil)
	_ io.Closer = (*CachedSessions)(nil)
)

// Sessions returns the current sessions. The list is shared and must not
// be modified.
func (c *CachedSessions) Sessions(ctx context.Context) ([]Session, error) {
	ttl, on := cacheTTL(c.TTL)
	if !on {
		return c.Source.Sessions(ctx)
	}
	now := time.Now
	if c.now != nil {
		now = c.now
	}
	for {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		t := now()
		c.mu.Lock()
		if !c.expires.IsZero() && t.Before(c.expires) {
			list := c.list
			c.mu.Unlock()
			return list, nil
		}
		if l := c.loading; l != nil {
			c.mu.Unlock()
			select {
			case <-l.done:
			case <-ctx.Done():
				return nil, ctx.Err()
			}
			if l.canceled {
				continue // the loader gave up; load again
			}
			return l.list, l.err
		}
		l := &sessionsLoad{done: make(chan struct{})}
		c.loading = l
		c.mu.Unlock()
		c.load(ctx, l, t.Add(ttl))
		return l.list, l.err
	}
}

// load runs l, stores its list until expires when it succeeds, and lets
// the callers waiting for it go, even if the source panics.
func (c *CachedSessions) load(ctx context.Context, l *sessionsLoad, expires time.Time) {
	l.canceled = true // until the source returns
	defer func() {
		c.mu.Lock()
		c.loading = nil
		if l.err == nil && !l.canceled {
			c.list, c.expires = l.list, expires
		}
		c.mu.Unlock()
		close(l.done)
	}()
	l.list, l.err = c.Source.Sessions(ctx)
	l.canceled = l.err != nil && ctxEnded(ctx, l.err)
}

// Close closes the wrapped source if it is an io.Closer.
func (c *CachedSessions) Close() error {
	if cl, ok := c.Source.(io.Closer); ok {
		return cl.Close()
	}
	return nil
}
