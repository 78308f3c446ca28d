package metrics

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/openfinger/finger"
)

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	c := &http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

// serve serves m on 127.0.0.1:0 until the test ends and returns its base
// URL.
func serve(t *testing.T, m *Metrics) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := m.Serve(l, func(err error) { t.Error(err) })
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		s.Shutdown(ctx)
	})
	return "http://" + l.Addr().String()
}

func TestServe(t *testing.T) {
	m := New()
	base := serve(t, m)

	m.Observe(finger.Record{Kind: "user", Outcome: finger.OutcomeOK, Bytes: 120, Duration: 3 * time.Millisecond})
	m.Observe(finger.Record{Kind: "list", Outcome: finger.OutcomeOK, Bytes: 80})
	m.Observe(finger.Record{Outcome: finger.OutcomeRefused, Bytes: 29})
	m.Observe(finger.Record{Outcome: finger.OutcomeBusy, Bytes: 30})
	m.Observe(finger.Record{Outcome: finger.OutcomeEvicted, Bytes: 21})
	m.Observe(finger.Record{Outcome: finger.OutcomeEvicted, Bytes: 21})
	m.ConnOpened()
	m.ConnOpened()
	m.ConnClosed()
	m.Reloaded(nil)
	m.NameServiceLimited()
	m.NameServiceLimited()

	code, body := get(t, base+"/healthz")
	if code != 200 || body != "ok\n" {
		t.Fatalf("GET /healthz = %d %q, want 200 \"ok\\n\"", code, body)
	}
	code, body = get(t, base+"/metrics")
	if code != 200 {
		t.Fatalf("GET /metrics = %d", code)
	}
	for _, want := range []string{
		`fingerd_queries_total{kind="user",outcome="ok"} 1`,
		`fingerd_queries_total{kind="list",outcome="ok"} 1`,
		`fingerd_queries_total{kind="",outcome="refused"} 1`,
		`fingerd_reply_bytes_total 301`,
		`fingerd_connections_open 1`,
		`fingerd_limits_hit_total{limit="rate"} 1`,
		`fingerd_limits_hit_total{limit="conns"} 1`,
		`fingerd_limits_hit_total{limit="evicted"} 2`,
		`fingerd_queries_total{kind="",outcome="evicted"} 2`,
		`fingerd_query_duration_seconds_count{kind="user"} 1`,
		`fingerd_config_reloads_total{result="ok"} 1`,
		`fingerd_name_service_limited_total 2`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	if strings.Contains(body, "healthz") {
		t.Errorf("/metrics counts /healthz")
	}
	if code, _ := get(t, base+"/"); code != 404 {
		t.Errorf("GET / = %d, want 404", code)
	}
}

func TestNilMetrics(t *testing.T) {
	var m *Metrics
	m.Observe(finger.Record{})
	m.ConnOpened()
	m.ConnClosed()
	m.Reloaded(nil)
	m.NameServiceLimited()
	var s *Server
	if err := s.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// The store link shows in /healthz and in the fingerd_store_* metrics: a
// replica answering from what it holds stays healthy and says how stale it
// is; one that never read the store is not healthy.
func TestStoreState(t *testing.T) {
	m := New()
	base := serve(t, m)
	now := time.Now()
	down := errors.New("store: unavailable: no answer from the database")
	tests := []struct {
		name    string
		state   StoreState
		code    int
		health  []string
		metrics []string
	}{
		{"never read", StoreState{Err: down, Announces: true, WatchErr: down}, 503,
			[]string{"unavailable\n", "store: never read: " + down.Error()},
			[]string{"fingerd_store_up 0", "fingerd_store_sync_age_seconds -1", "fingerd_store_watch_up 0"}},
		{"current", StoreState{Synced: now, Version: 42, Announces: true}, 200,
			[]string{"ok\n", "store: ok, synced 0.", "(version 42)", "store announcements: up"},
			[]string{"fingerd_store_up 1", "fingerd_store_version 42", "fingerd_store_watch_up 1"}},
		{"away for 12s", StoreState{Synced: now.Add(-12 * time.Second), Version: 42, Err: down, Announces: true, WatchErr: down}, 200,
			[]string{"ok\n", "store: unavailable: " + down.Error() + "; answering from what is held, synced 12.", "store announcements: down"},
			[]string{"fingerd_store_up 0", "fingerd_store_sync_age_seconds 12.", "fingerd_store_watch_up 0"}},
		{"no announcements", StoreState{Synced: now, Version: 7}, 200,
			[]string{"store: ok", "!announcements"},
			[]string{"fingerd_store_up 1", "fingerd_store_watch_up 0"}},
	}
	for _, tt := range tests {
		m.WatchStore(func() StoreState { return tt.state })
		code, body := get(t, base+"/healthz")
		if code != tt.code {
			t.Errorf("%s: GET /healthz = %d %q, want %d", tt.name, code, body, tt.code)
		}
		for _, want := range tt.health {
			if neg, ok := strings.CutPrefix(want, "!"); ok {
				if strings.Contains(body, neg) {
					t.Errorf("%s: GET /healthz = %q, want no %q", tt.name, body, neg)
				}
			} else if !strings.Contains(body, want) {
				t.Errorf("%s: GET /healthz = %q, want %q in it", tt.name, body, want)
			}
		}
		_, body = get(t, base+"/metrics")
		for _, want := range tt.metrics {
			if !strings.Contains(body, "\n"+want) {
				t.Errorf("%s: /metrics lacks %q", tt.name, want)
			}
		}
	}
}
