package userinfo

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// clock is a fake time source the tests move by hand.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)} }

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

var errBroken = errors.New("source broken")

// fakeSource counts the calls of every method and answers what its fields
// say.
type fakeSource struct {
	calls atomic.Int64
	mu    sync.Mutex
	err   error // returned by every call when set
	gen   int   // changes the answers, to tell fresh from cached ones

	hidden bool
	data   []byte // ReadFile's content; nil: ErrNotFound

	block chan struct{} // Sessions waits for it when set
}

func (f *fakeSource) state() (error, int) {
	f.calls.Add(1)
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.err, f.gen
}

func (f *fakeSource) set(err error, gen int) {
	f.mu.Lock()
	f.err, f.gen = err, gen
	f.mu.Unlock()
}

func (f *fakeSource) Sessions(ctx context.Context) ([]Session, error) {
	if f.block != nil {
		select {
		case <-f.block:
		case <-ctx.Done():
			f.calls.Add(1)
			return nil, ctx.Err()
		}
	}
	err, gen := f.state()
	if err != nil {
		return nil, err
	}
	return []Session{{Login: "alice", TTY: "pts/" + strconv.Itoa(gen)}}, nil
}

func (f *fakeSource) LastLogin(ctx context.Context, a *Account) (LastLogin, error) {
	err, gen := f.state()
	if err != nil {
		return LastLogin{}, err
	}
	return LastLogin{TTY: a.Login + strconv.Itoa(gen)}, nil
}

func (f *fakeSource) Mail(ctx context.Context, a *Account) (MailStatus, error) {
	err, gen := f.state()
	if err != nil {
		return MailStatus{}, err
	}
	return MailStatus{Exists: true, Received: time.Unix(int64(gen), 0)}, nil
}

func (f *fakeSource) ReadFile(ctx context.Context, a *Account, name string, max int64) (UserFile, error) {
	err, gen := f.state()
	if err != nil {
		return UserFile{}, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.data == nil {
		return UserFile{}, fmt.Errorf("fake: %s: %w", name, ErrNotFound)
	}
	return UserFile{Data: append([]byte(strconv.Itoa(gen)+":"), f.data...)}, nil
}

func (f *fakeSource) Hidden(ctx context.Context, a *Account) bool {
	_, _ = f.state()
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.hidden
}

var alice = &Account{Login: "alice", UID: 1001, Home: "/home/alice"}

// wrapper is one caching wrapper seen through a single question, so that
// the same table runs for all of them.
type wrapper struct {
	name string
	make func(src *fakeSource, ttl time.Duration, now func() time.Time) func(ctx context.Context) (string, error)
}

var wrappers = []wrapper{
	{"sessions", func(src *fakeSource, ttl time.Duration, now func() time.Time) func(context.Context) (string, error) {
		c := &CachedSessions{Source: src, TTL: ttl, now: now}
		return func(ctx context.Context) (string, error) {
			s, err := c.Sessions(ctx)
			return fmt.Sprint(s), err
		}
	}},
	{"lastlog", func(src *fakeSource, ttl time.Duration, now func() time.Time) func(context.Context) (string, error) {
		c := &CachedLastLogins{Source: src, TTL: ttl, now: now}
		return func(ctx context.Context) (string, error) {
			ll, err := c.LastLogin(ctx, alice)
			return fmt.Sprint(ll), err
		}
	}},
	{"mail", func(src *fakeSource, ttl time.Duration, now func() time.Time) func(context.Context) (string, error) {
		c := &CachedMailboxes{Source: src, TTL: ttl, now: now}
		return func(ctx context.Context) (string, error) {
			m, err := c.Mail(ctx, alice)
			return fmt.Sprint(m), err
		}
	}},
	{"readfile", func(src *fakeSource, ttl time.Duration, now func() time.Time) func(context.Context) (string, error) {
		src.data = []byte("plan")
		c := &CachedFiles{Source: src, TTL: ttl, now: now}
		return func(ctx context.Context) (string, error) {
			f, err := c.ReadFile(ctx, alice, ".plan", 100)
			return string(f.Data), err
		}
	}},
}

func TestCacheTTL(t *testing.T) {
	for _, w := range wrappers {
		t.Run(w.name, func(t *testing.T) {
			ctx := context.Background()
			src, clk := &fakeSource{}, newClock()
			ask := w.make(src, 0, clk.now)
			first, err := ask(ctx)
			if err != nil || src.calls.Load() != 1 {
				t.Fatalf("first call: %q, %v, %d source calls", first, err, src.calls.Load())
			}
			src.set(nil, 1)
			clk.add(DefaultCacheTTL - time.Nanosecond)
			if got, err := ask(ctx); err != nil || got != first || src.calls.Load() != 1 {
				t.Errorf("within TTL: %q (want %q), %v, %d source calls", got, first, err, src.calls.Load())
			}
			clk.add(time.Nanosecond)
			got, err := ask(ctx)
			if err != nil || got == first || src.calls.Load() != 2 {
				t.Errorf("after TTL: %q (want a fresh answer), %v, %d source calls", got, err, src.calls.Load())
			}
			if again, _ := ask(ctx); again != got || src.calls.Load() != 2 {
				t.Errorf("fresh answer not cached: %q, %d source calls", again, src.calls.Load())
			}
		})
	}
}

func TestCacheOff(t *testing.T) {
	for _, w := range wrappers {
		t.Run(w.name, func(t *testing.T) {
			src, clk := &fakeSource{}, newClock()
			ask := w.make(src, -1, clk.now)
			for range 3 {
				ask(context.Background())
			}
			if n := src.calls.Load(); n != 3 {
				t.Errorf("negative TTL: %d source calls for 3 questions, want 3", n)
			}
		})
	}
}

func TestCacheErrors(t *testing.T) {
	for _, w := range wrappers {
		t.Run(w.name, func(t *testing.T) {
			ctx := context.Background()
			src, clk := &fakeSource{err: errBroken}, newClock()
			ask := w.make(src, time.Minute, clk.now)
			if _, err := ask(ctx); !errors.Is(err, errBroken) {
				t.Fatalf("err = %v, want the source's", err)
			}
			if _, err := ask(ctx); !errors.Is(err, errBroken) || src.calls.Load() != 2 {
				t.Errorf("failure cached: %v, %d source calls", err, src.calls.Load())
			}
			src.set(nil, 7)
			if got, err := ask(ctx); err != nil || src.calls.Load() != 3 {
				t.Errorf("after recovery: %q, %v, %d source calls", got, err, src.calls.Load())
			}
			if _, err := ask(ctx); err != nil || src.calls.Load() != 3 {
				t.Errorf("answer after recovery not cached: %v, %d source calls", err, src.calls.Load())
			}
		})
	}
}

func TestCacheCanceled(t *testing.T) {
	for _, w := range wrappers {
		if w.name == "sessions" {
			continue // a done context is refused before the source is asked
		}
		t.Run(w.name, func(t *testing.T) {
			src, clk := &fakeSource{}, newClock()
			ask := w.make(src, time.Minute, clk.now)
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			ask(ctx)
			ask(context.Background())
			if n := src.calls.Load(); n != 2 {
				t.Errorf("answer given under a done context was cached: %d source calls, want 2", n)
			}
		})
	}
}

func TestCacheNotFound(t *testing.T) {
	for _, w := range wrappers[1:] { // Sessions has no "not found"
		t.Run(w.name, func(t *testing.T) {
			ctx := context.Background()
			src, clk := &fakeSource{err: fmt.Errorf("fake: %w", ErrNotFound)}, newClock()
			ask := w.make(src, 0, clk.now)
			for range 3 {
				if _, err := ask(ctx); !errors.Is(err, ErrNotFound) {
					t.Fatalf("err = %v, want ErrNotFound", err)
				}
			}
			if n := src.calls.Load(); n != 1 {
				t.Errorf("ErrNotFound not cached: %d source calls", n)
			}
			src.set(nil, 1)
			clk.add(DefaultCacheTTL)
			if _, err := ask(ctx); err != nil || src.calls.Load() != 2 {
				t.Errorf("after TTL: %v, %d source calls", err, src.calls.Load())
			}
		})
	}
}

func TestCachedFilesAnswers(t *testing.T) {
	ctx := context.Background()
	src, clk := &fakeSource{hidden: true}, newClock()
	c := &CachedFiles{Source: src, now: clk.now}
	if !c.Hidden(ctx, alice) || !c.Hidden(ctx, alice) || src.calls.Load() != 1 {
		t.Errorf("Hidden not cached: %d source calls", src.calls.Load())
	}
	// ReadFile and Hidden, names, caps and accounts are distinct questions.
	if _, err := c.ReadFile(ctx, alice, ".plan", 10); !errors.Is(err, ErrNotFound) {
		t.Errorf("ReadFile answered from Hidden's entry: %v", err)
	}
	if _, err := c.ReadFile(ctx, alice, "", 0); !errors.Is(err, ErrNotFound) {
		t.Errorf("ReadFile(\"\") answered from Hidden's entry: %v", err)
	}
	src.mu.Lock()
	src.hidden, src.data = false, []byte("0123456789")
	src.mu.Unlock()
	before := src.calls.Load()
	for _, q := range []struct {
		a    *Account
		name string
		max  int64
	}{
		{alice, ".project", 10},
		{alice, ".plan", 5},
		{&Account{Login: "alice", UID: 1002, Home: "/home/alice"}, ".plan", 10},
		{&Account{Login: "alice", UID: 1001, Home: "/home/other"}, ".plan", 10},
		{&Account{Login: "bob", UID: 1001, Home: "/home/alice"}, ".plan", 10},
	} {
		if f, err := c.ReadFile(ctx, q.a, q.name, q.max); err != nil || len(f.Data) == 0 {
			t.Errorf("ReadFile(%v, %s, %d) = %q, %v; want the source's fresh answer", q.a, q.name, q.max, f.Data, err)
		}
	}
	if n := src.calls.Load() - before; n != 5 {
		t.Errorf("%d source calls for 5 distinct questions", n)
	}
	if other := (&Account{Login: "bob", UID: 1001, Home: "/home/alice"}); c.Hidden(ctx, other) {
		t.Error("Hidden of another account answered from alice's entry")
	}
	// A Hidden answered while the caller's context was done (the source's
	// fallback) is not kept.
	canceled, cancel := context.WithCancel(ctx)
	cancel()
	carol := &Account{Login: "carol", UID: 1003, Home: "/home/carol"}
	c.Hidden(canceled, carol)
	before = src.calls.Load()
	c.Hidden(ctx, carol)
	if src.calls.Load() == before {
		t.Error("Hidden answered under a done context was cached")
	}
}

func TestCacheBounds(t *testing.T) {
	ctx := context.Background()
	src, clk := &fakeSource{data: make([]byte, 1000)}, newClock()
	const maxEntries, maxBytes = 50, 20_000
	files := &CachedFiles{Source: src, MaxEntries: maxEntries, MaxBytes: maxBytes, now: clk.now}
	ll := &CachedLastLogins{Source: src, MaxEntries: maxEntries, now: clk.now}
	mail := &CachedMailboxes{Source: src, MaxEntries: maxEntries, now: clk.now}
	for i := range 1000 {
		a := &Account{Login: "user" + strconv.Itoa(i), UID: uint32(2000 + i), Home: "/home/u" + strconv.Itoa(i)}
		files.ReadFile(ctx, a, ".plan", 4096)
		files.Hidden(ctx, a)
		ll.LastLogin(ctx, a)
		mail.Mail(ctx, a)
		if n, b := files.cache.len(); n > maxEntries || b > maxBytes {
			t.Fatalf("files cache: %d entries, %d bytes; bounds %d, %d", n, b, maxEntries, maxBytes)
		}
		if n, _ := ll.cache.len(); n > maxEntries {
			t.Fatalf("lastlog cache: %d entries", n)
		}
		if n, _ := mail.cache.len(); n > maxEntries {
			t.Fatalf("mail cache: %d entries", n)
		}
		if i%100 == 0 {
			clk.add(DefaultCacheTTL / 2)
		}
	}
	// What is cached is still used.
	a := &Account{Login: "user999", UID: 2999, Home: "/home/u999"}
	before := src.calls.Load()
	ll.LastLogin(ctx, a)
	mail.Mail(ctx, a)
	if src.calls.Load() != before {
		t.Error("latest entries were not kept")
	}
	// A file larger than the whole byte bound is answered, never kept.
	big := &CachedFiles{Source: &fakeSource{data: make([]byte, 5000)}, MaxBytes: 4096, now: clk.now}
	if f, err := big.ReadFile(ctx, alice, ".plan", 1<<20); err != nil || len(f.Data) < 5000 {
		t.Fatalf("big file: %d bytes, %v", len(f.Data), err)
	}
	if n, b := big.cache.len(); n != 0 || b != 0 {
		t.Errorf("file over MaxBytes cached: %d entries, %d bytes", n, b)
	}
	// Defaults apply when the bounds are zero.
	def := &CachedLastLogins{Source: src, now: clk.now}
	for i := range DefaultCacheEntries + 10 {
		def.LastLogin(ctx, &Account{Login: "x", UID: uint32(i)})
	}
	if n, _ := def.cache.len(); n > DefaultCacheEntries {
		t.Errorf("default bound: %d entries", n)
	}
}

// Callers that ask while the session list loads share that load.
func TestCachedSessionsShareLoad(t *testing.T) {
	src := &fakeSource{block: make(chan struct{})}
	c := &CachedSessions{Source: src}
	const n = 20
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for range n {
		wg.Go(func() {
			if s, err := c.Sessions(context.Background()); err != nil || len(s) != 1 {
				errs <- fmt.Errorf("got %v, %v", s, err)
			}
		})
	}
	time.Sleep(20 * time.Millisecond)
	close(src.block)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if got := src.calls.Load(); got != 1 {
		t.Errorf("%d loads for %d concurrent callers, want 1", got, n)
	}
}

// A caller whose context ends while it loads does not fail the callers
// waiting for it: one of them loads again.
func TestCachedSessionsLoaderCanceled(t *testing.T) {
	src := &fakeSource{block: make(chan struct{})}
	c := &CachedSessions{Source: src}
	ctx, cancel := context.WithCancel(context.Background())
	loaderDone := make(chan error, 1)
	go func() {
		_, err := c.Sessions(ctx)
		loaderDone <- err
	}()
	for {
		c.mu.Lock()
		loading := c.loading != nil
		c.mu.Unlock()
		if loading {
			break
		}
		time.Sleep(time.Millisecond)
	}
	waiter := make(chan error, 1)
	go func() {
		_, err := c.Sessions(context.Background())
		waiter <- err
	}()
	time.Sleep(10 * time.Millisecond)
	cancel()
	if err := <-loaderDone; !errors.Is(err, context.Canceled) {
		t.Errorf("loader: %v", err)
	}
	close(src.block)
	if err := <-waiter; err != nil {
		t.Errorf("waiter failed with the loader's cancellation: %v", err)
	}
}

func TestCachedSessionsClose(t *testing.T) {
	cl := &closer{}
	if err := (&CachedSessions{Source: cl}).Close(); err != nil || !cl.closed {
		t.Errorf("Close: %v, closed %v", err, cl.closed)
	}
	if err := (&CachedSessions{Source: &fakeSource{}}).Close(); err != nil {
		t.Errorf("Close of a source without Close: %v", err)
	}
}

type closer struct{ closed bool }

func (c *closer) Sessions(context.Context) ([]Session, error) { return nil, nil }
func (c *closer) Close() error                                { c.closed = true; return nil }

// Concurrent use, for the race detector: hits, misses, expiry and
// eviction at once.
func TestCacheConcurrent(t *testing.T) {
	src, clk := &fakeSource{data: []byte("plan")}, newClock()
	files := &CachedFiles{Source: src, MaxEntries: 16, now: clk.now}
	ll := &CachedLastLogins{Source: src, MaxEntries: 16, now: clk.now}
	mail := &CachedMailboxes{Source: src, MaxEntries: 16, now: clk.now}
	sess := &CachedSessions{Source: src, now: clk.now}
	ctx := context.Background()
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 500 {
				a := &Account{Login: "u" + strconv.Itoa((g*7+i)%40), UID: uint32(i % 40), Home: "/h"}
				if f, err := files.ReadFile(ctx, a, ".plan", 100); err != nil || len(f.Data) == 0 {
					t.Errorf("ReadFile: %q, %v", f.Data, err)
					return
				}
				files.Hidden(ctx, a)
				ll.LastLogin(ctx, a)
				mail.Mail(ctx, a)
				if _, err := sess.Sessions(ctx); err != nil {
					t.Errorf("Sessions: %v", err)
					return
				}
				if i%50 == 0 {
					clk.add(300 * time.Millisecond)
				}
			}
		})
	}
	wg.Wait()
}
