package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/openfinger/finger/internal/store"
	"github.com/openfinger/finger/internal/store/postgres/pgtest"
)

// healthz returns the daemon's /healthz status and body.
func healthz(t *testing.T, addr string) (int, string) {
	t.Helper()
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Get("http://" + addr + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// waitAnswer waits until the finger answer to line at addr contains want.
func waitAnswer(t *testing.T, addr, line, want string) time.Duration {
	t.Helper()
	start := time.Now()
	var got string
	for time.Since(start) < 10*time.Second {
		got = query(t, addr, "", line+"\r\n")
		if strings.Contains(got, want) {
			return time.Since(start)
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("finger %s at %s: no %q within 10 s; last answer:\n%s", line, addr, want, got)
	return 0
}

// Two fingerd processes on one PostgreSQL store, as replicas: a user
// added and a plan published through one are answered by the other; with
// the database stopped both go on answering from what they hold and say
// so in /metrics and /healthz; when it returns they catch up by themselves.
func TestReplicasOnPostgres(t *testing.T) {
	url := pgtest.NewDatabase(t)
	start := func() *daemonProc {
		// rate = 0: the test asks the replicas as often as it likes, from
		// one address.
		f := newFixture(t, fmt.Sprintf("rate = 0\n[store]\nurl = %q\npoll_interval = \"250ms\"\n", url))
		return startDaemon(t, "-config", f.config, "-metrics", "127.0.0.1:0")
	}
	a, b := start(), start()
	f := newFixture(t, fmt.Sprintf("[store]\nurl = %q\n", url))
	out, errOut, code := runFingerd(t, nil, "user", "add", "-config", f.config, "-name", "Alice Replica", "alice")
	if code != 0 {
		t.Fatalf("fingerd user add: exit %d: %s", code, errOut)
	}
	token := strings.TrimSpace(out)
	for _, p := range []*daemonProc{a, b} {
		waitAnswer(t, p.addrs[0], "alice", "Alice Replica")
	}

	// A publish as the web listener of replica a would do it.
	ctx := context.Background()
	st, err := store.Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if h, err := st.TokenHash(ctx, "alice"); err != nil || !store.TokenMatches(h, token) {
		t.Fatalf("fingerd user add printed %q: not the token the store holds (%v)", out, err)
	}
	if _, err := st.PutText(ctx, "alice", store.KindPlan, "first plan"); err != nil {
		t.Fatal(err)
	}
	d := waitAnswer(t, b.addrs[0], "alice", "first plan")
	t.Logf("a plan written to the store was in replica b's answer after %v", d)
	waitAnswer(t, a.addrs[0], "alice", "first plan")
	for _, want := range []string{"fingerd_store_up 1", "fingerd_store_watch_up 1"} {
		waitMetric(t, b.mAddr, want)
	}
	if code, body := healthz(t, b.mAddr); code != 200 || !strings.Contains(body, "store: ok") {
		t.Errorf("/healthz = %d %q, want 200 and the store ok", code, body)
	}

	srv := pgtest.Start(t)
	if err := srv.Stop(); err != nil {
		t.Fatal(err)
	}
	resumed := false
	defer func() {
		if !resumed {
			srv.Resume()
		}
	}()
	for _, p := range []*daemonProc{a, b} {
		waitMetric(t, p.mAddr, "fingerd_store_up 0")
		waitMetric(t, p.mAddr, "fingerd_store_watch_up 0")
		if got := query(t, p.addrs[0], "", "alice\r\n"); !strings.Contains(got, "first plan") {
			t.Errorf("with the database stopped, finger alice = %q, want the plan held", got)
		}
		code, body := healthz(t, p.mAddr)
		if code != 200 || !strings.Contains(body, "store: unavailable") || !strings.Contains(body, "answering from what is held") {
			t.Errorf("/healthz with the database stopped = %d %q, want 200 and the store unavailable", code, body)
		}
	}
	if err := srv.Resume(); err != nil {
		t.Fatal(err)
	}
	resumed = true
	for _, p := range []*daemonProc{a, b} {
		waitMetric(t, p.mAddr, "fingerd_store_up 1")
		waitMetric(t, p.mAddr, "fingerd_store_watch_up 1")
	}
	// The store handle here also lost its connections: retry until it
	// writes again.
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, err := st.PutText(ctx, "alice", store.KindPlan, "second plan")
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("PutText after the database came back: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	for _, p := range []*daemonProc{a, b} {
		waitAnswer(t, p.addrs[0], "alice", "second plan")
	}
}
