package web_test

import (
	"context"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/openfinger/finger"
	"github.com/openfinger/finger/internal/fingertest"
	"github.com/openfinger/finger/internal/store"
	_ "github.com/openfinger/finger/internal/store/sqlite"
	"github.com/openfinger/finger/internal/userinfo"
	"github.com/openfinger/finger/internal/userinfo/hosted"
	"github.com/openfinger/finger/internal/userinfo/virtual"
	"github.com/openfinger/finger/internal/web"
)

// site is a web server over a SQLite store, with the Responder that
// answers finger queries beside it.
type site struct {
	st     store.Store
	src    *hosted.Source
	rs     *userinfo.Responder
	srv    *web.Server
	ts     *httptest.Server
	tokens map[string]string
}

func newSite(t testing.TB, dir string) *site {
	t.Helper()
	ctx := context.Background()
	if dir == "" {
		dir = t.TempDir()
	}
	st, err := store.Open(ctx, "sqlite:"+filepath.Join(dir, "fingerd.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if _, err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	s := &site{st: st, tokens: map[string]string{}}
	s.src = &hosted.Source{Store: st, Logger: fingertest.Logger(t)}
	if err := s.src.Load(ctx); err != nil {
		t.Fatal(err)
	}
	system := virtual.New(virtual.User{Account: userinfo.Account{Login: "carol", UID: 1001, Name: "Carol System", Home: "/home/carol"}})
	ov := &hosted.Overlay{System: system, SystemFiles: system, Hosted: s.src}
	s.rs = &userinfo.Responder{Accounts: ov, Files: ov, Directory: ov, Policy: userinfo.DefaultPolicy(), Location: time.UTC}
	s.srv = &web.Server{
		Store: st, Hosted: s.src, System: system, MaxTextBytes: 1000,
		Finger: func() finger.Handler { return s.rs },
		Logger: fingertest.Logger(t),
	}
	s.ts = httptest.NewServer(s.srv.Handler())
	t.Cleanup(s.ts.Close)
	return s
}

func (s *site) add(t testing.TB, u store.User) {
	t.Helper()
	tok, h := store.NewToken()
	if err := s.st.CreateUser(context.Background(), u, h); err != nil {
		t.Fatal(err)
	}
	s.tokens[u.Name] = tok
	if err := s.src.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
}

type resp struct {
	code int
	body string
	h    http.Header
}

func (s *site) do(t *testing.T, method, path, body string, hdr ...string) resp {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, s.ts.URL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return resp{res.StatusCode, string(b), res.Header}
}

func basic(name, token string) []string {
	req, _ := http.NewRequest("GET", "/", nil)
	req.SetBasicAuth(name, token)
	return []string{"Authorization", req.Header.Get("Authorization")}
}

func (s *site) finger(t *testing.T, q string) string {
	t.Helper()
	return string(fingertest.Exchange(t, s.rs, []byte(q+"\r\n")))
}

func TestPublish(t *testing.T) {
	s := newSite(t, "")
	s.add(t, store.User{Name: "alice", RealName: "Alice Liddell", Listed: true})
	s.add(t, store.User{Name: "bob"})
	tok := s.tokens["alice"]

	if r := s.do(t, "PUT", "/~alice/plan", "Down the rabbit hole.\n", basic("alice", tok)...); r.code != 204 || r.body != "" {
		t.Fatalf("PUT with Basic = %d %q, want 204 and no body", r.code, r.body)
	}
	// In the finger answer at once (the server waits for its copy).
	if got := s.finger(t, "alice"); !strings.Contains(got, "Plan:\r\nDown the rabbit hole.\r\n") || !strings.Contains(got, "Plan last changed") {
		t.Errorf("finger alice after PUT = %q", got)
	}
	if r := s.do(t, "GET", "/~alice/plan", ""); r.code != 200 || r.body != "Down the rabbit hole.\n" || !strings.HasPrefix(r.h.Get("Content-Type"), "text/plain") {
		t.Errorf("GET /~alice/plan = %d %q %q", r.code, r.body, r.h.Get("Content-Type"))
	}
	if r := s.do(t, "PUT", "/~alice/project", "tea", "Authorization", "Bearer "+tok); r.code != 204 {
		t.Errorf("PUT with Bearer = %d %q, want 204", r.code, r.body)
	}
	if got := s.finger(t, "alice"); !strings.Contains(got, "Project:\r\ntea\r\n") {
		t.Errorf("finger alice after PUT project = %q", got)
	}
	if r := s.do(t, "DELETE", "/~alice/project", "", basic("alice", tok)...); r.code != 204 {
		t.Errorf("DELETE project = %d %q, want 204", r.code, r.body)
	}
	if r := s.do(t, "DELETE", "/~alice/project", "", basic("alice", tok)...); r.code != 404 {
		t.Errorf("DELETE project again = %d %q, want 404", r.code, r.body)
	}
	if r := s.do(t, "GET", "/~alice/project", ""); r.code != 404 {
		t.Errorf("GET deleted project = %d, want 404", r.code)
	}
	// An empty plan is a plan.
	if r := s.do(t, "PUT", "/~bob/plan", "", basic("bob", s.tokens["bob"])...); r.code != 204 {
		t.Errorf("PUT empty plan = %d %q", r.code, r.body)
	}
	if got := s.finger(t, "bob"); !strings.Contains(got, "Plan:\r\n") || strings.Contains(got, "No Plan.") {
		t.Errorf("finger bob with an empty plan = %q", got)
	}
}

func TestPublishRefused(t *testing.T) {
	s := newSite(t, "")
	s.add(t, store.User{Name: "alice"})
	s.add(t, store.User{Name: "bob"})
	s.add(t, store.User{Name: "carol"}) // a system account has the name
	tok := s.tokens["alice"]
	tests := []struct {
		name   string
		method string
		path   string
		body   string
		hdr    []string
		code   int
	}{
		{"no credentials", "PUT", "/~alice/plan", "x", nil, 401},
		{"wrong token", "PUT", "/~alice/plan", "x", basic("alice", "wrong"), 401},
		{"wrong bearer", "PUT", "/~alice/plan", "x", []string{"Authorization", "Bearer nope"}, 401},
		{"another user's token", "PUT", "/~alice/plan", "x", basic("bob", s.tokens["bob"]), 403},
		{"bob's token as bearer for alice", "PUT", "/~alice/plan", "x", []string{"Authorization", "Bearer " + s.tokens["bob"]}, 401},
		{"unknown user", "PUT", "/~nobody/plan", "x", basic("nobody", tok), 404},
		{"system account", "PUT", "/~carol/plan", "x", basic("carol", s.tokens["carol"]), 403},
		{"unknown kind", "PUT", "/~alice/forward", "x", basic("alice", tok), 404},
		{"upper case", "PUT", "/~Alice/plan", "x", basic("Alice", tok), 404},
		{"traversal", "PUT", "/~..%2f..%2fetc/plan", "x", basic("alice", tok), 404},
		{"no tilde", "PUT", "/alice/plan", "x", basic("alice", tok), 404},
		{"at the cap plus one", "PUT", "/~alice/plan", strings.Repeat("x", 1001), basic("alice", tok), 413},
		{"not UTF-8", "PUT", "/~alice/plan", "\xff\xfe", basic("alice", tok), 400},
		{"NUL", "PUT", "/~alice/plan", "a\x00b", basic("alice", tok), 400},
	}
	for _, tt := range tests {
		r := s.do(t, tt.method, tt.path, tt.body, tt.hdr...)
		if r.code != tt.code {
			t.Errorf("%s: %s %s = %d %q, want %d", tt.name, tt.method, tt.path, r.code, r.body, tt.code)
		}
		if strings.Count(r.body, "\n") != 1 || !strings.HasSuffix(r.body, "\n") {
			t.Errorf("%s: body %q, want one line", tt.name, r.body)
		}
		if tt.code == 401 && r.h.Get("WWW-Authenticate") == "" {
			t.Errorf("%s: 401 without WWW-Authenticate", tt.name)
		}
	}
	// Nothing refused was published.
	if r := s.do(t, "GET", "/~alice/plan", ""); r.code != 404 {
		t.Errorf("GET /~alice/plan after the refused PUTs = %d %q, want 404 (no plan)", r.code, r.body)
	}
	if r := s.do(t, "PUT", "/~alice/plan", strings.Repeat("x", 1000), basic("alice", tok)...); r.code != 204 {
		t.Errorf("PUT of exactly the cap = %d %q, want 204", r.code, r.body)
	}
	if r := s.do(t, "GET", "/~alice/plan", ""); r.code != 200 || r.body != strings.Repeat("x", 1000) {
		t.Errorf("GET after the PUT of exactly the cap = %d, %d bytes; want 200 and the 1000 published", r.code, len(r.body))
	}
}

// A body larger than the cap is refused without being read, also when it
// announces no length.
func TestPublishTooLargeUnannounced(t *testing.T) {
	s := newSite(t, "")
	s.add(t, store.User{Name: "alice"})
	pr, pw := io.Pipe()
	go func() {
		// Far more than the cap; the server stops reading at the cap.
		chunk := strings.Repeat("x", 4096)
		for range 1000 {
			if _, err := io.WriteString(pw, chunk); err != nil {
				return
			}
		}
		pw.Close()
	}()
	req, _ := http.NewRequest("PUT", s.ts.URL+"/~alice/plan", pr)
	req.SetBasicAuth("alice", s.tokens["alice"])
	res, err := http.DefaultClient.Do(req)
	pr.CloseWithError(io.ErrClosedPipe)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 413 {
		t.Errorf("chunked PUT over the cap = %d, want 413", res.StatusCode)
	}
}

func TestAuthRateLimit(t *testing.T) {
	s := newSite(t, "")
	s.add(t, store.User{Name: "alice"})
	s.add(t, store.User{Name: "bob"})
	s.srv.Auth.Burst = 3
	s.srv.Auth.Interval = time.Hour
	for i := range 3 {
		if r := s.do(t, "PUT", "/~alice/plan", "x", basic("alice", fmt.Sprint("guess", i))...); r.code != 401 {
			t.Fatalf("guess %d = %d, want 401", i, r.code)
		}
	}
	// The right token is no longer even checked.
	if r := s.do(t, "PUT", "/~alice/plan", "x", basic("alice", s.tokens["alice"])...); r.code != 429 {
		t.Errorf("after 3 failures, the right token = %d %q, want 429", r.code, r.body)
	}
	// The address is limited for other names too.
	if r := s.do(t, "PUT", "/~bob/plan", "x", basic("bob", s.tokens["bob"])...); r.code != 429 {
		t.Errorf("after 3 failures from this address, bob = %d, want 429", r.code)
	}
}

func TestAuthLimiterPerName(t *testing.T) {
	var a web.AuthLimiter
	a.Burst, a.Interval = 2, time.Minute
	now := time.Now()
	ip := func(s string) netipAddr { return mustAddr(s) }
	for i := range 2 {
		a.Failed(ip(fmt.Sprintf("192.0.2.%d", i+1)), "alice", now)
	}
	if a.Allowed(ip("192.0.2.99"), "alice", now) {
		t.Errorf("alice allowed from a fresh address after 2 failures from others; want the name limited")
	}
	if !a.Allowed(ip("192.0.2.99"), "bob", now) {
		t.Errorf("bob from a fresh address refused")
	}
	if !a.Allowed(ip("192.0.2.99"), "alice", now.Add(time.Minute+time.Second)) {
		t.Errorf("alice still refused after the interval")
	}
	// An IPv6 /64 is one client.
	a.Failed(ip("2001:db8::1"), "x1", now)
	a.Failed(ip("2001:db8::2"), "x2", now)
	if a.Allowed(ip("2001:db8::3"), "x3", now) {
		t.Errorf("a third address of the same /64 allowed after 2 failures of the /64")
	}
}

func TestReadPages(t *testing.T) {
	s := newSite(t, "")
	s.add(t, store.User{Name: "alice", RealName: "Alice <b>Liddell</b>", Listed: true})
	s.add(t, store.User{Name: "bob", RealName: "Bob Unlisted"})
	s.add(t, store.User{Name: "hid", RealName: "Hidden", Listed: true, Hidden: true})
	hostile := "<script>alert(1)</script>\n\u202eevil\u202c & \x1b[31mred\n"
	for _, name := range []string{"alice", "bob", "hid"} {
		if r := s.do(t, "PUT", "/~"+name+"/plan", hostile, basic(name, s.tokens[name])...); r.code != 204 {
			t.Fatalf("PUT %s = %d %q", name, r.code, r.body)
		}
	}
	page := s.do(t, "GET", "/~alice", "")
	if page.code != 200 || !strings.HasPrefix(page.h.Get("Content-Type"), "text/html") {
		t.Fatalf("GET /~alice = %d %q", page.code, page.h.Get("Content-Type"))
	}
	if strings.Contains(page.body, "<script") || strings.Contains(page.body, "<b>") || strings.Contains(page.body, "\x1b") {
		t.Errorf("GET /~alice lets markup or ESC through:\n%s", page.body)
	}
	for _, want := range []string{"&lt;script&gt;alert(1)&lt;/script&gt;", "Login: alice", "Alice &lt;b&gt;Liddell&lt;/b&gt;", `\u202e`} {
		if !strings.Contains(page.body, want) {
			t.Errorf("GET /~alice lacks %q:\n%s", want, page.body)
		}
	}
	csp := page.h.Get("Content-Security-Policy")
	if !strings.Contains(csp, "default-src 'none'") || strings.Contains(csp, "script-src") {
		t.Errorf("Content-Security-Policy = %q", csp)
	}
	raw := s.do(t, "GET", "/~alice/plan", "")
	if strings.Contains(raw.body, "\x1b") || !strings.Contains(raw.body, "<script>") || !strings.Contains(raw.h.Get("Content-Security-Policy"), "sandbox") {
		t.Errorf("GET /~alice/plan = %q (CSP %q): want the text, filtered for terminals, sandboxed", raw.body, raw.h.Get("Content-Security-Policy"))
	}
	for _, path := range []string{"/~hid", "/~hid/plan", "/~hid/feed", "/~carol", "/~nobody", "/~Alice", "/~a%2fb"} {
		if r := s.do(t, "GET", path, ""); r.code != 404 {
			t.Errorf("GET %s = %d, want 404", path, r.code)
		}
	}
	dir := s.do(t, "GET", "/", "")
	if dir.code != 200 || !strings.Contains(dir.body, `href="/~alice"`) || strings.Contains(dir.body, "~bob") || strings.Contains(dir.body, "~hid") {
		t.Errorf("GET / = %d, want alice listed, not bob or hid:\n%s", dir.code, dir.body)
	}
	for _, path := range []string{"/~alice/feed", "/feed"} {
		r := s.do(t, "GET", path, "")
		var feed struct {
			Entries []struct {
				Title   string `xml:"title"`
				Content string `xml:"content"`
			} `xml:"entry"`
		}
		if err := xml.Unmarshal([]byte(r.body), &feed); err != nil || r.code != 200 {
			t.Errorf("GET %s = %d, not Atom: %v\n%s", path, r.code, err, r.body)
			continue
		}
		if len(feed.Entries) != 1 || !strings.Contains(feed.Entries[0].Content, "<script>") || strings.Contains(feed.Entries[0].Content, "\x1b") {
			t.Errorf("GET %s entries = %+v, want alice's one change as text", path, feed.Entries)
		}
	}
}

func TestEditForm(t *testing.T) {
	s := newSite(t, "")
	s.add(t, store.User{Name: "alice"})
	page := s.do(t, "GET", "/edit?name=alice", "")
	if page.code != 200 || !strings.Contains(page.body, `type="password"`) || !strings.Contains(page.body, `autocomplete="off"`) || page.h.Get("Set-Cookie") != "" {
		t.Errorf("GET /edit = %d:\n%s", page.code, page.body)
	}
	post := func(token, action, text string) resp {
		form := url.Values{"name": {"alice"}, "token": {token}, "kind": {"plan"}, "text": {text}, "action": {action}}
		return s.do(t, "POST", "/edit", form.Encode(), "Content-Type", "application/x-www-form-urlencoded")
	}
	if r := post("wrong", "publish", "x"); r.code != 401 || !strings.Contains(r.body, "wrong token") {
		t.Errorf("POST /edit with a wrong token = %d:\n%s", r.code, r.body)
	}
	r := post(s.tokens["alice"], "publish", "from the form\n")
	if r.code != 200 || !strings.Contains(r.body, "Published.") || r.h.Get("Set-Cookie") != "" {
		t.Errorf("POST /edit = %d:\n%s", r.code, r.body)
	}
	if strings.Contains(r.body, s.tokens["alice"]) {
		t.Errorf("the answer to POST /edit holds the token")
	}
	if got := s.finger(t, "alice"); !strings.Contains(got, "from the form") {
		t.Errorf("finger alice after the form = %q", got)
	}
	if r := post(s.tokens["alice"], "delete", ""); r.code != 200 || !strings.Contains(r.body, "Deleted.") {
		t.Errorf("POST /edit delete = %d:\n%s", r.code, r.body)
	}
}

func TestNoFinger(t *testing.T) {
	s := newSite(t, "")
	s.add(t, store.User{Name: "alice", Listed: true})
	tok := s.tokens["alice"]
	if r := s.do(t, "PUT", "/~alice/plan", "visible", basic("alice", tok)...); r.code != 204 {
		t.Fatalf("PUT plan = %d %q", r.code, r.body)
	}
	if got := s.finger(t, "alice"); !strings.Contains(got, "visible") {
		t.Fatalf("finger alice before hiding = %q, want her plan", got)
	}
	none := s.finger(t, "nosuchuser")
	if r := s.do(t, "PUT", "/~alice/nofinger", "", basic("alice", tok)...); r.code != 204 {
		t.Fatalf("PUT nofinger = %d %q", r.code, r.body)
	}
	if got := s.finger(t, "alice"); got != strings.ReplaceAll(none, "nosuchuser", "alice") {
		t.Errorf("finger alice hidden = %q, want the unknown-user answer", got)
	}
	if r := s.do(t, "GET", "/~alice", ""); r.code != 404 {
		t.Errorf("GET /~alice hidden = %d, want 404", r.code)
	}
	// Still hers to publish while hidden.
	if r := s.do(t, "PUT", "/~alice/plan", "hidden plan", basic("alice", tok)...); r.code != 204 {
		t.Errorf("PUT while hidden = %d", r.code)
	}
	if r := s.do(t, "DELETE", "/~alice/nofinger", "", basic("alice", tok)...); r.code != 204 {
		t.Fatalf("DELETE nofinger = %d %q", r.code, r.body)
	}
	if got := s.finger(t, "alice"); !strings.Contains(got, "hidden plan") {
		t.Errorf("finger alice shown again = %q", got)
	}
}

func TestClearTextRisk(t *testing.T) {
	tests := []struct {
		addr string
		tls  bool
		want bool
	}{
		{"127.0.0.1:8079", false, false},
		{"[::1]:8079", false, false},
		{"localhost:8079", false, false},
		{"127.0.0.1:8079", true, false},
		{":8079", false, true},
		{"0.0.0.0:8079", false, true},
		{"192.0.2.1:80", false, true},
		{"192.0.2.1:443", true, false},
		{"example.org:80", false, true},
	}
	for _, tt := range tests {
		if got := web.ClearTextRisk(tt.addr, tt.tls); got != tt.want {
			t.Errorf("ClearTextRisk(%q, %v) = %v, want %v", tt.addr, tt.tls, got, tt.want)
		}
	}
}

type netipAddr = netip.Addr

func mustAddr(s string) netip.Addr { return netip.MustParseAddr(s) }

// stalledStore is a store whose token and history reads and publishing
// writes do not answer before their context ends, as a database that
// stopped answering.
type stalledStore struct{ store.Store }

func (stalledStore) PutTextWithToken(ctx context.Context, name string, _ []byte, k store.Kind, _ string) (store.Change, error) {
	<-ctx.Done()
	return store.Change{}, fmt.Errorf("stalled: %s of %s: %w", k, name, ctx.Err())
}

func (stalledStore) TokenHash(ctx context.Context, name string) ([]byte, error) {
	<-ctx.Done()
	return nil, fmt.Errorf("stalled: token of %s: %w", name, ctx.Err())
}

func (stalledStore) History(ctx context.Context, name string, k store.Kind, limit int) ([]store.Change, error) {
	<-ctx.Done()
	return nil, fmt.Errorf("stalled: history of %s: %w", name, ctx.Err())
}

// A store that does not answer within StoreTimeout: 503 with a generic
// line and Retry-After, never the store's own error text.
func TestStoreNotAnswering(t *testing.T) {
	s := newSite(t, "")
	s.add(t, store.User{Name: "alice", Listed: true})
	s.srv.Store, s.srv.StoreTimeout = stalledStore{s.st}, 50*time.Millisecond
	tests := []struct {
		method, path string
		hdr          []string
		want         string
	}{
		{"PUT", "/~alice/plan", basic("alice", s.tokens["alice"]), "publishing is unavailable; try again later\n"},
		{"GET", "/~alice/feed", nil, "the feed is unavailable; try again later\n"},
	}
	for _, tt := range tests {
		r := s.do(t, tt.method, tt.path, "x", tt.hdr...)
		if r.code != 503 || r.body != tt.want || r.h.Get("Retry-After") == "" {
			t.Errorf("%s %s with a store not answering = %d %q (Retry-After %q), want 503 %q with Retry-After",
				tt.method, tt.path, r.code, r.body, r.h.Get("Retry-After"), tt.want)
		}
	}
}

// tokenReads counts the store's TokenHash calls.
type tokenReads struct {
	store.Store
	mu sync.Mutex
	n  int
}

func (c *tokenReads) TokenHash(ctx context.Context, name string) ([]byte, error) {
	c.mu.Lock()
	c.n++
	c.mu.Unlock()
	return c.Store.TokenHash(ctx, name)
}

func (c *tokenReads) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n
}

// authCounts records the metrics of refused credentials.
type authCounts struct {
	mu     sync.Mutex
	failed map[string]int
}

func (m *authCounts) Published(kind, op string, status int)   {}
func (m *authCounts) StoreLatency(op string, d time.Duration) {}
func (m *authCounts) AuthFailed(reason string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.failed == nil {
		m.failed = map[string]int{}
	}
	m.failed[reason]++
}

func (m *authCounts) get(reason string) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.failed[reason]
}

// A token whose hash the daemon's copy holds is taken without reading the
// store's hash, but never after it was replaced or its user removed, even
// by another process and before the copy has seen the change.
func TestHeldTokenReplacedElsewhere(t *testing.T) {
	dir := t.TempDir()
	s := newSite(t, dir)
	reads := &tokenReads{Store: s.st}
	metrics := &authCounts{}
	s.srv.Store, s.srv.Metrics = reads, metrics
	s.add(t, store.User{Name: "alice"})
	s.add(t, store.User{Name: "bob"})
	old := s.tokens["alice"]

	for i, plan := range []string{"one", "two"} {
		if r := s.do(t, "PUT", "/~alice/plan", plan, basic("alice", old)...); r.code != 204 {
			t.Fatalf("PUT %d with alice's token = %d %q, want 204", i, r.code, r.body)
		}
	}
	if n := reads.count(); n != 0 {
		t.Errorf("two publishes with the token the copy holds read its hash %d times, want 0", n)
	}
	if r := s.do(t, "PUT", "/~bob/plan", "bob's", basic("bob", s.tokens["bob"])...); r.code != 204 {
		t.Fatalf("PUT with bob's token = %d %q, want 204", r.code, r.body)
	}

	// `fingerd user token alice` and `fingerd user del bob`, in another
	// process.
	other, err := store.Open(context.Background(), "sqlite:"+filepath.Join(dir, "fingerd.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	tok, h := store.NewToken()
	if err := other.SetToken(context.Background(), "alice", h); err != nil {
		t.Fatal(err)
	}
	if err := other.DeleteUser(context.Background(), "bob"); err != nil {
		t.Fatal(err)
	}

	r := s.do(t, "PUT", "/~alice/plan", "with the replaced token", basic("alice", old)...)
	if r.code != 401 || r.h.Get("WWW-Authenticate") == "" {
		t.Errorf("PUT with alice's replaced token = %d %q (WWW-Authenticate %q), want 401 with a challenge", r.code, r.body, r.h.Get("WWW-Authenticate"))
	}
	if got := metrics.get("bad"); got != 1 {
		t.Errorf("auth failures counted after the replaced token = %d, want 1", got)
	}
	if p, _ := s.st.History(context.Background(), "alice", store.KindPlan, 1); len(p) != 1 || p[0].Body != "two" {
		t.Errorf("alice's plan after the refused publish = %+v, want %q", p, "two")
	}
	// Refused again: the copy has not seen the new token yet.
	if r := s.do(t, "PUT", "/~alice/plan", "again", basic("alice", old)...); r.code != 401 {
		t.Errorf("PUT with alice's replaced token again = %d %q, want 401", r.code, r.body)
	}
	if r := s.do(t, "PUT", "/~alice/plan", "three", basic("alice", tok)...); r.code != 204 {
		t.Errorf("PUT with alice's new token = %d %q, want 204", r.code, r.body)
	}
	if r := s.do(t, "PUT", "/~bob/plan", "after removal", basic("bob", s.tokens["bob"])...); r.code != 404 {
		t.Errorf("PUT for bob, removed = %d %q, want 404", r.code, r.body)
	}
	if _, err := s.st.User(context.Background(), "bob"); err == nil {
		t.Errorf("bob exists again after a publish with his old token")
	}
	if got := metrics.get("bad"); got != 3 {
		t.Errorf("auth failures counted in all = %d, want 3", got)
	}
}
