package passwd

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/user"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/openfinger/finger/internal/fingertest"
	"github.com/openfinger/finger/internal/userinfo"
)

// osThreads returns the number of OS threads of this process.
func osThreads(t *testing.T) int {
	t.Helper()
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "Threads:"); ok {
			n, err := strconv.Atoi(strings.TrimSpace(v))
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Fatal("no Threads line in /proc/self/status")
	return 0
}

// hungNameService returns a lookup that never answers until release is
// called. Like getpwnam_r blocked in a cgo call, each pending lookup holds
// an OS thread: it locks its goroutine to its thread before blocking.
func hungNameService() (lookup func(string) (*user.User, error), release func()) {
	ch := make(chan struct{})
	var once sync.Once
	return func(login string) (*user.User, error) {
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			<-ch
			return nil, user.UnknownUserError(login)
		}, func() {
			once.Do(func() { close(ch) })
		}
}

// TestHungNameService: with a name service that never answers, lookups of
// unknown logins end after LookupTimeout, or at once beyond MaxLookups
// outstanding, as unknown users; the process keeps a bounded number of
// OS threads however many queries come; the operator gets one warning,
// and one line when the name service answers again.
func TestHungNameService(t *testing.T) {
	lookup, release := hungNameService()
	defer release()
	var logBuf fingertest.Buffer
	var limits atomic.Int64
	a := &Accounts{
		Path:          "testdata/passwd",
		MaxLookups:    4,
		LookupTimeout: 50 * time.Millisecond,
		Logger:        slog.New(slog.NewTextHandler(&logBuf, nil)),
		OnLimit:       func() { limits.Add(1) },
		lookupNSS:     lookup,
	}
	before := osThreads(t)

	// The first lookups wait for the timeout.
	for i := range 4 {
		start := time.Now()
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		acc, err := a.Lookup(ctx, fmt.Sprintf("fgtest_hung%d", i))
		cancel()
		if !errors.Is(err, userinfo.ErrNotFound) || acc != nil || !strings.Contains(err.Error(), "no answer within 50ms") {
			t.Errorf("Lookup(unknown, name service hung) = %v, %v, want ErrNotFound after the timeout", acc, err)
		}
		if d := time.Since(start); d < 50*time.Millisecond {
			t.Errorf("Lookup returned after %v, before the timeout", d)
		}
	}
	// Four lookups are outstanding: the next ones fail at once, many of
	// them, concurrently.
	var wg sync.WaitGroup
	var notFound atomic.Int64
	for i := range 1000 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			_, err := a.Lookup(ctx, fmt.Sprintf("fgtest_more%d", i))
			if errors.Is(err, userinfo.ErrNotFound) && strings.Contains(err.Error(), "4 lookups outstanding") {
				notFound.Add(1)
			}
		}()
	}
	wg.Wait()
	if n := notFound.Load(); n != 1000 {
		t.Errorf("%d of 1000 lookups beyond the bound failed at once as unknown users, want 1000", n)
	}
	after := osThreads(t)
	// Four threads are held by the hung lookups; the runtime may start a
	// few more of its own, never one per query.
	if after > before+4+8 {
		t.Errorf("OS threads: %d before, %d after 1004 lookups with a hung name service; want at most %d", before, after, before+12)
	}
	if got := limits.Load(); got != 1004 {
		t.Errorf("OnLimit called %d times, want 1004", got)
	}
	if n := strings.Count(logBuf.String(), "level=WARN"); n != 1 {
		t.Errorf("%d warnings logged, want exactly 1:\n%s", n, logBuf.String())
	}
	if !strings.Contains(logBuf.String(), `msg="passwd: the name service does not answer in time; logins it would have to look up are answered as unknown until it does" reason="no answer within 50ms" timeout=50ms max_lookups=4`) {
		t.Errorf("log = %q, want the warning with its reason and bounds", logBuf.String())
	}

	// The name service answers again: the lookups drain, the next one is
	// answered, and the operator is told.
	release()
	deadline := time.Now().Add(10 * time.Second)
	for a.nssPending.Load() != 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if _, err := a.Lookup(context.Background(), "fgtest_after"); !errors.Is(err, userinfo.ErrNotFound) || strings.Contains(err.Error(), "name service:") {
		t.Errorf("Lookup after recovery = %v, want a plain unknown user", err)
	}
	if !strings.Contains(logBuf.String(), `level=INFO msg="passwd: the name service answers in time again"`) {
		t.Errorf("log = %q, want the recovery line", logBuf.String())
	}
}

// TestLookupAsUnknown: a login the file knows costs, when asked to, the
// name-service lookup of an unknown login: a stand-in that is the same for
// the same login, differs between logins, and is a valid login no name
// service has. A login the file does not know costs nothing more.
func TestLookupAsUnknown(t *testing.T) {
	var mu sync.Mutex
	var asked []string
	a := &Accounts{Path: "testdata/passwd", lookupNSS: func(login string) (*user.User, error) {
		mu.Lock()
		defer mu.Unlock()
		asked = append(asked, login)
		return nil, user.UnknownUserError(login)
	}}
	ctx := context.Background()
	a.LookupAsUnknown(ctx, "root")
	a.LookupAsUnknown(ctx, "root")
	a.LookupAsUnknown(ctx, "daemon")
	a.LookupAsUnknown(ctx, "bad login") // not a valid login: Lookup asks nobody either
	// A login only the name service has: its Lookup asked it once
	// already, as for an unknown login; a second lookup would set it apart.
	a.LookupAsUnknown(ctx, "fgonlyinnss")
	if len(asked) != 3 {
		t.Fatalf("name service asked for %q, want 3 stand-ins", asked)
	}
	if asked[0] != asked[1] || asked[0] == asked[2] || asked[0] == "root" {
		t.Errorf("stand-ins %q: want the same for the same login, another for another, never the login", asked)
	}
	for _, s := range asked {
		if !validLogin(s) || len(s) != 25 || s[0] != 'x' {
			t.Errorf("stand-in %q: want x and 24 hex digits, a valid login", s)
		}
	}
	b := &Accounts{Path: "testdata/passwd", NoNSS: true, lookupNSS: func(login string) (*user.User, error) {
		t.Errorf("NoNSS: name service asked for %q", login)
		return nil, user.UnknownUserError(login)
	}}
	b.LookupAsUnknown(ctx, "root")
}
