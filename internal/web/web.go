// Package web is fingerd's HTTP side for hosted users: they publish their
// texts with PUT (or the edit page's form), and anyone reads them as HTML
// pages, raw text and Atom feeds.
//
//	PUT    /~NAME/plan     the body is the new plan (also project, pgpkey)
//	DELETE /~NAME/plan     removes it
//	PUT    /~NAME/nofinger hides the user, as ~/.nofinger does; DELETE shows them again
//	GET    /~NAME          HTML page with the user's finger answer
//	GET    /~NAME/plan     the plan as text (also project, pgpkey)
//	GET    /~NAME/feed     Atom feed of the user's plan changes
//	GET    /               directory of listed users
//	GET    /feed           Atom feed of the listed users' plan changes
//	GET    /edit           a form to publish with a token; POST /edit publishes
//
// Publishing needs the user's token, as HTTP Basic NAME:TOKEN or Bearer
// TOKEN. Failed attempts are rate-limited per client address and per name.
// Pages are plain HTML without scripts, under a strict
// Content-Security-Policy; the token is never stored in the browser.
//
// The package reads hosted users from the daemon's copy
// (internal/userinfo/hosted) and writes through the store; it never reaches
// into the finger server: the finger answer on a user's page comes from
// the finger.Handler it is given.
package web

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/openfinger/finger"
	"github.com/openfinger/finger/internal/store"
	"github.com/openfinger/finger/internal/userinfo"
	"github.com/openfinger/finger/internal/userinfo/hosted"
)

// Defaults for zero fields of Server.
const (
	DefaultMaxTextBytes = 64 << 10
	DefaultStoreTimeout = 10 * time.Second
	// feedEntries is the number of entries of a feed.
	feedEntries = 20
)

// Metrics receives what the server does; nil records nothing.
type Metrics interface {
	// Published counts a publish (kind "plan", "nofinger"...; op "put" or
	// "delete") by its HTTP status.
	Published(kind, op string, status int)
	// AuthFailed counts a refused credential: "missing", "bad", "limited".
	AuthFailed(reason string)
	// StoreLatency records how long a store call took.
	StoreLatency(op string, d time.Duration)
}

// Server serves the hosted users over HTTP. Set the fields, then use
// Handler; they must not change afterwards.
type Server struct {
	// Store is where texts are published.
	Store store.Store
	// Hosted is the daemon's copy of the directory, for reading.
	Hosted *hosted.Source
	// Finger returns the handler whose answer a user's page shows (the
	// daemon's current one); nil leaves the answer out.
	Finger func() finger.Handler
	// System is the host's accounts: a hosted user whose name an account
	// has is not served and cannot publish. Nil: no accounts.
	System userinfo.Accounts
	// MaxTextBytes caps a published text (policy.max_file_bytes); 0 or
	// less means DefaultMaxTextBytes. The body is refused (413) beyond it
	// without being read.
	MaxTextBytes int64
	// StoreTimeout bounds each store call; 0 means DefaultStoreTimeout.
	StoreTimeout time.Duration
	// Title names the site on pages and feeds; "" means "finger".
	Title string
	// Limits of failed authentications; zero values mean the defaults of
	// AuthLimiter.
	Auth AuthLimiter
	// Logger receives one line per publish and the store's failures.
	Logger *slog.Logger
	// Metrics, if set, counts publishes, authentication failures and
	// store latency.
	Metrics Metrics
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
}

func (s *Server) log() *slog.Logger {
	if s.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return s.Logger
}

func (s *Server) maxBytes() int64 {
	if s.MaxTextBytes <= 0 {
		return DefaultMaxTextBytes
	}
	return min(s.MaxTextBytes, store.MaxTextBytes)
}

func (s *Server) title() string {
	if s.Title == "" {
		return "finger"
	}
	return s.Title
}

func (s *Server) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

// storeCtx bounds one store call.
func (s *Server) storeCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	d := s.StoreTimeout
	if d <= 0 {
		d = DefaultStoreTimeout
	}
	return context.WithTimeout(ctx, d)
}

// timed runs a store call and records its latency.
func (s *Server) timed(op string, f func() error) error {
	start := time.Now()
	err := f()
	if s.Metrics != nil {
		s.Metrics.StoreLatency(op, time.Since(start))
	}
	return err
}

// Handler returns the HTTP handler of all the routes above.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", s.directory)
	mux.HandleFunc("GET /feed", s.recentFeed)
	mux.HandleFunc("GET /style.css", s.style)
	mux.HandleFunc("GET /edit", s.editPage)
	mux.HandleFunc("POST /edit", s.editPost)
	mux.HandleFunc("GET /{tilde}", s.userPage)
	mux.HandleFunc("GET /{tilde}/feed", s.userFeed)
	mux.HandleFunc("GET /{tilde}/{kind}", s.rawText)
	mux.HandleFunc("PUT /{tilde}/{kind}", s.put)
	mux.HandleFunc("DELETE /{tilde}/{kind}", s.delete)
	return secure(mux)
}

// secure sets the headers every answer carries.
func secure(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("Content-Security-Policy", "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("Referrer-Policy", "no-referrer")
		hd.Set("X-Frame-Options", "DENY")
		h.ServeHTTP(w, r)
	})
}

// plainError answers with a one-line text body.
func plainError(w http.ResponseWriter, code int, msg string) {
	h := w.Header()
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	io.WriteString(w, oneLine(msg)+"\n")
}

// oneLine keeps the first line of s.
func oneLine(s string) string {
	if i := strings.IndexAny(s, "\r\n"); i >= 0 {
		s = s[:i]
	}
	return s
}

// userName returns the NAME of a "/~NAME" path element; ok is false when
// the element is not one or NAME is not a valid name.
func userName(tilde string) (string, bool) {
	name, ok := strings.CutPrefix(tilde, "~")
	if !ok || store.ValidName(name) != nil {
		return "", false
	}
	return name, true
}

// kindOf returns the kind of a path element; "nofinger" is the hiding
// switch, not a text.
func kindOf(s string) (store.Kind, bool) {
	k := store.Kind(s)
	return k, k.Valid() || s == kindNoFinger
}

const kindNoFinger = "nofinger"

// shadowed reports whether a system account has the name: the hosted user
// is then neither served nor allowed to publish.
func (s *Server) shadowed(ctx context.Context, name string) bool {
	if s.System == nil {
		return false
	}
	_, err := s.System.Lookup(ctx, name)
	return err == nil
}

// systemLogins returns the set of the host's logins (what its accounts
// source can enumerate), for pages that list many users.
func (s *Server) systemLogins(ctx context.Context) map[string]bool {
	if s.System == nil {
		return nil
	}
	all, _ := s.System.All(ctx)
	set := make(map[string]bool, len(all))
	for _, a := range all {
		if a != nil {
			set[a.Login] = true
		}
	}
	return set
}

// visible returns the held entry of a user the public may see: existing,
// not hidden, not shadowed by an account.
func (s *Server) visible(ctx context.Context, name string) (store.Entry, bool) {
	e, ok := s.Hosted.Entry(name)
	if !ok || e.Hidden || s.shadowed(ctx, name) {
		return store.Entry{}, false
	}
	return e, true
}

// clientAddr returns the client's address (the connection's: behind a
// proxy, fingerd's PROXY protocol support has already put the real one
// there).
func clientAddr(r *http.Request) netip.Addr {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return netip.Addr{}
	}
	return ap.Addr().Unmap()
}

// unavailable logs that the store cannot serve what ("publishing", "the
// feed") and returns the one-line message of the 503 answer: the store's
// reason when it gave one (store.ErrUnavailable), and for a store that did
// not answer in time, only that it is unavailable. args are logged too.
func (s *Server) unavailable(what string, err error, args ...any) string {
	s.log().Warn("web: store unavailable", append(args, "err", err)...)
	if errors.Is(err, store.ErrUnavailable) {
		return what + " is unavailable: " + reason(err)
	}
	return what + " is unavailable; try again later"
}

// reason extracts the store's reason ("disk full") from its error.
func reason(err error) string {
	msg := err.Error()
	const marker = "store: unavailable: "
	if i := strings.Index(msg, marker); i >= 0 {
		msg = msg[i+len(marker):]
	}
	if i := strings.Index(msg, " ("); i >= 0 {
		msg = msg[:i]
	}
	return oneLine(msg)
}

// fingerAnswer returns the finger answer for name, as the finger server
// would write it (before its line ends become CRLF).
func (s *Server) fingerAnswer(ctx context.Context, r *http.Request, name string) string {
	if s.Finger == nil {
		return ""
	}
	h := s.Finger()
	if h == nil {
		return ""
	}
	var buf bytes.Buffer
	q := finger.Query{User: name}
	req := &finger.Request{Query: q, Line: q.String()}
	if ap, err := netip.ParseAddrPort(r.RemoteAddr); err == nil {
		req.RemoteAddr = net.TCPAddrFromAddrPort(ap)
	}
	h.ServeFinger(ctx, &limitedWriter{w: &buf, n: 1 << 20}, req)
	return buf.String()
}

// limitedWriter stops writing after n bytes.
type limitedWriter struct {
	w io.Writer
	n int
}

func (l *limitedWriter) Write(p []byte) (int, error) {
	if len(p) > l.n {
		p = p[:l.n]
	}
	l.n -= len(p)
	n, err := l.w.Write(p)
	if err == nil && l.n == 0 {
		err = io.ErrShortWrite
	}
	return n, err
}

// rawText answers GET /~NAME/plan: the text, through finger's UTF-8-safe
// filter, so that it is as safe for a terminal as a finger answer.
func (s *Server) rawText(w http.ResponseWriter, r *http.Request) {
	name, ok := userName(r.PathValue("tilde"))
	k := store.Kind(r.PathValue("kind"))
	if !ok || !k.Valid() {
		plainError(w, http.StatusNotFound, "not found")
		return
	}
	e, ok := s.visible(r.Context(), name)
	if !ok {
		plainError(w, http.StatusNotFound, "no such user")
		return
	}
	t, ok := e.Texts[k]
	if !ok {
		plainError(w, http.StatusNotFound, fmt.Sprintf("%s has no %s", name, k))
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("Content-Security-Policy", "default-src 'none'; sandbox")
	h.Set("Last-Modified", t.Changed.UTC().Format(http.TimeFormat))
	h.Set("Cache-Control", "no-cache")
	io.WriteString(w, finger.Filter{UTF8: true}.String(t.Body))
}

// put answers PUT /~NAME/KIND.
func (s *Server) put(w http.ResponseWriter, r *http.Request) {
	s.publish(w, r, "put")
}

// delete answers DELETE /~NAME/KIND.
func (s *Server) delete(w http.ResponseWriter, r *http.Request) {
	s.publish(w, r, "delete")
}

func (s *Server) publish(w http.ResponseWriter, r *http.Request, op string) {
	start := time.Now()
	name, ok := userName(r.PathValue("tilde"))
	kind := r.PathValue("kind")
	k, kok := kindOf(kind)
	if !ok || !kok {
		plainError(w, http.StatusNotFound, "not found: publish to /~NAME/plan, /~NAME/project, /~NAME/pgpkey or /~NAME/nofinger")
		return
	}
	user, token, have := credentials(r)
	put := op == "put"
	status, msg, hash := s.authorize(r, name, user, token, have, put && k.Valid())
	if status == 0 && put {
		var body string
		body, status, msg = s.readBody(w, r)
		if status == 0 {
			status, msg = s.write(r, name, k, body, hash, true)
		}
	} else if status == 0 {
		status, msg = s.write(r, name, k, "", nil, false)
	}
	if status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Basic realm="fingerd", charset="UTF-8"`)
	}
	if s.Metrics != nil {
		s.Metrics.Published(kind, op, status)
	}
	if status == http.StatusNoContent {
		s.log().Info("web: published", "user", name, "kind", kind, "op", op,
			"bytes", r.ContentLength, "remote", r.RemoteAddr, "duration", time.Since(start))
		w.WriteHeader(http.StatusNoContent)
		return
	}
	if status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", "30")
	}
	plainError(w, status, msg)
}

// readBody reads a PUT body of at most maxBytes: a longer declared length
// is refused before reading, a longer body as soon as it passes the cap.
func (s *Server) readBody(w http.ResponseWriter, r *http.Request) (string, int, string) {
	max := s.maxBytes()
	tooLarge := fmt.Sprintf("text larger than %d bytes", max)
	if r.ContentLength > max {
		return "", http.StatusRequestEntityTooLarge, tooLarge
	}
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, max))
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &mbe):
		return "", http.StatusRequestEntityTooLarge, tooLarge
	case err != nil:
		return "", http.StatusBadRequest, "cannot read the body: " + err.Error()
	}
	if err := store.ValidText(string(data)); err != nil {
		return "", http.StatusBadRequest, "the text must be UTF-8 without NUL bytes"
	}
	return string(data), 0, ""
}

// write publishes (or deletes) and returns the HTTP status and message.
// A text is published with tokenHash, the hash authorize returned: a token
// replaced since is refused by the store (401).
func (s *Server) write(r *http.Request, name string, k store.Kind, body string, tokenHash []byte, put bool) (int, string) {
	ctx, cancel := s.storeCtx(r.Context())
	defer cancel()
	var err error
	var version int64
	var change store.Change
	if string(k) == kindNoFinger {
		err = s.timed("update_user", func() error {
			u, err := s.Store.User(ctx, name)
			if err != nil {
				return err
			}
			u.Hidden = put
			if err = s.Store.UpdateUser(ctx, u); err == nil {
				version, err = s.Store.Version(ctx)
			}
			return err
		})
	} else if put {
		err = s.timed("put_text", func() error {
			change, err = s.Store.PutTextWithToken(ctx, name, tokenHash, k, body)
			return err
		})
	} else {
		err = s.timed("delete_text", func() error {
			change, err = s.Store.DeleteText(ctx, name, k)
			return err
		})
	}
	switch {
	case err == nil:
	case errors.Is(err, store.ErrToken):
		// The token was replaced after authorize took it.
		s.authFailed(r, name, "bad")
		return http.StatusUnauthorized, "wrong token"
	case errors.Is(err, store.ErrNotFound) && put && k.Valid():
		// The user was deleted after authorize.
		s.authFailed(r, name, "bad")
		return http.StatusNotFound, "no such user"
	case errors.Is(err, store.ErrNotFound):
		if put || string(k) == kindNoFinger {
			return http.StatusNotFound, "no such user"
		}
		return http.StatusNotFound, fmt.Sprintf("%s has no %s", name, k)
	case errors.Is(err, store.ErrInvalid):
		return http.StatusBadRequest, "the text must be UTF-8 without NUL bytes"
	case errors.Is(err, store.ErrUnavailable), errors.Is(err, context.DeadlineExceeded):
		return http.StatusServiceUnavailable, s.unavailable("publishing", err, "user", name)
	default:
		s.log().Error("web: store failed", "user", name, "err", err)
		return http.StatusInternalServerError, "publishing failed"
	}
	// Read your writes: the daemon's copy holds the change before the
	// answer, so that the next finger query shows it. A failed refresh
	// leaves it to the next poll.
	wctx, wcancel := context.WithTimeout(context.Background(), time.Second)
	if change.Version != 0 {
		s.Hosted.Wrote(wctx, change)
	} else {
		s.Hosted.WaitVersion(wctx, version)
	}
	wcancel()
	return http.StatusNoContent, ""
}

// ListenAndServe-style helpers.

// NewHTTPServer returns an http.Server for h with every timeout set; with
// a TLS configuration it serves HTTPS.
func NewHTTPServer(h http.Handler, tlsConfig *tls.Config, errLog *slog.Logger) *http.Server {
	hs := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       60 * time.Second,
		MaxHeaderBytes:    16 << 10,
		TLSConfig:         tlsConfig,
	}
	if errLog != nil {
		hs.ErrorLog = slog.NewLogLogger(errLog.Handler(), slog.LevelWarn)
	}
	return hs
}

// ClearTextRisk reports whether Basic authentication on addr would cross a
// network in clear text: no TLS and an address that is not loopback.
func ClearTextRisk(addr string, tls bool) bool {
	if tls {
		return false
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return true
	}
	if host == "localhost" {
		return false
	}
	ip, err := netip.ParseAddr(host)
	return err != nil || !ip.IsLoopback()
}

// httpDate formats t for a page.
func httpDate(t time.Time) string {
	return t.UTC().Format("2006-01-02 15:04 UTC")
}
