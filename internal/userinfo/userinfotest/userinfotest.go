// Package userinfotest checks that a userinfo source behaves as the
// Responder expects, the way testing/fstest.TestFS checks a file system.
// Every source runs these suites against its own fixtures:
//
//	func TestConformance(t *testing.T) {
//		src := passwd.New(...)
//		userinfotest.TestAccounts(t, src, []string{"alice", "bob"})
//	}
//
// The suites call the source from several goroutines at once; run them
// with -race.
package userinfotest

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"strconv"
	"sync"
	"testing"

	"github.com/openfinger/finger/internal/userinfo"
)

// parallel is the number of goroutines of the concurrency checks.
const parallel = 8

// unknownLogins are names no source should know. They include names a
// careless source might resolve: path elements, passwd syntax, a numeric
// UID, wildcards.
var unknownLogins = []string{
	"",
	"userinfotest-no-such-user",
	"../../etc/passwd",
	"no:such:user",
	"*",
	"nosuchuser?",
	"+",
	"-",
	"4294967294",
}

// TestAccounts checks an Accounts source: Lookup finds each login of known
// with exactly that login; Lookup of unknown names (and of case variants
// of known logins that are not themselves accounts) fails with an error
// wrapping userinfo.ErrNotFound and a nil account; All includes every
// known login, agrees with Lookup and holds no nil; and both are safe
// for concurrent use. known must not be empty.
func TestAccounts(t *testing.T, src userinfo.Accounts, known []string) {
	t.Helper()
	if len(known) == 0 {
		t.Fatal("userinfotest.TestAccounts: known is empty")
	}
	ctx := context.Background()

	t.Run("Lookup", func(t *testing.T) {
		for _, login := range known {
			a, err := src.Lookup(ctx, login)
			if err != nil {
				t.Errorf("Lookup(%q) error: %v", login, err)
				continue
			}
			if a == nil {
				t.Errorf("Lookup(%q) = nil, nil", login)
				continue
			}
			if a.Login != login {
				t.Errorf("Lookup(%q).Login = %q, want exactly %q", login, a.Login, login)
			}
		}
	})

	t.Run("Unknown", func(t *testing.T) {
		for _, name := range unknownLogins {
			a, err := src.Lookup(ctx, name)
			if !errors.Is(err, userinfo.ErrNotFound) {
				t.Errorf("Lookup(%q) = %v, %v; want an error wrapping ErrNotFound", name, loginOf(a), err)
			} else if a != nil {
				t.Errorf("Lookup(%q) returned account %q with error %v", name, a.Login, err)
			}
		}
		// Logins are case-sensitive: a case variant of a login is either
		// unknown or an account of its own with exactly that login.
		for _, login := range known {
			for _, v := range caseVariants(login) {
				if slices.Contains(known, v) {
					continue
				}
				a, err := src.Lookup(ctx, v)
				switch {
				case err == nil && (a == nil || a.Login != v):
					t.Errorf("Lookup(%q) = account %v: logins must match exactly", v, loginOf(a))
				case err != nil && !errors.Is(err, userinfo.ErrNotFound):
					t.Errorf("Lookup(%q) error %q does not wrap ErrNotFound", v, err)
				}
			}
		}
	})

	t.Run("All", func(t *testing.T) {
		all, err := src.All(ctx)
		if err != nil {
			t.Fatalf("All: %v", err)
		}
		byLogin := make(map[string]*userinfo.Account, len(all))
		for i, a := range all {
			if a == nil {
				t.Errorf("All()[%d] is nil", i)
				continue
			}
			if _, dup := byLogin[a.Login]; !dup {
				byLogin[a.Login] = a
			}
		}
		for _, login := range known {
			a, ok := byLogin[login]
			if !ok {
				t.Errorf("All() does not include %q", login)
				continue
			}
			l, err := src.Lookup(ctx, login)
			if err != nil || l == nil {
				continue // reported by Lookup
			}
			if a.UID != l.UID || a.Name != l.Name || a.Home != l.Home {
				t.Errorf("All() and Lookup(%q) disagree: %+v vs %+v", login, *a, *l)
			}
		}
	})

	t.Run("Concurrent", func(t *testing.T) {
		var wg sync.WaitGroup
		for g := range parallel {
			wg.Go(func() {
				for i := range 20 {
					login := known[(g+i)%len(known)]
					if a, err := src.Lookup(ctx, login); err != nil || a == nil || a.Login != login {
						t.Errorf("concurrent Lookup(%q) = %v, %v", login, a, err)
					}
					if _, err := src.Lookup(ctx, unknownLogins[1]); !errors.Is(err, userinfo.ErrNotFound) {
						t.Errorf("concurrent Lookup(%q) error %v, want ErrNotFound", unknownLogins[1], err)
					}
					if i%5 == 0 {
						if _, err := src.All(ctx); err != nil {
							t.Errorf("concurrent All: %v", err)
						}
					}
				}
			})
		}
		wg.Wait()
	})
}

// caseVariants returns the upper-case, lower-case and capitalised forms of
// s that differ from it.
func caseVariants(s string) []string {
	var out []string
	add := func(v string) {
		if v != s && !slices.Contains(out, v) {
			out = append(out, v)
		}
	}
	add(string(bytes.ToUpper([]byte(s))))
	add(string(bytes.ToLower([]byte(s))))
	if s != "" {
		add(string(bytes.ToUpper([]byte(s[:1]))) + s[1:])
	}
	return out
}

func loginOf(a *userinfo.Account) string {
	if a == nil {
		return "<nil>"
	}
	return strconv.Quote(a.Login)
}

// TestSessions checks a Sessions source: Sessions succeeds, every session
// names its user, each login of loggedIn has at least one session, and
// the source is safe for concurrent use. loggedIn may be empty (a host
// where nobody is logged in answers an empty list).
func TestSessions(t *testing.T, src userinfo.Sessions, loggedIn []string) {
	t.Helper()
	ctx := context.Background()

	t.Run("Sessions", func(t *testing.T) {
		ss, err := src.Sessions(ctx)
		if err != nil {
			t.Fatalf("Sessions: %v", err)
		}
		have := make(map[string]bool)
		for i, s := range ss {
			if s.Login == "" {
				t.Errorf("session %d has no login: %+v", i, s)
			}
			have[s.Login] = true
		}
		for _, login := range loggedIn {
			if !have[login] {
				t.Errorf("Sessions() has no session of %q", login)
			}
		}
	})

	t.Run("Concurrent", func(t *testing.T) {
		var wg sync.WaitGroup
		for range parallel {
			wg.Go(func() {
				for range 10 {
					if _, err := src.Sessions(ctx); err != nil {
						t.Errorf("concurrent Sessions: %v", err)
					}
				}
			})
		}
		wg.Wait()
	})
}

// UserFiles describes what a Files source publishes for one account.
type UserFiles struct {
	// Account is passed to the source.
	Account *userinfo.Account
	// Files maps each published file name to its exact content. The
	// usual names (".plan", ".project", ".pgpkey") that are absent here
	// must be reported as not found.
	Files map[string][]byte
	// Hidden is what Hidden must report (a ~/.nofinger).
	Hidden bool
}

// fileNames are the names the Responder asks for.
var fileNames = []string{".plan", ".project", ".pgpkey"}

// TestFiles checks a Files source against users: published files are read
// exactly, a cap at the file's size is not a truncation, a smaller cap
// returns exactly that many bytes with Truncated set, unpublished files
// and names with a path in them fail with an error (wrapping ErrNotFound
// for the usual names), Hidden reports as described, and the source is
// safe for concurrent use.
func TestFiles(t *testing.T, src userinfo.Files, users ...UserFiles) {
	t.Helper()
	ctx := context.Background()
	if len(users) == 0 {
		t.Fatal("userinfotest.TestFiles: no users")
	}

	t.Run("ReadFile", func(t *testing.T) {
		for _, u := range users {
			login := u.Account.Login
			for name, want := range u.Files {
				n := int64(len(want))
				for _, max := range []int64{n + 1, n, 1 << 20} {
					if max <= 0 {
						continue
					}
					f, err := src.ReadFile(ctx, u.Account, name, max)
					if err != nil {
						t.Errorf("ReadFile(%q, %q, %d): %v", login, name, max, err)
						continue
					}
					if !bytes.Equal(f.Data, want) {
						t.Errorf("ReadFile(%q, %q, %d) = %q, want %q", login, name, max, f.Data, want)
					}
					if f.Truncated {
						t.Errorf("ReadFile(%q, %q, %d) of a %d-byte file: Truncated set", login, name, max, n)
					}
				}
				if n >= 2 {
					max := n / 2
					f, err := src.ReadFile(ctx, u.Account, name, max)
					switch {
					case err != nil:
						t.Errorf("ReadFile(%q, %q, %d): %v", login, name, max, err)
					case !bytes.Equal(f.Data, want[:max]) || !f.Truncated:
						t.Errorf("ReadFile(%q, %q, %d) = %q, Truncated %v; want %q, true", login, name, max, f.Data, f.Truncated, want[:max])
					}
				}
			}
			for _, name := range fileNames {
				if _, ok := u.Files[name]; ok {
					continue
				}
				f, err := src.ReadFile(ctx, u.Account, name, 1<<16)
				if !errors.Is(err, userinfo.ErrNotFound) {
					t.Errorf("ReadFile(%q, %q) of an unpublished file: error %v, want ErrNotFound", login, name, err)
				}
				if len(f.Data) > 0 {
					t.Errorf("ReadFile(%q, %q) of an unpublished file returned %d bytes", login, name, len(f.Data))
				}
			}
			for _, name := range []string{"../../../../etc/passwd", "/etc/passwd", ".plan/..", ""} {
				f, err := src.ReadFile(ctx, u.Account, name, 1<<16)
				if err == nil || len(f.Data) > 0 {
					t.Errorf("ReadFile(%q, %q) = %d bytes, %v; want an error and no data", login, name, len(f.Data), err)
				}
			}
		}
	})

	t.Run("Hidden", func(t *testing.T) {
		for _, u := range users {
			for range 2 {
				if got := src.Hidden(ctx, u.Account); got != u.Hidden {
					t.Errorf("Hidden(%q) = %v, want %v", u.Account.Login, got, u.Hidden)
				}
			}
		}
	})

	t.Run("Concurrent", func(t *testing.T) {
		var wg sync.WaitGroup
		for g := range parallel {
			wg.Go(func() {
				for i := range 10 {
					u := users[(g+i)%len(users)]
					src.Hidden(ctx, u.Account)
					for name, want := range u.Files {
						f, err := src.ReadFile(ctx, u.Account, name, int64(len(want))+1)
						if err != nil || !bytes.Equal(f.Data, want) {
							t.Errorf("concurrent ReadFile(%q, %q) = %q, %v", u.Account.Login, name, f.Data, err)
						}
					}
				}
			})
		}
		wg.Wait()
	})
}

// TestLastLogins checks a LastLogins source: each account of records has
// that last login (time compared with Equal), each account of never gets
// an error wrapping ErrNotFound, and the source is safe for concurrent use.
func TestLastLogins(t *testing.T, src userinfo.LastLogins, records map[*userinfo.Account]userinfo.LastLogin, never []*userinfo.Account) {
	t.Helper()
	ctx := context.Background()
	check := func(t *testing.T) {
		for a, want := range records {
			got, err := src.LastLogin(ctx, a)
			if err != nil {
				t.Errorf("LastLogin(%q): %v", a.Login, err)
				continue
			}
			if !got.Time.Equal(want.Time) || got.TTY != want.TTY || got.Host != want.Host {
				t.Errorf("LastLogin(%q) = %+v, want %+v", a.Login, got, want)
			}
		}
		for _, a := range never {
			if _, err := src.LastLogin(ctx, a); !errors.Is(err, userinfo.ErrNotFound) {
				t.Errorf("LastLogin(%q) of a user never logged in: error %v, want ErrNotFound", a.Login, err)
			}
		}
	}
	t.Run("LastLogin", check)
	t.Run("Concurrent", func(t *testing.T) {
		var wg sync.WaitGroup
		for range parallel {
			wg.Go(func() { check(t) })
		}
		wg.Wait()
	})
}
