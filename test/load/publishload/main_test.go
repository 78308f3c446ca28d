//go:build linux

package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// TestLoadRequests runs the sender against an HTTP server that checks each
// publish as fingerd's web server would read it, and answers some of them
// with an error status or by closing the connection: every publish must
// arrive whole and authenticated, every answer other than 204 must count
// as an error, and a closed connection must not stop the run.
func TestLoadRequests(t *testing.T) {
	var (
		mu     sync.Mutex
		seen   = map[string]int{}
		bad    []string
		closed int
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name, token, ok := r.BasicAuth()
		body, err := io.ReadAll(r.Body)
		mu.Lock()
		defer mu.Unlock()
		switch {
		case err != nil:
			bad = append(bad, "body: "+err.Error())
		case r.Method != http.MethodPut || r.URL.Path != "/~"+name+"/plan":
			bad = append(bad, r.Method+" "+r.URL.Path+" as "+name)
		case !ok || len(name) == 0 || token != Token(int(name[len(name)-1]-'0')):
			bad = append(bad, "credentials "+name+":"+token)
		case !bytes.HasPrefix(body, []byte("the plan\n")) || !bytes.Contains(body, []byte("\npublish ")):
			bad = append(bad, "body "+string(body))
		}
		seen[name]++
		switch {
		case name == Name(2):
			http.Error(w, "fingerd: hosted: not allowed", http.StatusForbidden)
		case name == Name(1) && seen[name]%5 == 0:
			closed++
			w.Header().Set("Connection", "close")
			w.WriteHeader(http.StatusNoContent)
		default:
			w.WriteHeader(http.StatusNoContent)
		}
	}))
	defer srv.Close()
	plan := filepath.Join(t.TempDir(), "plan")
	if err := os.WriteFile(plan, []byte("the plan\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	addr := strings.TrimPrefix(srv.URL, "http://")
	if err := run(context.Background(), []string{"-addr", addr, "-users", "3", "-rate", "300", "-d", "1s", "-c", "4", "-plan-file", plan}, &out); err != nil {
		t.Fatal(err)
	}
	t.Log(out.String())
	mu.Lock()
	defer mu.Unlock()
	if len(bad) > 0 {
		t.Errorf("%d publishes arrived wrong, e.g. %s", len(bad), bad[0])
	}
	// How many were sent in the second depends on the machine's load;
	// every kind of answer must have been met.
	if seen[Name(0)] == 0 || seen[Name(2)] == 0 || closed == 0 {
		t.Fatalf("the server saw publishes %v, %d answers closing the connection; want each user's and some closing ones", seen, closed)
	}
	want := []string{
		"publishes: " + strconv.Itoa(seen[Name(0)]+seen[Name(1)]) + " ok, " + strconv.Itoa(seen[Name(2)]) + " errors",
		"error status 403: " + strconv.Itoa(seen[Name(2)]) + ` (e.g. "fingerd: hosted: not allowed")`,
	}
	for _, w := range want {
		if !strings.Contains(out.String(), w) {
			t.Errorf("report lacks %q:\n%s", w, out.String())
		}
	}
}
