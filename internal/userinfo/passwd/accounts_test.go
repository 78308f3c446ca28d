package passwd

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/user"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/openfinger/finger/internal/userinfo"
)

func noNSS(string) (*user.User, error) { return nil, errors.New("NSS must not be called") }

func TestAccountsLookup(t *testing.T) {
	ctx := context.Background()
	a := &Accounts{Path: "testdata/passwd", NoNSS: true}
	tests := []struct {
		login string
		want  *userinfo.Account // nil: not found
	}{
		{"fgtest_alice", &userinfo.Account{Login: "fgtest_alice", UID: 1001, GID: 1001, Name: "Alice Liddell",
			Office: "Room 101", OfficePhone: "5551234", HomePhone: "15551239876", Home: "/home/fgtest_alice", Shell: "/bin/bash"}},
		{"fgtest_carol", &userinfo.Account{Login: "fgtest_carol", UID: 1003, GID: 1003, Name: "Carol Ann Fgtest_carol Smith",
			Office: "Lab 3", OfficePhone: "x1234", Other: "other,more", Home: "/home/fgtest_carol", Shell: "/bin/sh"}},
		{"fgtest_bob", &userinfo.Account{Login: "fgtest_bob", UID: 1002, GID: 1002, Name: "Bob 张伟 Zhang",
			Home: "/home/fgtest_bob", Shell: "/bin/bash"}},
		{"élodie", &userinfo.Account{Login: "élodie", UID: 1007, GID: 1007, Name: "Élodie Dupont", Home: "/home/elodie", Shell: "/bin/zsh"}},
		{"crlf", &userinfo.Account{Login: "crlf", UID: 1008, GID: 1008, Name: "CR LF", Home: "/home/crlf", Shell: "/bin/sh"}},
		{"lastline", &userinfo.Account{Login: "lastline", UID: 1010, GID: 1010, Name: "No Newline", Home: "/home/last", Shell: "/bin/sh"}},
		{"FGTEST_ALICE", nil},
		{"Alice", nil},
		{"short", nil},
		{"baduid", nil},
		{"+nisuser", nil},
		{"nisuser", nil},
		{"", nil},
		{"../../etc/passwd", nil},
		{"*", nil},
	}
	for _, tt := range tests {
		got, err := a.Lookup(ctx, tt.login)
		if tt.want == nil {
			if !errors.Is(err, userinfo.ErrNotFound) {
				t.Errorf("Lookup(%q) = %+v, %v, want ErrNotFound", tt.login, got, err)
			}
			continue
		}
		if err != nil || *got != *tt.want {
			t.Errorf("Lookup(%q) = %+v, %v, want %+v", tt.login, got, err, tt.want)
		}
	}
}

func TestAccountsNSS(t *testing.T) {
	ctx := context.Background()
	calls := 0
	a := &Accounts{Path: "testdata/passwd", lookupNSS: func(login string) (*user.User, error) {
		calls++
		switch login {
		case "ldapuser":
			return &user.User{Uid: "20001", Gid: "20000", Username: "ldapuser", Name: "*Ldap & User", HomeDir: "/net/home/ldapuser"}, nil
		case "CaseFold":
			return &user.User{Uid: "20002", Gid: "20000", Username: "casefold", Name: "x", HomeDir: "/h"}, nil
		case "badid":
			return &user.User{Uid: "S-1-5-21", Gid: "1", Username: "badid"}, nil
		case "broken":
			return nil, errors.New("nss backend down")
		}
		return nil, user.UnknownUserError(login)
	}}
	got, err := a.Lookup(ctx, "ldapuser")
	want := userinfo.Account{Login: "ldapuser", UID: 20001, GID: 20000, Name: "Ldap Ldapuser User", Home: "/net/home/ldapuser"}
	if err != nil || *got != want {
		t.Errorf("Lookup(ldapuser) via NSS = %+v, %v, want %+v", got, err, want)
	}
	for _, login := range []string{"nosuch", "CaseFold", "badid"} {
		if got, err := a.Lookup(ctx, login); !errors.Is(err, userinfo.ErrNotFound) {
			t.Errorf("Lookup(%q) via NSS = %+v, %v, want ErrNotFound", login, got, err)
		}
	}
	if _, err := a.Lookup(ctx, "broken"); err == nil || errors.Is(err, userinfo.ErrNotFound) {
		t.Errorf("Lookup(broken) via NSS error = %v, want a non-ErrNotFound error", err)
	}
	calls = 0
	if _, err := a.Lookup(ctx, "fgtest_alice"); err != nil || calls != 0 {
		t.Errorf("Lookup(fgtest_alice) = %v with %d NSS calls, want nil with 0 (file first)", err, calls)
	}
	// Invalid logins never reach NSS.
	for _, login := range []string{"", "a b", "a/b", "..", "x\x00y"} {
		calls = 0
		if _, err := a.Lookup(ctx, login); !errors.Is(err, userinfo.ErrNotFound) || calls != 0 {
			t.Errorf("Lookup(%q) = %v with %d NSS calls, want ErrNotFound with 0", login, err, calls)
		}
	}
	// All never includes NSS-only accounts.
	all, err := a.All(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, acc := range all {
		if acc.Login == "ldapuser" {
			t.Errorf("All() includes NSS-only account %q", acc.Login)
		}
	}
}

func TestAccountsNSSHangBoundedByContext(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	a := &Accounts{Path: "testdata/passwd", lookupNSS: func(string) (*user.User, error) {
		<-release
		return nil, user.UnknownUserError("x")
	}}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := a.Lookup(ctx, "hangs")
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Lookup with hung NSS = %v, want DeadlineExceeded", err)
	}
	if d := time.Since(start); d > 10*time.Second { // against a hang only
		t.Errorf("Lookup with hung NSS took %v, want about 50ms", d)
	}
}

func TestAccountsCanceled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	a := &Accounts{Path: "testdata/passwd", lookupNSS: noNSS}
	if _, err := a.Lookup(ctx, "root"); !errors.Is(err, context.Canceled) {
		t.Errorf("Lookup(canceled ctx) error = %v, want Canceled", err)
	}
	if _, err := a.All(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("All(canceled ctx) error = %v, want Canceled", err)
	}
}

func TestAccountsMissingFile(t *testing.T) {
	ctx := context.Background()
	missing := filepath.Join(t.TempDir(), "passwd")
	a := &Accounts{Path: missing, NoNSS: true}
	if _, err := a.All(ctx); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("All(missing file) error = %v, want ErrNotExist", err)
	}
	if _, err := a.Lookup(ctx, "root"); err == nil {
		t.Errorf("Lookup(missing file, NoNSS) error = nil, want an error")
	}
	// With NSS, a missing file still allows lookups.
	a = &Accounts{Path: missing, lookupNSS: func(l string) (*user.User, error) {
		if l == "root" {
			return &user.User{Uid: "0", Gid: "0", Username: "root", Name: "root", HomeDir: "/root"}, nil
		}
		return nil, user.UnknownUserError(l)
	}}
	if got, err := a.Lookup(ctx, "root"); err != nil || got.UID != 0 || got.Home != "/root" {
		t.Errorf("Lookup(root, missing file, NSS) = %+v, %v, want root from NSS", got, err)
	}
	if _, err := a.Lookup(ctx, "nobody"); !errors.Is(err, userinfo.ErrNotFound) {
		t.Errorf("Lookup(nobody, missing file, NSS) error = %v, want ErrNotFound", err)
	}
}

func TestAccountsDuplicateFirstWins(t *testing.T) {
	a := &Accounts{Path: "testdata/passwd", NoNSS: true}
	got, err := a.Lookup(context.Background(), "fgtest_alice")
	if err != nil || got.UID != 1001 {
		t.Errorf("Lookup(fgtest_alice) = %+v, %v, want the first entry (UID 1001)", got, err)
	}
	all, _ := a.All(context.Background())
	n := 0
	for _, acc := range all {
		if acc.Login == "fgtest_alice" {
			n++
		}
	}
	if n != 2 {
		t.Errorf("All() has %d fgtest_alice entries, want 2 (file order, duplicates kept)", n)
	}
}

func TestAccountsReturnsCopies(t *testing.T) {
	ctx := context.Background()
	a := &Accounts{Path: "testdata/passwd", NoNSS: true}
	got, _ := a.Lookup(ctx, "root")
	got.Name = "changed"
	all, _ := a.All(ctx)
	all[0].Home = "/changed"
	again, _ := a.Lookup(ctx, "root")
	if again.Name != "root" || again.Home != "/root" {
		t.Errorf("Lookup(root) after caller mutation = %+v, want the cached entry unchanged", again)
	}
}

func writeFileAtomic(t testing.TB, path, data string) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

func TestAccountsCacheReload(t *testing.T) {
	ctx := context.Background()
	p := filepath.Join(t.TempDir(), "passwd")
	writeFileAtomic(t, p, "a:x:1:1:First:/a:/bin/sh\n")
	a := &Accounts{Path: p, NoNSS: true}
	if got, err := a.Lookup(ctx, "a"); err != nil || got.Name != "First" {
		t.Fatalf("Lookup(a) = %+v, %v, want First", got, err)
	}
	first := a.cache

	if _, err := a.Lookup(ctx, "a"); err != nil || a.cache != first {
		t.Errorf("Lookup(a) again re-parsed an unchanged file (cache %p, was %p)", a.cache, first)
	}

	// Replaced by rename (what useradd/vipw do): new inode.
	writeFileAtomic(t, p, "a:x:1:1:Second:/a:/bin/sh\nb:x:2:2:B:/b:/bin/sh\n")
	if got, err := a.Lookup(ctx, "a"); err != nil || got.Name != "Second" {
		t.Errorf("Lookup(a) after rename = %+v, %v, want Second", got, err)
	}
	if _, err := a.Lookup(ctx, "b"); err != nil {
		t.Errorf("Lookup(b) after rename error = %v, want nil", err)
	}

	// Rewritten in place with a different size.
	if err := os.WriteFile(p, []byte("a:x:1:1:Third, in place:/a:/bin/sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got, err := a.Lookup(ctx, "a"); err != nil || got.Name != "Third" {
		t.Errorf("Lookup(a) after in-place rewrite = %+v, %v, want Third", got, err)
	}
	if _, err := a.Lookup(ctx, "b"); !errors.Is(err, userinfo.ErrNotFound) {
		t.Errorf("Lookup(b) after removal error = %v, want ErrNotFound", err)
	}

	// Same size, different mtime.
	if err := os.WriteFile(p, []byte("a:x:1:1:Forth, in place:/a:/bin/sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	future := time.Now().Add(time.Hour)
	if err := os.Chtimes(p, future, future); err != nil {
		t.Fatal(err)
	}
	if got, err := a.Lookup(ctx, "a"); err != nil || got.Name != "Forth" {
		t.Errorf("Lookup(a) after same-size rewrite = %+v, %v, want Forth", got, err)
	}
}

func TestAccountsConcurrent(t *testing.T) {
	ctx := context.Background()
	p := filepath.Join(t.TempDir(), "passwd")
	writeFileAtomic(t, p, genPasswd(50))
	a := &Accounts{Path: p, NoNSS: true}
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < 200; i++ {
				login := fmt.Sprintf("user%04d", (g*7+i)%50)
				if got, err := a.Lookup(ctx, login); err != nil || got.Login != login {
					t.Errorf("Lookup(%q) = %+v, %v", login, got, err)
					return
				}
				if i%50 == 0 {
					if all, err := a.All(ctx); err != nil || len(all) != 50 {
						t.Errorf("All() = %d accounts, %v, want 50", len(all), err)
						return
					}
				}
			}
		}(g)
	}
	// Replace the file (same content) while readers run.
	for i := 0; i < 10; i++ {
		writeFileAtomic(t, p, genPasswd(50))
	}
	wg.Wait()
}

// genPasswd returns a passwd file of n ordinary accounts user0000, user0001...
func genPasswd(n int) string {
	var b strings.Builder
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, "user%04d:x:%d:%d:User Number %d,Room %d,555%04d,,:/home/user%04d:/bin/bash\n",
			i, 1000+i, 1000+i, i, i%500, i, i)
	}
	return b.String()
}

func benchAccounts(b *testing.B) *Accounts {
	p := filepath.Join(b.TempDir(), "passwd")
	writeFileAtomic(b, p, genPasswd(2000))
	a := &Accounts{Path: p, NoNSS: true}
	if all, err := a.All(context.Background()); err != nil || len(all) != 2000 {
		b.Fatalf("All() = %d, %v, want 2000 accounts", len(all), err)
	}
	return a
}

func BenchmarkLookupCached(b *testing.B) {
	a := benchAccounts(b)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := a.Lookup(ctx, "user1500"); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkAllCached(b *testing.B) {
	a := benchAccounts(b)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := a.All(ctx); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParse2000(b *testing.B) {
	data := genPasswd(2000)
	b.ReportAllocs()
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, err := Parse(strings.NewReader(data)); err != nil {
			b.Fatal(err)
		}
	}
}
