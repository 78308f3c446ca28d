package hosted_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/openfinger/finger/internal/fingertest"
	"github.com/openfinger/finger/internal/store"
	_ "github.com/openfinger/finger/internal/store/sqlite"
	"github.com/openfinger/finger/internal/userinfo"
	"github.com/openfinger/finger/internal/userinfo/hosted"
	"github.com/openfinger/finger/internal/userinfo/userinfotest"
	"github.com/openfinger/finger/internal/userinfo/virtual"
)

// newStore returns a migrated SQLite store in a temporary directory and
// its URL.
func newStore(t testing.TB) (store.Store, string) {
	t.Helper()
	ctx := context.Background()
	url := "sqlite:" + filepath.Join(t.TempDir(), "fingerd.db")
	st, err := store.Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if _, err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	return st, url
}

func add(t *testing.T, st store.Store, u store.User, texts map[store.Kind]string) {
	t.Helper()
	ctx := context.Background()
	_, h := store.NewToken()
	if err := st.CreateUser(ctx, u, h); err != nil {
		t.Fatal(err)
	}
	for k, body := range texts {
		if _, err := st.PutText(ctx, u.Name, k, body); err != nil {
			t.Fatal(err)
		}
	}
}

func load(t *testing.T, st store.Store) *hosted.Source {
	t.Helper()
	src := &hosted.Source{Store: st, Logger: fingertest.Logger(t)}
	if err := src.Load(context.Background()); err != nil {
		t.Fatalf("Load: %v", err)
	}
	return src
}

func TestConformance(t *testing.T) {
	st, _ := newStore(t)
	add(t, st, store.User{Name: "alice", RealName: "Alice Liddell", Listed: true}, map[store.Kind]string{
		store.KindPlan:    "Going down the rabbit hole.\n",
		store.KindProject: "tea party",
		store.KindPGPKey:  "",
	})
	add(t, st, store.User{Name: "bob", RealName: "Bob 张伟 Zhang"}, map[store.Kind]string{store.KindPlan: "你好，世界\n"})
	add(t, st, store.User{Name: "hid", RealName: "Hidden Person", Hidden: true}, nil)
	src := load(t, st)
	acct := func(login string) *userinfo.Account {
		a, err := src.Lookup(context.Background(), login)
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	t.Run("Accounts", func(t *testing.T) {
		userinfotest.TestAccounts(t, src, []string{"alice", "bob", "hid"})
	})
	t.Run("Files", func(t *testing.T) {
		userinfotest.TestFiles(t, src,
			userinfotest.UserFiles{Account: acct("alice"), Files: map[string][]byte{
				".plan": []byte("Going down the rabbit hole.\n"), ".project": []byte("tea party"), ".pgpkey": {}}},
			userinfotest.UserFiles{Account: acct("bob"), Files: map[string][]byte{".plan": []byte("你好，世界\n")}},
			userinfotest.UserFiles{Account: acct("hid"), Hidden: true},
		)
	})
}

// lab is a Responder over system accounts (virtual) and hosted users.
type lab struct {
	st      store.Store
	src     *hosted.Source
	overlay *hosted.Overlay
	rs      *userinfo.Responder
	logs    *fingertest.Buffer
}

var now = time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)

func newLab(t testing.TB, system *virtual.Source) *lab {
	t.Helper()
	st, _ := newStore(t)
	l := &lab{st: st, logs: &fingertest.Buffer{}}
	log := slog.New(slog.NewTextHandler(l.logs, nil))
	l.src = &hosted.Source{Store: st, Logger: log}
	l.overlay = &hosted.Overlay{System: system, SystemFiles: system, Hosted: l.src, Logger: log, ShadowTTL: 50 * time.Millisecond}
	pol := userinfo.DefaultPolicy()
	l.rs = &userinfo.Responder{
		Accounts: l.overlay, Files: l.overlay, Directory: l.overlay, Sessions: system,
		Policy: pol, Now: func() time.Time { return now }, Location: time.UTC,
	}
	return l
}

func (l *lab) ask(t *testing.T, q string) string {
	t.Helper()
	if err := l.src.Refresh(context.Background()); err != nil {
		t.Fatalf("Refresh: %v", err)
	}
	return string(fingertest.Exchange(t, l.rs, []byte(q+"\r\n")))
}

func system() *virtual.Source {
	return virtual.New(
		virtual.User{Account: userinfo.Account{Login: "carol", UID: 1001, Name: "Carol System", Home: "/home/carol", Shell: "/bin/bash"},
			Sessions: []userinfo.Session{{TTY: "pts/1", LoginTime: now.Add(-time.Hour), Idle: -1}},
			Files:    map[string][]byte{".plan": []byte("carol's own plan\n")}},
		virtual.User{Account: userinfo.Account{Login: "daemon", UID: 1, Name: "Daemon"}},
	)
}

func TestAnswers(t *testing.T) {
	l := newLab(t, system())
	add(t, l.st, store.User{Name: "alice", RealName: "Alice Liddell", Listed: true}, nil)
	c, err := l.st.PutText(context.Background(), "alice", store.KindPlan, "Down the \x1b[2Jrabbit hole.\r\n<script>alert(1)</script>\n")
	if err != nil {
		t.Fatal(err)
	}
	add(t, l.st, store.User{Name: "bob", RealName: "Bob Unlisted"}, map[store.Kind]string{store.KindProject: "a project"})
	add(t, l.st, store.User{Name: "hid", RealName: "Hidden Alice", Listed: true, Hidden: true}, map[store.Kind]string{store.KindPlan: "secret"})

	changed := c.At.In(time.UTC).Format("Mon Jan _2 15:04 (MST)")
	want := "Login: alice          \t\t\tName: Alice Liddell\n" +
		"Plan last changed " + changed + "\n" +
		"Plan:\n" +
		"Down the ^[[2Jrabbit hole.\n<script>alert(1)</script>\n"
	want = strings.ReplaceAll(want, "\n", "\r\n")
	if got := l.ask(t, "alice"); got != want {
		t.Errorf("alice = %q\nwant %q", got, want)
	}
	// By a word of the real name, case-insensitive; hidden Alice is not found.
	if got := l.ask(t, "LIDDELL"); got != want {
		t.Errorf("LIDDELL = %q\nwant %q", got, want)
	}
	if got := l.ask(t, "alice"); strings.Contains(got, "Hidden") {
		t.Errorf("alice finds the hidden user: %q", got)
	}
	wantBob := "Login: bob            \t\t\tName: Bob Unlisted\r\nProject:\r\na project\r\nNo Plan.\r\n"
	if got := l.ask(t, "bob"); got != wantBob {
		t.Errorf("bob = %q\nwant %q", got, wantBob)
	}
	// A hidden user is answered exactly like one that does not exist.
	if got, none := l.ask(t, "hid"), l.ask(t, "nosuchuser"); got != strings.ReplaceAll(none, "nosuchuser", "hid") {
		t.Errorf("hid = %q, want the answer for an unknown user %q", got, none)
	}
	// {C}: carol from her session, alice listed, bob unlisted, hid hidden.
	list := l.ask(t, "")
	for _, want := range []string{"carol", "alice     Alice Liddell"} {
		if !strings.Contains(list, want) {
			t.Errorf("{C} = %q, want it to hold %q", list, want)
		}
	}
	for _, not := range []string{"bob", "hid", "Hidden"} {
		if strings.Contains(list, not) {
			t.Errorf("{C} = %q, holds %q", list, not)
		}
	}
	// The system account's answer is unchanged.
	if got := l.ask(t, "carol"); !strings.Contains(got, "Directory: /home/carol") || !strings.Contains(got, "carol's own plan") {
		t.Errorf("carol = %q, want her account's long form", got)
	}
}

func TestSystemAccountWins(t *testing.T) {
	sys := system()
	l := newLab(t, sys)
	add(t, l.st, store.User{Name: "carol", RealName: "Carol Hosted", Listed: true}, map[store.Kind]string{store.KindPlan: "hosted carol"})
	add(t, l.st, store.User{Name: "eve", RealName: "Eve Hosted", Listed: true}, map[store.Kind]string{store.KindPlan: "hosted eve"})
	if got := l.ask(t, "carol"); strings.Contains(got, "hosted carol") || !strings.Contains(got, "carol's own plan") {
		t.Errorf("carol = %q, want the system account's answer", got)
	}
	if got := l.ask(t, "Hosted"); !strings.Contains(got, "hosted eve") || strings.Contains(got, "hosted carol") {
		t.Errorf("Hosted (real name) = %q, want eve only", got)
	}
	if got := l.ask(t, ""); strings.Contains(got, "Carol Hosted") {
		t.Errorf("{C} = %q, lists the hidden hosted carol", got)
	}
	if n := strings.Count(l.logs.String(), "login=carol"); n != 1 {
		t.Errorf("the operator was told %d times of carol, want once:\n%s", n, l.logs.String())
	}
	ctx := context.Background()
	if !l.overlay.SystemHas(ctx, "carol") || l.overlay.SystemHas(ctx, "eve") || l.overlay.SystemHas(ctx, "nosuchuser") {
		t.Errorf("SystemHas(carol, eve, nosuchuser) = %v, %v, %v; want true, false, false",
			l.overlay.SystemHas(ctx, "carol"), l.overlay.SystemHas(ctx, "eve"), l.overlay.SystemHas(ctx, "nosuchuser"))
	}
	// An account appearing later wins too, within ShadowTTL.
	if got := l.ask(t, "eve"); !strings.Contains(got, "hosted eve") {
		t.Errorf("eve before the account appeared = %q, want the hosted user", got)
	}
	sys.Set(virtual.User{Account: userinfo.Account{Login: "eve", UID: 1005, Name: "Eve System"}})
	waitFor(t, "the new account eve answered", func() bool {
		got := l.ask(t, "eve")
		return !strings.Contains(got, "hosted eve") && strings.Contains(got, "Eve System")
	})
	if !l.overlay.SystemHas(ctx, "eve") {
		t.Errorf("SystemHas(eve) after the account appeared = false")
	}
	got, err := l.overlay.Check(context.Background())
	if err != nil || strings.Join(got, ",") != "carol,eve" {
		t.Errorf("Check = %q, %v; want carol and eve", got, err)
	}
	if n := strings.Count(l.logs.String(), "login=eve"); n != 1 {
		t.Errorf("the operator was told %d times of eve, want once", n)
	}
}

// Changes by another process show after the next poll; when the store is
// gone, answers go on from what is held.
func TestRunFollowsStore(t *testing.T) {
	st, url := newStore(t)
	add(t, st, store.User{Name: "alice"}, map[store.Kind]string{store.KindPlan: "first"})
	src := &hosted.Source{Store: st, PollInterval: 20 * time.Millisecond, Logger: fingertest.Logger(t)}
	if err := src.Load(context.Background()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- src.Run(ctx) }()
	defer func() {
		cancel()
		<-done
	}()

	other, err := store.Open(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	c, err := other.PutText(context.Background(), "alice", store.KindPlan, "second")
	if err != nil {
		t.Fatal(err)
	}
	plan := func() string {
		a := &userinfo.Account{Login: "alice", Hosted: true}
		f, err := src.ReadFile(context.Background(), a, ".plan", 0)
		if err != nil {
			return err.Error()
		}
		return string(f.Data)
	}
	waitFor(t, "the plan written by another process", func() bool { return plan() == "second" })
	// A text the user has not published: not found, and said so.
	_, err = src.ReadFile(context.Background(), &userinfo.Account{Login: "alice", Hosted: true}, ".project", 0)
	if want := `hosted: project of "alice": ` + userinfo.ErrNotFound.Error(); !errors.Is(err, userinfo.ErrNotFound) || err.Error() != want {
		t.Errorf("ReadFile of an unpublished .project = %v, want %q wrapping userinfo.ErrNotFound", err, want)
	}
	if src.Version() < c.Version {
		t.Errorf("Version() = %d, want at least %d", src.Version(), c.Version)
	}
	if err := src.Err(); err != nil {
		t.Errorf("Err() with the store open = %v, want nil", err)
	}
	st.Close()
	other.Close()
	// Polls run one at a time: once one has failed on the closed store,
	// none that began before the close can still succeed.
	waitFor(t, "Err() reporting the closed store", func() bool { return errors.Is(src.Err(), store.ErrClosed) })
	synced := src.Synced()
	// More refreshes, all failing (Run's polls go on beside them).
	for range 3 {
		if err := src.Refresh(context.Background()); !errors.Is(err, store.ErrClosed) {
			t.Errorf("Refresh with the store closed = %v, want ErrClosed", err)
		}
	}
	if got := plan(); got != "second" {
		t.Errorf("plan with the store closed = %q, want what was held", got)
	}
	if !src.Synced().Equal(synced) {
		t.Errorf("Synced moved from %v to %v while the store was closed", synced, src.Synced())
	}
}

func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("no %s within 10 s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// Refreshing applies what changed to the copy: it ends up equal to a copy
// loaded afresh.
func TestRefreshMatchesLoad(t *testing.T) {
	ctx := context.Background()
	st, _ := newStore(t)
	for i := range 200 {
		add(t, st, store.User{Name: fmt.Sprintf("u%03d", i), Listed: i%2 == 0}, map[store.Kind]string{store.KindPlan: fmt.Sprint("plan ", i)})
	}
	src := load(t, st)
	for i := range 50 {
		if err := st.DeleteUser(ctx, fmt.Sprintf("u%03d", i)); err != nil {
			t.Fatal(err)
		}
		if _, err := st.PutText(ctx, fmt.Sprintf("u%03d", 50+i), store.KindProject, "new"); err != nil {
			t.Fatal(err)
		}
		add(t, st, store.User{Name: fmt.Sprintf("v%03d", i)}, nil)
	}
	if err := st.DeleteUser(ctx, "v000"); err != nil {
		t.Fatal(err)
	}
	add(t, st, store.User{Name: "u000", RealName: "again"}, nil)
	if err := src.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	fresh := load(t, st)
	got, want := src.Entries(), fresh.Entries()
	if len(got) != len(want) || src.Len() != fresh.Len() || src.Len() != len(want) {
		t.Fatalf("refreshed copy has %d entries (Len %d), fresh load %d", len(got), src.Len(), len(want))
	}
	for i := range got {
		if got[i].User != want[i].User || got[i].Version != want[i].Version || len(got[i].Texts) != len(want[i].Texts) {
			t.Errorf("entry %d = %+v, want %+v", i, got[i], want[i])
		}
	}
	a, _ := src.Listed(ctx)
	b, _ := fresh.Listed(ctx)
	if len(a) != len(b) {
		t.Errorf("Listed after refresh = %d users, fresh %d", len(a), len(b))
	}
}

// countingStore counts the reads a Source makes of its store.
type countingStore struct {
	store.Store
	mu    sync.Mutex
	reads int
}

func (c *countingStore) Snapshot(ctx context.Context, since int64) (*store.Snapshot, error) {
	c.mu.Lock()
	c.reads++
	c.mu.Unlock()
	return c.Store.Snapshot(ctx, since)
}

func (c *countingStore) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.reads
}

// sameEntries fails unless the copy holds what a copy loaded afresh holds,
// texts included.
func sameEntries(t *testing.T, src *hosted.Source, st store.Store) {
	t.Helper()
	got, want := src.Entries(), load(t, st).Entries()
	if len(got) != len(want) {
		t.Fatalf("copy has %d entries, fresh load %d", len(got), len(want))
	}
	for i := range got {
		g, w := got[i], want[i]
		same := g.User == w.User && g.Version == w.Version && len(g.Texts) == len(w.Texts)
		for k, tw := range w.Texts {
			tg, ok := g.Texts[k]
			same = same && ok && tg.Body == tw.Body && tg.Changed.Equal(tw.Changed) && tg.Kind == tw.Kind
		}
		if !same {
			t.Errorf("entry %s = %+v, fresh load %+v", w.Name, g, w)
		}
	}
}

// A change this process wrote comes into the copy from the change itself:
// no read of the store, and the copy is what a fresh load gives.
func TestWroteAppliesWithoutReading(t *testing.T) {
	ctx := context.Background()
	st, _ := newStore(t)
	add(t, st, store.User{Name: "alice"}, map[store.Kind]string{store.KindPlan: "first", store.KindProject: "p"})
	add(t, st, store.User{Name: "bob"}, nil)
	cs := &countingStore{Store: st}
	src := &hosted.Source{Store: cs, Logger: fingertest.Logger(t)}
	if err := src.Load(ctx); err != nil {
		t.Fatal(err)
	}
	before := cs.count()
	c, err := st.PutText(ctx, "alice", store.KindPlan, "second")
	if err != nil {
		t.Fatal(err)
	}
	if err := src.Wrote(ctx, c); err != nil {
		t.Fatalf("Wrote: %v", err)
	}
	d, err := st.DeleteText(ctx, "alice", store.KindProject)
	if err != nil {
		t.Fatal(err)
	}
	if err := src.Wrote(ctx, d); err != nil {
		t.Fatalf("Wrote(deletion): %v", err)
	}
	if n := cs.count() - before; n != 0 {
		t.Errorf("Wrote read the store %d times, want 0", n)
	}
	if src.Version() != d.Version {
		t.Errorf("Version() = %d, want %d", src.Version(), d.Version)
	}
	e, _ := src.Entry("alice")
	if e.Texts[store.KindPlan].Body != "second" {
		t.Errorf("plan after Wrote = %q, want %q", e.Texts[store.KindPlan].Body, "second")
	}
	if _, ok := e.Texts[store.KindProject]; ok {
		t.Errorf("project still held after its deletion")
	}
	sameEntries(t, src, st)
}

// A change whose predecessors the copy lacks (here a write of another
// process) is not applied on top of a copy missing them: the copy reads
// what changed and ends up with both.
func TestWroteAfterOtherWrites(t *testing.T) {
	ctx := context.Background()
	st, url := newStore(t)
	add(t, st, store.User{Name: "alice"}, map[store.Kind]string{store.KindPlan: "first"})
	add(t, st, store.User{Name: "bob"}, map[store.Kind]string{store.KindPlan: "bob's"})
	src := load(t, st)
	other, err := store.Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if _, err := other.PutText(ctx, "bob", store.KindPlan, "changed elsewhere"); err != nil {
		t.Fatal(err)
	}
	c, err := st.PutText(ctx, "alice", store.KindPlan, "second")
	if err != nil {
		t.Fatal(err)
	}
	if err := src.Wrote(ctx, c); err != nil {
		t.Fatalf("Wrote: %v", err)
	}
	if e, _ := src.Entry("bob"); e.Texts[store.KindPlan].Body != "changed elsewhere" {
		t.Errorf("bob's plan = %q, want the other process's write", e.Texts[store.KindPlan].Body)
	}
	sameEntries(t, src, st)
}

// Writers committed together hand their changes back in any order; each
// Wrote returns with its change held, and the copy ends as a fresh load.
func TestWroteConcurrent(t *testing.T) {
	ctx := context.Background()
	st, _ := newStore(t)
	const users = 8
	for i := range users {
		add(t, st, store.User{Name: fmt.Sprintf("u%d", i)}, nil)
	}
	src := load(t, st)
	var wg sync.WaitGroup
	for i := range users {
		wg.Add(1)
		go func() {
			defer wg.Done()
			name := fmt.Sprintf("u%d", i)
			for n := range 30 {
				body := fmt.Sprintf("plan %d of %s", n, name)
				c, err := st.PutText(ctx, name, store.KindPlan, body)
				if err != nil {
					t.Error(err)
					return
				}
				if err := src.Wrote(ctx, c); err != nil {
					t.Errorf("Wrote: %v", err)
					return
				}
				if e, _ := src.Entry(name); e.Version < c.Version {
					t.Errorf("%s after Wrote has version %d, want at least %d", name, e.Version, c.Version)
				}
			}
		}()
	}
	wg.Wait()
	sameEntries(t, src, st)
}

// A source that has loaded nothing yet reads the whole directory rather
// than hold the one change it is told of.
func TestWroteBeforeLoad(t *testing.T) {
	ctx := context.Background()
	st, _ := newStore(t)
	add(t, st, store.User{Name: "alice"}, map[store.Kind]string{store.KindPlan: "first"})
	add(t, st, store.User{Name: "bob"}, nil)
	src := &hosted.Source{Store: st, Logger: fingertest.Logger(t)}
	c, err := st.PutText(ctx, "bob", store.KindPlan, "bob's")
	if err != nil {
		t.Fatal(err)
	}
	if err := src.Wrote(ctx, c); err != nil {
		t.Fatalf("Wrote before Load: %v", err)
	}
	if src.Len() != 2 {
		t.Errorf("Len() after Wrote before Load = %d, want 2", src.Len())
	}
	sameEntries(t, src, st)
}
