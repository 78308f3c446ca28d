// Package storetest checks that a store driver behaves as the Store
// interface promises, the way testing/fstest.TestFS checks a file system.
// Every driver runs the suite against databases of its own:
//
//	func TestConformance(t *testing.T) {
//		storetest.TestStore(t, func(t *testing.T) string {
//			return "sqlite:" + filepath.Join(t.TempDir(), "test.db")
//		})
//	}
//
// The suite calls the store from several goroutines at once; run it with
// -race. It requires the store to implement store.Watcher.
package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/openfinger/finger/internal/store"
)

// NewURL returns the URL of a new, empty database for one test. Each call
// must return a different database; the driver must be registered (the
// test imports it). The suite opens the URL with store.Open, as often as it
// needs, and migrates it.
type NewURL func(t *testing.T) string

// TestStore runs every check of the suite, each on a new database.
func TestStore(t *testing.T, newURL NewURL) {
	t.Run("Migrate", func(t *testing.T) { testMigrate(t, newURL) })
	t.Run("Users", func(t *testing.T) { testUsers(t, open(t, newURL(t))) })
	t.Run("InvalidInput", func(t *testing.T) { testInvalid(t, open(t, newURL(t))) })
	t.Run("Tokens", func(t *testing.T) { testTokens(t, open(t, newURL(t))) })
	t.Run("PutTextWithToken", func(t *testing.T) { testPutWithToken(t, open(t, newURL(t))) })
	t.Run("Texts", func(t *testing.T) { testTexts(t, open(t, newURL(t))) })
	t.Run("History", func(t *testing.T) { testHistory(t, open(t, newURL(t))) })
	t.Run("Recent", func(t *testing.T) { testRecent(t, open(t, newURL(t))) })
	t.Run("Version", func(t *testing.T) { testVersion(t, newURL) })
	t.Run("Snapshot", func(t *testing.T) { testSnapshot(t, open(t, newURL(t))) })
	t.Run("Concurrent", func(t *testing.T) { testConcurrent(t, newURL) })
	t.Run("Watch", func(t *testing.T) { testWatch(t, open(t, newURL(t))) })
	t.Run("Closed", func(t *testing.T) { testClosed(t, newURL) })
}

// open opens and migrates url, and closes the store when the test ends.
func open(t *testing.T, url string) store.Store {
	t.Helper()
	ctx := context.Background()
	st, err := store.Open(ctx, url)
	if err != nil {
		t.Fatalf("store.Open(%q): %v", url, err)
	}
	t.Cleanup(func() { st.Close() })
	if _, err := st.Migrate(ctx); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	return st
}

// hash returns a token hash that differs for each seed.
func hash(seed string) []byte { return store.HashToken("storetest-" + seed) }

func mustCreate(t *testing.T, st store.Store, u store.User) {
	t.Helper()
	if err := st.CreateUser(context.Background(), u, hash(u.Name)); err != nil {
		t.Fatalf("CreateUser(%q): %v", u.Name, err)
	}
}

func mustPut(t *testing.T, st store.Store, name string, k store.Kind, body string) store.Change {
	t.Helper()
	c, err := st.PutText(context.Background(), name, k, body)
	if err != nil {
		t.Fatalf("PutText(%q, %q): %v", name, k, err)
	}
	return c
}

func mustVersion(t *testing.T, st store.Store) int64 {
	t.Helper()
	v, err := st.Version(context.Background())
	if err != nil {
		t.Fatalf("Version: %v", err)
	}
	return v
}

// checkTime fails unless tm is UTC, to the microsecond, and within a
// generous minute of now (the store's clock may be another machine's).
func checkTime(t *testing.T, what string, tm time.Time) {
	t.Helper()
	if tm.Location() != time.UTC {
		t.Errorf("%s = %v, want UTC", what, tm)
	}
	if tm.Nanosecond()%1000 != 0 {
		t.Errorf("%s = %v, want it truncated to the microsecond", what, tm)
	}
	if d := time.Since(tm); d > time.Minute || d < -time.Minute {
		t.Errorf("%s = %v, want about now (%v)", what, tm, time.Now().UTC())
	}
}

func testMigrate(t *testing.T, newURL NewURL) {
	ctx := context.Background()
	url := newURL(t)
	a, err := store.Open(ctx, url)
	if err != nil {
		t.Fatalf("store.Open(%q): %v", url, err)
	}
	defer a.Close()
	b, err := store.Open(ctx, url)
	if err != nil {
		t.Fatalf("store.Open(%q) a second time: %v", url, err)
	}
	defer b.Close()
	// Two processes starting together both migrate.
	var wg sync.WaitGroup
	schemas := make([]int, 2)
	errs := make([]error, 2)
	for i, st := range []store.Store{a, b} {
		wg.Go(func() { schemas[i], errs[i] = st.Migrate(ctx) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("concurrent Migrate %d: %v", i, err)
		}
	}
	if schemas[0] < 1 || schemas[0] != schemas[1] {
		t.Errorf("concurrent Migrate = %d and %d, want the same version >= 1", schemas[0], schemas[1])
	}
	again, err := a.Migrate(ctx)
	if err != nil || again != schemas[0] {
		t.Errorf("Migrate again = %d, %v; want %d, nil", again, err, schemas[0])
	}
	mustCreate(t, a, store.User{Name: "alice"})
	if _, err := b.Migrate(ctx); err != nil {
		t.Errorf("Migrate of a store in use: %v", err)
	}
	if _, err := b.User(ctx, "alice"); err != nil {
		t.Errorf("User(alice) after Migrate of a store in use: %v", err)
	}
}

func testUsers(t *testing.T, st store.Store) {
	ctx := context.Background()
	created := time.Date(2025, 3, 4, 5, 6, 7, 891234567, time.FixedZone("X", 3600))
	mustCreate(t, st, store.User{Name: "bob", RealName: "Bob 张伟 Zhang", Listed: true})
	mustCreate(t, st, store.User{Name: "alice", RealName: "Alice Liddell", Created: created})
	mustCreate(t, st, store.User{Name: "carol.x-y_z", Hidden: true})

	if err := st.CreateUser(ctx, store.User{Name: "bob"}, hash("x")); !errors.Is(err, store.ErrExists) {
		t.Errorf("CreateUser(bob) again = %v, want ErrExists", err)
	}

	bob, err := st.User(ctx, "bob")
	if err != nil {
		t.Fatalf("User(bob): %v", err)
	}
	if bob.Name != "bob" || bob.RealName != "Bob 张伟 Zhang" || !bob.Listed || bob.Hidden {
		t.Errorf("User(bob) = %+v, want the user as created", bob)
	}
	checkTime(t, "User(bob).Created", bob.Created)
	alice, err := st.User(ctx, "alice")
	if err != nil {
		t.Fatalf("User(alice): %v", err)
	}
	if want := created.UTC().Truncate(time.Microsecond); !alice.Created.Equal(want) || alice.Created.Location() != time.UTC {
		t.Errorf("User(alice).Created = %v, want %v", alice.Created, want)
	}
	if alice.Listed || alice.Hidden {
		t.Errorf("User(alice) = %+v, want neither listed nor hidden", alice)
	}

	users, err := st.Users(ctx)
	if err != nil {
		t.Fatalf("Users: %v", err)
	}
	var names []string
	for _, u := range users {
		names = append(names, u.Name)
	}
	if want := []string{"alice", "bob", "carol.x-y_z"}; !slices.Equal(names, want) {
		t.Errorf("Users() names = %q, want %q", names, want)
	}
	if users[1] != bob {
		t.Errorf("Users()[1] = %+v, want %+v (as User returns it)", users[1], bob)
	}

	upd := store.User{Name: "alice", RealName: "Alice Pleasance Liddell", Listed: true, Hidden: true, Created: time.Unix(1, 0)}
	if err := st.UpdateUser(ctx, upd); err != nil {
		t.Fatalf("UpdateUser(alice): %v", err)
	}
	got, _ := st.User(ctx, "alice")
	if got.RealName != upd.RealName || !got.Listed || !got.Hidden || !got.Created.Equal(alice.Created) {
		t.Errorf("User(alice) after UpdateUser = %+v, want new name and flags, Created kept (%v)", got, alice.Created)
	}
	if err := st.UpdateUser(ctx, store.User{Name: "nobody"}); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("UpdateUser(nobody) = %v, want ErrNotFound", err)
	}

	mustPut(t, st, "alice", store.KindPlan, "old plan")
	if err := st.DeleteUser(ctx, "alice"); err != nil {
		t.Fatalf("DeleteUser(alice): %v", err)
	}
	if err := st.DeleteUser(ctx, "alice"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("DeleteUser(alice) again = %v, want ErrNotFound", err)
	}
	if _, err := st.User(ctx, "alice"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("User(alice) after DeleteUser = %v, want ErrNotFound", err)
	}
	if _, err := st.TokenHash(ctx, "alice"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("TokenHash(alice) after DeleteUser = %v, want ErrNotFound", err)
	}
	if _, err := st.History(ctx, "alice", store.KindPlan, 10); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("History(alice) after DeleteUser = %v, want ErrNotFound", err)
	}
	// A name deleted and created again starts afresh.
	mustCreate(t, st, store.User{Name: "alice"})
	h, err := st.History(ctx, "alice", store.KindPlan, 10)
	if err != nil || len(h) != 0 {
		t.Errorf("History(alice) of a new alice = %v, %v; want none", h, err)
	}
	snap, err := st.Snapshot(ctx, 0)
	if err != nil {
		t.Fatalf("Snapshot: %v", err)
	}
	for _, e := range snap.Users {
		if e.Name == "alice" && len(e.Texts) != 0 {
			t.Errorf("a new alice has texts %v, want none", e.Texts)
		}
	}
}

func testInvalid(t *testing.T, st store.Store) {
	ctx := context.Background()
	mustCreate(t, st, store.User{Name: "alice"})
	v0 := mustVersion(t, st)
	badNames := []string{"", "Alice", "-alice", ".alice", "_a", "a b", "a/b", "../etc", "a@b", "a:b",
		"ä", "a\x00", "a\n", strings.Repeat("a", store.MaxNameBytes+1)}
	for _, name := range badNames {
		if err := st.CreateUser(ctx, store.User{Name: name}, hash(name)); !errors.Is(err, store.ErrInvalid) {
			t.Errorf("CreateUser(%q) = %v, want ErrInvalid", name, err)
		}
		if _, err := st.User(ctx, name); !errors.Is(err, store.ErrInvalid) && !errors.Is(err, store.ErrNotFound) {
			t.Errorf("User(%q) = %v, want ErrInvalid or ErrNotFound", name, err)
		}
	}
	if err := st.CreateUser(ctx, store.User{Name: strings.Repeat("a", store.MaxNameBytes)}, hash("long")); err != nil {
		t.Errorf("CreateUser of a %d-byte name: %v", store.MaxNameBytes, err)
	}
	v0 = mustVersion(t, st)
	for _, bad := range []string{"a\nb", "a\x1b[2Jb", strings.Repeat("x", 257), "\xff"} {
		if err := st.CreateUser(ctx, store.User{Name: "bob", RealName: bad}, hash("bob")); !errors.Is(err, store.ErrInvalid) {
			t.Errorf("CreateUser with real name %q = %v, want ErrInvalid", bad, err)
		}
		if err := st.UpdateUser(ctx, store.User{Name: "alice", RealName: bad}); !errors.Is(err, store.ErrInvalid) {
			t.Errorf("UpdateUser with real name %q = %v, want ErrInvalid", bad, err)
		}
	}
	for _, h := range [][]byte{nil, {}, []byte("short")} {
		if err := st.CreateUser(ctx, store.User{Name: "bob"}, h); !errors.Is(err, store.ErrInvalid) {
			t.Errorf("CreateUser with token hash %q = %v, want ErrInvalid", h, err)
		}
		if err := st.SetToken(ctx, "alice", h); !errors.Is(err, store.ErrInvalid) {
			t.Errorf("SetToken with token hash %q = %v, want ErrInvalid", h, err)
		}
	}
	for _, k := range []store.Kind{"", "Plan", "nofinger", "../plan", "forward"} {
		if _, err := st.PutText(ctx, "alice", k, "x"); !errors.Is(err, store.ErrInvalid) {
			t.Errorf("PutText(alice, %q) = %v, want ErrInvalid", k, err)
		}
		if _, err := st.DeleteText(ctx, "alice", k); !errors.Is(err, store.ErrInvalid) {
			t.Errorf("DeleteText(alice, %q) = %v, want ErrInvalid", k, err)
		}
	}
	for _, body := range []string{"\xff\xfe", "a\x00b", strings.Repeat("x", store.MaxTextBytes+1)} {
		if _, err := st.PutText(ctx, "alice", store.KindPlan, body); !errors.Is(err, store.ErrInvalid) {
			t.Errorf("PutText(alice, plan, %.20q) = %v, want ErrInvalid", body, err)
		}
	}
	if v := mustVersion(t, st); v != v0 {
		t.Errorf("Version after refused writes = %d, want %d (unchanged)", v, v0)
	}
	for _, name := range []string{"nobody", "a"} {
		if _, err := st.PutText(ctx, name, store.KindPlan, "x"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("PutText(%q) = %v, want ErrNotFound", name, err)
		}
		if _, err := st.DeleteText(ctx, name, store.KindPlan); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("DeleteText(%q) = %v, want ErrNotFound", name, err)
		}
		if err := st.SetToken(ctx, name, hash("x")); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("SetToken(%q) = %v, want ErrNotFound", name, err)
		}
	}
}

func testTokens(t *testing.T, st store.Store) {
	ctx := context.Background()
	token, h := store.NewToken()
	if err := st.CreateUser(ctx, store.User{Name: "alice"}, h); err != nil {
		t.Fatal(err)
	}
	mustCreate(t, st, store.User{Name: "bob"})
	got, err := st.TokenHash(ctx, "alice")
	if err != nil || !store.TokenMatches(got, token) {
		t.Fatalf("TokenHash(alice) = %x, %v; want the hash of the token created with", got, err)
	}
	token2, h2 := store.NewToken()
	if err := st.SetToken(ctx, "alice", h2); err != nil {
		t.Fatalf("SetToken(alice): %v", err)
	}
	got, _ = st.TokenHash(ctx, "alice")
	if !store.TokenMatches(got, token2) || store.TokenMatches(got, token) {
		t.Errorf("after SetToken, TokenHash(alice) matches the old token or not the new one")
	}
	if got, _ := st.TokenHash(ctx, "bob"); !slices.Equal(got, hash("bob")) {
		t.Errorf("TokenHash(bob) = %x, want bob's own %x", got, hash("bob"))
	}
}

func testTexts(t *testing.T, st store.Store) {
	ctx := context.Background()
	mustCreate(t, st, store.User{Name: "alice"})
	bodies := map[store.Kind]string{
		store.KindPlan:    "Line one\r\nline two\n\ttabbed \x1b[31mred\x1b[0m 你好 \u202eevil\u202c <b>&amp;</b>\n\n",
		store.KindProject: "",
		store.KindPGPKey:  "-----BEGIN PGP PUBLIC KEY BLOCK-----\nxyz\n",
	}
	changes := map[store.Kind]store.Change{}
	for _, k := range store.Kinds {
		v0 := mustVersion(t, st)
		c := mustPut(t, st, "alice", k, bodies[k])
		if c.Name != "alice" || c.Kind != k || c.Body != bodies[k] || c.Deleted {
			t.Errorf("PutText(alice, %q) = %+v, want that change", k, c)
		}
		checkTime(t, "PutText().At", c.At)
		if v := mustVersion(t, st); c.Version <= v0 || c.Version != v {
			t.Errorf("PutText(alice, %q).Version = %d; store version was %d, is %d", k, c.Version, v0, v)
		}
		changes[k] = c
	}
	texts := entry(t, st, "alice").Texts
	for _, k := range store.Kinds {
		want := store.Text{Kind: k, Body: bodies[k], Changed: changes[k].At}
		if got := texts[k]; got.Kind != want.Kind || got.Body != want.Body || !got.Changed.Equal(want.Changed) || got.Changed.Location() != time.UTC {
			t.Errorf("Snapshot text %q = %+q, want %+q", k, got, want)
		}
	}
	c := mustPut(t, st, "alice", store.KindPlan, "new plan")
	if got := entry(t, st, "alice").Texts[store.KindPlan]; got.Body != "new plan" || !got.Changed.Equal(c.At) {
		t.Errorf("after a second PutText, text = %+v, want the new body at %v", got, c.At)
	}
	d, err := st.DeleteText(ctx, "alice", store.KindProject)
	if err != nil {
		t.Fatalf("DeleteText(alice, project): %v", err)
	}
	if d.Name != "alice" || d.Kind != store.KindProject || !d.Deleted || d.Body != "" || d.Version <= c.Version {
		t.Errorf("DeleteText(alice, project) = %+v, want a deletion after version %d", d, c.Version)
	}
	checkTime(t, "DeleteText().At", d.At)
	if _, ok := entry(t, st, "alice").Texts[store.KindProject]; ok {
		t.Errorf("project still in the snapshot after DeleteText")
	}
	if _, err := st.DeleteText(ctx, "alice", store.KindProject); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("DeleteText(alice, project) again = %v, want ErrNotFound", err)
	}
	big := strings.Repeat("x", store.MaxTextBytes)
	mustPut(t, st, "alice", store.KindPGPKey, big)
	if got := entry(t, st, "alice").Texts[store.KindPGPKey].Body; got != big {
		t.Errorf("a text of MaxTextBytes came back as %d bytes", len(got))
	}
}

// entry returns the user's entry from a full snapshot.
func entry(t *testing.T, st store.Store, name string) store.Entry {
	t.Helper()
	snap, err := st.Snapshot(context.Background(), 0)
	if err != nil {
		t.Fatalf("Snapshot(0): %v", err)
	}
	for _, e := range snap.Users {
		if e.Name == name {
			if e.Texts == nil {
				t.Errorf("Snapshot entry %q has nil Texts", name)
			}
			return e
		}
	}
	t.Fatalf("Snapshot(0) has no user %q", name)
	return store.Entry{}
}

func testHistory(t *testing.T, st store.Store) {
	ctx := context.Background()
	mustCreate(t, st, store.User{Name: "alice"})
	mustCreate(t, st, store.User{Name: "bob"})
	var want []store.Change
	n := store.HistoryLimit + 5
	for i := range n {
		want = append(want, mustPut(t, st, "alice", store.KindPlan, fmt.Sprintf("plan %d", i)))
		if i%10 == 0 {
			mustPut(t, st, "alice", store.KindProject, fmt.Sprintf("project %d", i))
			mustPut(t, st, "bob", store.KindPlan, fmt.Sprintf("bob %d", i))
		}
	}
	d, err := st.DeleteText(ctx, "alice", store.KindPlan)
	if err != nil {
		t.Fatal(err)
	}
	want = append(want, d)
	slices.Reverse(want)
	want = want[:store.HistoryLimit]

	got, err := st.History(ctx, "alice", store.KindPlan, 1000)
	if err != nil {
		t.Fatalf("History(alice, plan): %v", err)
	}
	if len(got) != store.HistoryLimit {
		t.Fatalf("History(alice, plan, 1000) has %d changes, want the newest %d", len(got), store.HistoryLimit)
	}
	for i := range got {
		if !sameChange(got[i], want[i]) {
			t.Errorf("History(alice, plan)[%d] = %+v, want %+v", i, got[i], want[i])
		}
	}
	got, _ = st.History(ctx, "alice", store.KindPlan, 3)
	if len(got) != 3 || !sameChange(got[0], want[0]) || !got[0].Deleted || !sameChange(got[2], want[2]) {
		t.Errorf("History(alice, plan, 3) = %+v, want the 3 newest, a deletion first", got)
	}
	for _, limit := range []int{0, -1} {
		if got, err := st.History(ctx, "alice", store.KindPlan, limit); err != nil || len(got) != 0 {
			t.Errorf("History(alice, plan, %d) = %v, %v; want none", limit, got, err)
		}
	}
	got, _ = st.History(ctx, "alice", store.KindProject, 100)
	if len(got) != 6 || got[0].Body != "project 50" || got[0].Kind != store.KindProject {
		t.Errorf("History(alice, project) = %d changes, newest %+v; want 6, newest \"project 50\"", len(got), got)
	}
	got, _ = st.History(ctx, "bob", store.KindPlan, 100)
	if len(got) != 6 || got[0].Name != "bob" {
		t.Errorf("History(bob, plan) = %d changes; want 6 of bob's", len(got))
	}
	if got, err := st.History(ctx, "alice", store.KindPGPKey, 10); err != nil || len(got) != 0 {
		t.Errorf("History(alice, pgpkey) = %v, %v; want none", got, err)
	}
	if _, err := st.History(ctx, "nobody", store.KindPlan, 10); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("History(nobody) = %v, want ErrNotFound", err)
	}
}

func sameChange(a, b store.Change) bool {
	return a.Name == b.Name && a.Kind == b.Kind && a.Body == b.Body && a.At.Equal(b.At) &&
		a.Deleted == b.Deleted && a.Version == b.Version && a.At.Location() == time.UTC
}

func testRecent(t *testing.T, st store.Store) {
	ctx := context.Background()
	mustCreate(t, st, store.User{Name: "listed", Listed: true})
	mustCreate(t, st, store.User{Name: "other", Listed: true})
	mustCreate(t, st, store.User{Name: "unlisted"})
	mustCreate(t, st, store.User{Name: "hidden", Listed: true, Hidden: true})
	var want []store.Change
	for i := range 4 {
		for _, name := range []string{"listed", "unlisted", "hidden", "other"} {
			c := mustPut(t, st, name, store.KindPlan, fmt.Sprintf("%s %d", name, i))
			if name == "listed" || name == "other" {
				want = append(want, c)
			}
		}
		mustPut(t, st, "listed", store.KindProject, "project")
	}
	slices.Reverse(want)
	got, err := st.Recent(ctx, store.KindPlan, 5)
	if err != nil {
		t.Fatalf("Recent: %v", err)
	}
	if len(got) != 5 {
		t.Fatalf("Recent(plan, 5) = %d changes, want 5", len(got))
	}
	for i := range got {
		if !sameChange(got[i], want[i]) {
			t.Errorf("Recent(plan, 5)[%d] = %+v, want %+v", i, got[i], want[i])
		}
	}
	got, _ = st.Recent(ctx, store.KindPlan, 100)
	if len(got) != len(want) {
		t.Errorf("Recent(plan, 100) = %d changes, want %d (listed, not hidden)", len(got), len(want))
	}
	got, _ = st.Recent(ctx, store.KindProject, 100)
	if len(got) != 4 || got[0].Kind != store.KindProject {
		t.Errorf("Recent(project, 100) = %+v, want 4 project changes", got)
	}
	if got, err := st.Recent(ctx, store.KindPlan, 0); err != nil || len(got) != 0 {
		t.Errorf("Recent(plan, 0) = %v, %v; want none", got, err)
	}
	// Becoming unlisted takes a user's past changes out too.
	if err := st.UpdateUser(ctx, store.User{Name: "other"}); err != nil {
		t.Fatal(err)
	}
	got, _ = st.Recent(ctx, store.KindPlan, 100)
	for _, c := range got {
		if c.Name != "listed" {
			t.Errorf("Recent(plan) after other became unlisted has %+v", c)
		}
	}
}

func testVersion(t *testing.T, newURL NewURL) {
	ctx := context.Background()
	url := newURL(t)
	st := open(t, url)
	other := open(t, url)
	v := mustVersion(t, st)
	writes := []struct {
		name string
		do   func() error
	}{
		{"CreateUser", func() error { return st.CreateUser(ctx, store.User{Name: "alice"}, hash("a")) }},
		{"UpdateUser", func() error { return st.UpdateUser(ctx, store.User{Name: "alice", Listed: true}) }},
		{"SetToken", func() error { return st.SetToken(ctx, "alice", hash("b")) }},
		{"PutText", func() error { _, err := st.PutText(ctx, "alice", store.KindPlan, "p"); return err }},
		{"DeleteText", func() error { _, err := st.DeleteText(ctx, "alice", store.KindPlan); return err }},
		{"DeleteUser", func() error { return st.DeleteUser(ctx, "alice") }},
	}
	for _, w := range writes {
		if err := w.do(); err != nil {
			t.Fatalf("%s: %v", w.name, err)
		}
		nv := mustVersion(t, st)
		if nv <= v {
			t.Errorf("Version after %s = %d, want more than %d", w.name, nv, v)
		}
		if ov := mustVersion(t, other); ov != nv {
			t.Errorf("Version from another handle after %s = %d, want %d", w.name, ov, nv)
		}
		// Reads leave it alone.
		st.Users(ctx)
		st.Snapshot(ctx, 0)
		st.Recent(ctx, store.KindPlan, 10)
		if again := mustVersion(t, st); again != nv {
			t.Errorf("Version after reads = %d, want %d", again, nv)
		}
		v = nv
	}
}

func testSnapshot(t *testing.T, st store.Store) {
	ctx := context.Background()
	empty, err := st.Snapshot(ctx, 0)
	if err != nil {
		t.Fatalf("Snapshot(0) of an empty store: %v", err)
	}
	if !empty.Full || len(empty.Users) != 0 || len(empty.Deleted) != 0 {
		t.Errorf("Snapshot(0) of an empty store = %+v, want full and empty", empty)
	}
	// held is what a cache holds; merge applies deltas to it.
	held := map[string]store.Entry{}
	version := int64(0)
	refresh := func(step string) {
		t.Helper()
		snap, err := st.Snapshot(ctx, version)
		if err != nil {
			t.Fatalf("%s: Snapshot(%d): %v", step, version, err)
		}
		if version == 0 && !snap.Full {
			t.Errorf("%s: Snapshot(0).Full = false", step)
		}
		if snap.Version < version {
			t.Errorf("%s: Snapshot(%d).Version = %d, went back", step, version, snap.Version)
		}
		if !slices.IsSortedFunc(snap.Users, func(a, b store.Entry) int { return strings.Compare(a.Name, b.Name) }) {
			t.Errorf("%s: Snapshot(%d).Users not sorted by name", step, version)
		}
		if snap.Full {
			clear(held)
		}
		for _, name := range snap.Deleted {
			delete(held, name)
		}
		for _, e := range snap.Users {
			if e.Texts == nil {
				t.Errorf("%s: entry %q has nil Texts", step, e.Name)
			}
			if e.Version <= version && !snap.Full || e.Version > snap.Version {
				t.Errorf("%s: Snapshot(%d) (version %d) holds %q of version %d", step, version, snap.Version, e.Name, e.Version)
			}
			held[e.Name] = e
		}
		version = snap.Version
		full, err := st.Snapshot(ctx, 0)
		if err != nil {
			t.Fatalf("%s: Snapshot(0): %v", step, err)
		}
		if full.Version != version {
			t.Errorf("%s: Snapshot(0).Version = %d, want %d (nothing written since)", step, full.Version, version)
		}
		want := map[string]store.Entry{}
		for _, e := range full.Users {
			want[e.Name] = e
		}
		if !maps.EqualFunc(held, want, sameEntry) {
			t.Errorf("%s: merged snapshots = %+v\nwant %+v", step, held, want)
		}
	}
	refresh("empty")
	mustCreate(t, st, store.User{Name: "alice", RealName: "Alice"})
	mustCreate(t, st, store.User{Name: "bob"})
	mustCreate(t, st, store.User{Name: "carol"})
	mustPut(t, st, "alice", store.KindPlan, "a plan")
	refresh("created")

	// Nothing changed: an empty delta.
	snap, err := st.Snapshot(ctx, version)
	if err != nil || snap.Full || len(snap.Users) != 0 || len(snap.Deleted) != 0 || snap.Version != version {
		t.Errorf("Snapshot(current) = %+v, %v; want an empty delta at version %d", snap, err, version)
	}

	mustPut(t, st, "bob", store.KindProject, "bob's project")
	before := version
	refresh("one changed")
	snap, _ = st.Snapshot(ctx, before)
	if len(snap.Users) != 1 || snap.Users[0].Name != "bob" || len(snap.Deleted) != 0 {
		t.Errorf("Snapshot after one PutText(bob) = %+v, want only bob", snap)
	}

	must := func(what string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	must("DeleteUser(carol)", st.DeleteUser(ctx, "carol"))
	must("DeleteUser(alice)", st.DeleteUser(ctx, "alice"))
	mustCreate(t, st, store.User{Name: "alice", RealName: "Alice Again"})
	must("UpdateUser(bob)", st.UpdateUser(ctx, store.User{Name: "bob", Listed: true, Hidden: true}))
	before = version
	refresh("deleted, created again, updated")
	snap, _ = st.Snapshot(ctx, before)
	if !slices.Equal(snap.Deleted, []string{"carol"}) {
		t.Errorf("Snapshot.Deleted = %q, want [carol] (alice exists again)", snap.Deleted)
	}
	if len(snap.Users) != 2 {
		t.Errorf("Snapshot.Users = %+v, want alice and bob", snap.Users)
	}

	if e := held["bob"]; !bytes.Equal(e.TokenHash, hash("bob")) {
		t.Errorf("bob's entry has token hash %x, want the one he was created with, %x", e.TokenHash, hash("bob"))
	}
	must("SetToken(bob)", st.SetToken(ctx, "bob", hash("new")))
	_, err = st.DeleteText(ctx, "bob", store.KindProject)
	must("DeleteText(bob, project)", err)
	mustCreate(t, st, store.User{Name: "dave"})
	must("DeleteUser(dave)", st.DeleteUser(ctx, "dave"))
	refresh("token, text deleted, a short-lived user")
	if e := held["bob"]; !bytes.Equal(e.TokenHash, hash("new")) {
		t.Errorf("bob's entry after SetToken has token hash %x, want the new one, %x", e.TokenHash, hash("new"))
	}
}

func sameEntry(a, b store.Entry) bool {
	if a.User != b.User || a.Version != b.Version || len(a.Texts) != len(b.Texts) || !bytes.Equal(a.TokenHash, b.TokenHash) {
		return false
	}
	for k, ta := range a.Texts {
		tb, ok := b.Texts[k]
		if !ok || ta.Kind != tb.Kind || ta.Body != tb.Body || !ta.Changed.Equal(tb.Changed) {
			return false
		}
	}
	return true
}

func testConcurrent(t *testing.T, newURL NewURL) {
	ctx := context.Background()
	url := newURL(t)
	a := open(t, url)
	b := open(t, url)
	const writers, each = 8, 25
	for i := range writers {
		mustCreate(t, a, store.User{Name: fmt.Sprintf("user%d", i)})
	}
	v0 := mustVersion(t, a)
	var mu sync.Mutex
	seen := map[int64]bool{}
	var wg sync.WaitGroup
	for i := range writers {
		st := a
		if i%2 == 1 {
			st = b
		}
		wg.Go(func() {
			for j := range each {
				// Half write their own user, half all write user0.
				name := fmt.Sprintf("user%d", i)
				if j%2 == 1 {
					name = "user0"
				}
				c, err := st.PutText(ctx, name, store.KindPlan, fmt.Sprintf("%d %d", i, j))
				if err != nil {
					t.Errorf("concurrent PutText(%q): %v", name, err)
					return
				}
				mu.Lock()
				if seen[c.Version] {
					t.Errorf("two writes got version %d", c.Version)
				}
				seen[c.Version] = true
				mu.Unlock()
				if j%5 == 0 {
					if _, err := st.Snapshot(ctx, 0); err != nil {
						t.Errorf("concurrent Snapshot: %v", err)
					}
				}
			}
		})
	}
	// Writes that fail, among the others, fail alone.
	for range writers {
		wg.Go(func() {
			for range 5 {
				if _, err := a.PutText(ctx, "nobody", store.KindPlan, "x"); !errors.Is(err, store.ErrNotFound) {
					t.Errorf("concurrent PutText(nobody) = %v, want ErrNotFound", err)
				}
				if err := a.CreateUser(ctx, store.User{Name: "user0"}, hash("dup")); !errors.Is(err, store.ErrExists) {
					t.Errorf("concurrent CreateUser(user0) = %v, want ErrExists", err)
				}
			}
		})
	}
	wg.Wait()
	for i := range writers {
		name := fmt.Sprintf("user%d", i)
		h, err := a.History(ctx, name, store.KindPlan, 1000)
		want := (each + 1) / 2 // the even j of writer i
		if i == 0 {
			want += (writers - 1) * (each / 2) // the odd j of the others
		}
		if err != nil || len(h) != min(want, store.HistoryLimit) {
			t.Errorf("History(%s) after the concurrent writes = %d changes, %v; want %d", name, len(h), err, min(want, store.HistoryLimit))
		}
	}
	if v := mustVersion(t, b); v < v0+writers*each {
		t.Errorf("Version after %d writes = %d, want at least %d", writers*each, v, v0+writers*each)
	}
}

func testWatch(t *testing.T, st store.Store) {
	// Every driver announces writes: a store without Watch would leave
	// hosted readers a poll interval behind, so the suite requires it
	// rather than skip a check nobody would notice was skipped.
	w, ok := st.(store.Watcher)
	if !ok {
		t.Fatalf("%T does not implement store.Watcher", st)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ch := w.Watch(ctx)
	mustCreate(t, st, store.User{Name: "alice"})
	select {
	case _, ok := <-ch:
		if !ok {
			t.Fatal("Watch channel closed before ctx ended")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no announcement within 10 s of CreateUser")
	}
	cancel()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case _, ok := <-ch:
			if !ok {
				return
			}
		case <-deadline:
			t.Fatal("Watch channel not closed within 10 s of ctx ending")
		}
	}
}

func testClosed(t *testing.T, newURL NewURL) {
	ctx := context.Background()
	st, err := store.Open(ctx, newURL(t))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if _, err := st.Version(ctx); !errors.Is(err, store.ErrClosed) {
		t.Errorf("Version after Close = %v, want ErrClosed", err)
	}
	if err := st.CreateUser(ctx, store.User{Name: "alice"}, hash("a")); !errors.Is(err, store.ErrClosed) {
		t.Errorf("CreateUser after Close = %v, want ErrClosed", err)
	}
	if _, err := st.Snapshot(ctx, 0); !errors.Is(err, store.ErrClosed) {
		t.Errorf("Snapshot after Close = %v, want ErrClosed", err)
	}
}

// A write made with a token hash goes through only while the user has
// that hash: a replaced token, or a deleted user, is refused by the write
// itself, which then leaves everything as it was.
func testPutWithToken(t *testing.T, st store.Store) {
	ctx := context.Background()
	mustCreate(t, st, store.User{Name: "alice"})
	c, err := st.PutTextWithToken(ctx, "alice", hash("alice"), store.KindPlan, "first")
	if err != nil {
		t.Fatalf("PutTextWithToken(alice, her hash) = %v, want nil", err)
	}
	if c.Version != mustVersion(t, st) || c.Body != "first" || c.Name != "alice" || c.Kind != store.KindPlan {
		t.Errorf("PutTextWithToken(alice) = %+v, want the change at the store's version %d", c, mustVersion(t, st))
	}
	checkTime(t, "PutTextWithToken().At", c.At)
	if err := st.SetToken(ctx, "alice", hash("alice-new")); err != nil {
		t.Fatal(err)
	}
	v := mustVersion(t, st)
	if _, err := st.PutTextWithToken(ctx, "alice", hash("alice"), store.KindPlan, "with the old token"); !errors.Is(err, store.ErrToken) {
		t.Errorf("PutTextWithToken(alice, replaced hash) = %v, want ErrToken", err)
	}
	if got := mustVersion(t, st); got != v {
		t.Errorf("Version after a refused write = %d, want %d", got, v)
	}
	if h, err := st.History(ctx, "alice", store.KindPlan, 10); err != nil || len(h) != 1 || h[0].Body != "first" {
		t.Errorf("History(alice) after a refused write = %+v, %v; want only the first plan", h, err)
	}
	snap, err := st.Snapshot(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(snap.Users) != 1 || snap.Users[0].Texts[store.KindPlan].Body != "first" {
		t.Errorf("Snapshot after a refused write = %+v, want the first plan", snap.Users)
	}
	// Versions are consecutive: a reader holding v knows that the change
	// at v+1 is the only write in between.
	if c, err := st.PutTextWithToken(ctx, "alice", hash("alice-new"), store.KindPlan, "second"); err != nil {
		t.Errorf("PutTextWithToken(alice, new hash) = %v, want nil", err)
	} else if c.Version != v+1 {
		t.Errorf("PutTextWithToken(alice) at version %d after version %d, want %d", c.Version, v, v+1)
	}
	if _, err := st.PutTextWithToken(ctx, "alice", []byte("short"), store.KindPlan, "x"); !errors.Is(err, store.ErrInvalid) {
		t.Errorf("PutTextWithToken(alice, a 5-byte hash) = %v, want ErrInvalid", err)
	}
	if _, err := st.PutTextWithToken(ctx, "nobody", hash("nobody"), store.KindPlan, "x"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("PutTextWithToken(nobody) = %v, want ErrNotFound", err)
	}
	if err := st.DeleteUser(ctx, "alice"); err != nil {
		t.Fatal(err)
	}
	if _, err := st.PutTextWithToken(ctx, "alice", hash("alice-new"), store.KindPlan, "x"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("PutTextWithToken(alice) after DeleteUser = %v, want ErrNotFound", err)
	}
}
