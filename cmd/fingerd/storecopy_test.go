package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/openfinger/finger/internal/store"
	"github.com/openfinger/finger/internal/store/postgres/pgtest"
)

// fingerd store copy moves hosted users from one machine's SQLite file to a
// PostgreSQL database: their tokens go on working, their texts and
// history come along, and a second copy refuses to merge.
func TestStoreCopy(t *testing.T) {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "fingerd-copy-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	os.Chmod(dir, 0o777) // the command runs as the serving user
	src := "sqlite:" + filepath.Join(dir, "fingerd.db")
	from, err := store.Open(ctx, src)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := from.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	created := time.Date(2024, 5, 6, 7, 8, 9, 123456000, time.UTC)
	aliceToken, aliceHash := store.NewToken()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(from.CreateUser(ctx, store.User{Name: "alice", RealName: "Alice Liddell", Listed: true, Created: created}, aliceHash))
	_, bobHash := store.NewToken()
	must(from.CreateUser(ctx, store.User{Name: "bob", Hidden: true}, bobHash))
	for i := range 3 {
		_, err := from.PutText(ctx, "alice", store.KindPlan, fmt.Sprintf("plan %d", i))
		must(err)
	}
	_, err = from.PutText(ctx, "alice", store.KindProject, "a project")
	must(err)
	_, err = from.DeleteText(ctx, "alice", store.KindProject)
	must(err)
	_, err = from.PutText(ctx, "bob", store.KindPGPKey, "bob's key")
	must(err)
	must(from.Close())
	for _, p := range []string{"", "-wal", "-shm"} {
		os.Chmod(filepath.Join(dir, "fingerd.db"+p), 0o666)
	}

	url := pgtest.NewDatabase(t)
	f := newFixture(t, fmt.Sprintf("[store]\nurl = %q\n", url))
	out, errOut, code := runFingerd(t, nil, "store", "copy", src, "-config", f.config)
	if code != 0 {
		t.Fatalf("fingerd store copy: exit %d: %s", code, errOut)
	}
	if want := "copied 2 hosted users and 2 texts\n"; out != want {
		t.Errorf("fingerd store copy printed %q, want %q", out, want)
	}

	to, err := store.Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer to.Close()
	alice, err := to.User(ctx, "alice")
	if err != nil || alice.RealName != "Alice Liddell" || !alice.Listed || alice.Hidden || !alice.Created.Equal(created) {
		t.Errorf("copied alice = %+v, %v; want the real name, listed, created %v", alice, err, created)
	}
	if bob, err := to.User(ctx, "bob"); err != nil || !bob.Hidden {
		t.Errorf("copied bob = %+v, %v; want hidden", bob, err)
	}
	if h, err := to.TokenHash(ctx, "alice"); err != nil || !store.TokenMatches(h, aliceToken) {
		t.Errorf("alice's token does not match after the copy (%v)", err)
	}
	snap, err := to.Snapshot(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	texts := map[string]string{}
	for _, e := range snap.Users {
		for k, tx := range e.Texts {
			texts[e.Name+" "+string(k)] = tx.Body
		}
	}
	want := map[string]string{"alice plan": "plan 2", "bob pgpkey": "bob's key"}
	if fmt.Sprint(texts) != fmt.Sprint(want) {
		t.Errorf("copied texts = %v, want %v", texts, want)
	}
	hist, err := to.History(ctx, "alice", store.KindPlan, 10)
	if err != nil {
		t.Fatal(err)
	}
	var bodies []string
	for _, c := range hist {
		bodies = append(bodies, c.Body)
	}
	if !slices.Equal(bodies, []string{"plan 2", "plan 1", "plan 0"}) {
		t.Errorf("copied history of alice's plan = %q, want the three plans, newest first", bodies)
	}
	if hist, _ := to.History(ctx, "alice", store.KindProject, 10); len(hist) != 2 || !hist[0].Deleted {
		t.Errorf("copied history of alice's project = %+v, want the text and its deletion", hist)
	}

	_, errOut, code = runFingerd(t, nil, "store", "copy", src, "-config", f.config)
	if code == 0 || !strings.Contains(errOut, "already has alice, bob") {
		t.Errorf("a second fingerd store copy: exit %d, %q; want a refusal naming alice and bob", code, errOut)
	}
	_, errOut, code = runFingerd(t, nil, "store", "copy", "sqlite:"+filepath.Join(dir, "missing.db"), "-config", f.config)
	if code == 0 {
		t.Errorf("fingerd store copy from a missing file: exit 0, want an error")
	}
	if _, err := os.Stat(filepath.Join(dir, "missing.db")); err == nil {
		t.Errorf("fingerd store copy from a missing file created it")
	}
}
