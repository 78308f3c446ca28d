// Package browser tests the hosted users' web pages in a real browser:
// Debian's chromium, headless, driven over the DevTools protocol with
// chromedp. The pages must render, the edit page must publish with a
// plain form (no script), and hostile plan text (HTML, scripts,
// bidirectional overrides) must stay text.
//
// Without chromium the tests are skipped, and fail under CI=true.
package browser

import (
	"context"
	"net/http/httptest"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/openfinger/finger"
	"github.com/openfinger/finger/internal/fingertest"
	"github.com/openfinger/finger/internal/store"
	_ "github.com/openfinger/finger/internal/store/sqlite"
	"github.com/openfinger/finger/internal/testenv"
	"github.com/openfinger/finger/internal/userinfo"
	"github.com/openfinger/finger/internal/userinfo/hosted"
	"github.com/openfinger/finger/internal/web"
)

// hostile is a plan that would run script, inject markup or reorder text
// if a page treated it as anything but text.
const hostile = "<script>alert('plan')</script>\n" +
	"<img src=x onerror=\"alert('img')\">\n" +
	"</pre><b>bold</b>&amp;\n" +
	"abc\u202eevil\u202c def\n" +
	"\x1b[2Jcleared?\n"

type site struct {
	st    store.Store
	src   *hosted.Source
	rs    *userinfo.Responder
	url   string
	token string
}

func newSite(t *testing.T) *site {
	t.Helper()
	ctx := context.Background()
	st, err := store.Open(ctx, "sqlite:"+filepath.Join(t.TempDir(), "fingerd.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if _, err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	token, hash := store.NewToken()
	if err := st.CreateUser(ctx, store.User{Name: "alice", RealName: "Alice <i>Liddell</i>", Listed: true}, hash); err != nil {
		t.Fatal(err)
	}
	if _, err := st.PutText(ctx, "alice", store.KindPlan, hostile); err != nil {
		t.Fatal(err)
	}
	s := &site{st: st, token: token}
	s.src = &hosted.Source{Store: st, Logger: fingertest.Logger(t)}
	if err := s.src.Load(ctx); err != nil {
		t.Fatal(err)
	}
	s.rs = &userinfo.Responder{Accounts: s.src, Files: s.src, Directory: s.src, Policy: userinfo.DefaultPolicy(), Location: time.UTC}
	srv := &web.Server{Store: st, Hosted: s.src, Finger: func() finger.Handler { return s.rs }, Logger: fingertest.Logger(t)}
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(ts.Close)
	s.url = ts.URL
	return s
}

// browser starts a headless chromium and returns a context for chromedp
// actions, and a function reporting the JavaScript dialogs that opened
// (an alert means a script ran).
func browser(t *testing.T) (context.Context, func() []string) {
	t.Helper()
	path, err := exec.LookPath("chromium")
	testenv.Require(t, err == nil, "the browser chromium (Debian package chromium): %v", err)
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
	}
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelB := chromedp.NewContext(actx)
	ctx, cancelC := context.WithTimeout(ctx, 60*time.Second)
	t.Cleanup(func() { cancelC(); cancelB(); cancelA() })
	var mu sync.Mutex
	var dialogs []string
	if err := chromedp.Listen(ctx, func(ev any) {
		if d, ok := ev.(*page.EventJavascriptDialogOpening); ok {
			mu.Lock()
			dialogs = append(dialogs, d.Message)
			mu.Unlock()
			go chromedp.Call(ctx, page.HandleJavaScriptDialog, page.HandleJavaScriptDialogParams{Accept: true})
		}
	}); err != nil {
		t.Fatalf("starting chromium: %v", err)
	}
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("starting chromium: %v", err)
	}
	return ctx, func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), dialogs...)
	}
}

// run runs actions in the browser, failing the test on an error.
func run(t *testing.T, ctx context.Context, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	if err := chromedp.Do(ctx, steps...); err != nil {
		t.Fatalf("browser: %v", err)
	}
}

// get runs one action that returns a value.
func get[T any](t *testing.T, ctx context.Context, a chromedp.Action[T]) T {
	t.Helper()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		t.Fatalf("browser: %v", err)
	}
	return v
}

func TestPagesRender(t *testing.T) {
	s := newSite(t)
	ctx, dialogs := browser(t)

	run(t, ctx, chromedp.Navigate(s.url+"/"))
	dir := get(t, ctx, chromedp.Text(chromedp.CSS("main")))
	if !strings.Contains(dir, "alice") || !strings.Contains(dir, "Alice <i>Liddell</i>") {
		t.Errorf("directory shows %q, want alice with her real name as text", dir)
	}

	run(t, ctx, chromedp.Navigate(s.url+"/~alice"))
	answer := get(t, ctx, chromedp.Text(chromedp.CSS("pre.finger")))
	scripts := get(t, ctx, chromedp.Evaluate[int](`document.querySelectorAll("script").length`))
	images := get(t, ctx, chromedp.Evaluate[int](`document.querySelectorAll("img").length`))
	marks := get(t, ctx, chromedp.Evaluate[int](`document.querySelectorAll("b, i").length`))
	for _, want := range []string{
		"Login: alice",
		"<script>alert('plan')</script>",
		`<img src=x onerror="alert('img')">`,
		"</pre><b>bold</b>&amp;",
		`abc\u202eevil\u202c def`, // the bidi override shown escaped, as finger shows it
		"^[[2Jcleared?",
	} {
		if !strings.Contains(answer, want) {
			t.Errorf("the page's answer lacks %q:\n%s", want, answer)
		}
	}
	if strings.ContainsRune(answer, '\u202e') {
		t.Errorf("the page's answer holds a raw U+202E")
	}
	if scripts != 0 || images != 0 || marks != 0 {
		t.Errorf("the page has %d script, %d img and %d b/i elements; the plan became markup", scripts, images, marks)
	}

	run(t, ctx, chromedp.Navigate(s.url+"/~alice/plan"))
	raw := get(t, ctx, chromedp.Text(chromedp.CSS("body")))
	if !strings.Contains(raw, "<script>alert('plan')</script>") {
		t.Errorf("/~alice/plan shows %q, want the plan as text", raw)
	}
	if d := dialogs(); len(d) > 0 {
		t.Errorf("scripts ran: dialogs %q", d)
	}
}

func TestEditPagePublishes(t *testing.T) {
	s := newSite(t)
	ctx, dialogs := browser(t)
	newPlan := "Published from the browser.\n<em>still text</em>"

	publish := func(token, text string) string {
		t.Helper()
		run(t, ctx,
			chromedp.Navigate(s.url+"/edit?name=alice"),
			chromedp.WaitVisible(chromedp.CSS(`textarea[name="text"]`)),
			chromedp.SendKeys(chromedp.CSS(`input[name="token"]`), token),
			chromedp.SetValue(chromedp.CSS(`textarea[name="text"]`), text),
			chromedp.Click(chromedp.CSS(`button[value="publish"]`)),
			chromedp.WaitVisible(chromedp.CSS(`.message`)),
		)
		return get(t, ctx, chromedp.Text(chromedp.CSS(`.message`)))
	}
	if msg := publish(s.token, newPlan); msg != "Published." {
		t.Errorf("the edit page says %q, want Published.", msg)
	}
	storage := get(t, ctx, chromedp.Evaluate[string](`document.cookie + "|" + localStorage.length + "|" + sessionStorage.length`))
	if storage != "|0|0" {
		t.Errorf("the browser keeps cookie|localStorage|sessionStorage = %q, want nothing", storage)
	}
	if v := get(t, ctx, chromedp.Value(chromedp.CSS(`input[name="token"]`))); v != "" {
		t.Errorf("the page after publishing still holds the token in its form")
	}
	got := string(fingertest.Exchange(t, s.rs, []byte("alice\r\n")))
	if !strings.Contains(got, "Published from the browser.\r\n<em>still text</em>") {
		t.Errorf("finger alice after publishing from the browser = %q", got)
	}

	// A wrong token: the page says so, nothing changes.
	if msg := publish("not-the-token", "should not be published"); !strings.Contains(msg, "wrong token") {
		t.Errorf("the edit page with a wrong token says %q", msg)
	}
	if got := string(fingertest.Exchange(t, s.rs, []byte("alice\r\n"))); strings.Contains(got, "should not be published") {
		t.Errorf("a wrong token published: %q", got)
	}
	if d := dialogs(); len(d) > 0 {
		t.Errorf("scripts ran: dialogs %q", d)
	}
}
