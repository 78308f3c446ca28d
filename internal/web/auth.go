package web

import (
	"context"
	"crypto/subtle"
	"errors"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/openfinger/finger/internal/store"
)

// Defaults of AuthLimiter.
const (
	DefaultAuthBurst    = 10
	DefaultAuthInterval = 6 * time.Second
	// maxLimiters caps the limiters held per table; the oldest go first.
	maxLimiters = 10000
)

// AuthLimiter limits failed authentications: each client address (an IPv6
// /64 counts as one) and each user name has a bucket of Burst failures,
// refilled by one every Interval. While either bucket is empty, attempts
// are refused with 429 without looking at the token. Successful
// attempts cost nothing.
type AuthLimiter struct {
	Burst    int           // 0: DefaultAuthBurst
	Interval time.Duration // 0: DefaultAuthInterval

	mu     sync.Mutex
	byAddr map[netip.Prefix]*entry
	byName map[string]*entry
}

type entry struct {
	lim  *rate.Limiter
	used time.Time
}

func (a *AuthLimiter) params() (rate.Limit, int) {
	burst, every := a.Burst, a.Interval
	if burst <= 0 {
		burst = DefaultAuthBurst
	}
	if every <= 0 {
		every = DefaultAuthInterval
	}
	return rate.Every(every), burst
}

func addrKey(ip netip.Addr) netip.Prefix {
	if ip.Is6() {
		p, _ := ip.Prefix(64)
		return p
	}
	return netip.PrefixFrom(ip, 32)
}

// get returns the limiter of key in m, creating it; the caller holds a.mu.
func get[K comparable](a *AuthLimiter, m *map[K]*entry, key K, now time.Time) *rate.Limiter {
	if *m == nil {
		*m = make(map[K]*entry)
	}
	e, ok := (*m)[key]
	if !ok {
		if len(*m) >= maxLimiters {
			prune(*m, now)
		}
		r, b := a.params()
		e = &entry{lim: rate.NewLimiter(r, b)}
		(*m)[key] = e
	}
	e.used = now
	return e.lim
}

// prune drops the limiters that are full again, or else the older half.
func prune[K comparable](m map[K]*entry, now time.Time) {
	for k, e := range m {
		if e.lim.TokensAt(now) >= float64(e.lim.Burst()) {
			delete(m, k)
		}
	}
	if len(m) < maxLimiters {
		return
	}
	var cut time.Time
	for _, e := range m {
		if cut.IsZero() || e.used.Before(cut) {
			cut = e.used
		}
	}
	cut = cut.Add(now.Sub(cut) / 2)
	for k, e := range m {
		if e.used.Before(cut) {
			delete(m, k)
		}
	}
}

// Allowed reports whether an attempt from ip for name may be checked.
func (a *AuthLimiter) Allowed(ip netip.Addr, name string, now time.Time) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return get(a, &a.byAddr, addrKey(ip), now).TokensAt(now) >= 1 &&
		get(a, &a.byName, name, now).TokensAt(now) >= 1
}

// Failed records a failed attempt.
func (a *AuthLimiter) Failed(ip netip.Addr, name string, now time.Time) {
	a.mu.Lock()
	defer a.mu.Unlock()
	get(a, &a.byAddr, addrKey(ip), now).AllowN(now, 1)
	get(a, &a.byName, name, now).AllowN(now, 1)
}

// credentials returns the user and token of a request: Basic NAME:TOKEN
// or Bearer TOKEN (user ""). ok is false without either.
func credentials(r *http.Request) (user, token string, ok bool) {
	if u, p, ok := r.BasicAuth(); ok {
		return u, p, true
	}
	h := r.Header.Get("Authorization")
	if scheme, tok, found := strings.Cut(h, " "); found && strings.EqualFold(scheme, "Bearer") {
		tok = strings.TrimSpace(tok)
		return "", tok, tok != ""
	}
	return "", "", false
}

// authFailed counts a refused credential and, unless the refusal was the
// limiter's, spends one attempt of the client's address and of name.
func (s *Server) authFailed(r *http.Request, name, reason string) {
	if s.Metrics != nil {
		s.Metrics.AuthFailed(reason)
	}
	if reason != "limited" {
		s.Auth.Failed(clientAddr(r), name, s.now())
	}
}

// authorize checks that the request may publish for name. It returns 0
// and the user's token hash when it may, else the HTTP status and a
// one-line reason. With held, a token whose hash is the one in the
// daemon's copy of the directory is taken without reading the store: the
// copy may lag a token replaced by another process, so the caller must
// then write with store.PutTextWithToken and the hash returned, which the
// store refuses for a replaced token. Without held, or when the copy has
// another hash (or none), the store's hash is read.
func (s *Server) authorize(r *http.Request, name, user, token string, ok, held bool) (int, string, []byte) {
	ip, now := clientAddr(r), s.now()
	fail := func(reason string, status int, msg string) (int, string, []byte) {
		s.authFailed(r, name, reason)
		return status, msg, nil
	}
	if !s.Auth.Allowed(ip, name, now) {
		return fail("limited", http.StatusTooManyRequests, "too many failed attempts; try again later")
	}
	if !ok {
		// No credentials at all is how a client asks for the challenge:
		// it costs nothing.
		if s.Metrics != nil {
			s.Metrics.AuthFailed("missing")
		}
		return http.StatusUnauthorized, "authentication required: Basic NAME:TOKEN or Bearer TOKEN", nil
	}
	if user != "" && user != name {
		return fail("bad", http.StatusForbidden, "the credentials are for another user")
	}
	if s.shadowed(r.Context(), name) {
		return fail("bad", http.StatusForbidden, name+" is an account on this host; it publishes its ~/.plan there")
	}
	given := store.HashToken(token)
	if held {
		if e, ok := s.Hosted.Entry(name); ok && len(e.TokenHash) == len(given) && subtle.ConstantTimeCompare(e.TokenHash, given) == 1 {
			return 0, "", given
		}
	}
	ctx, cancel := s.storeCtx(r.Context())
	defer cancel()
	var hash []byte
	err := s.timed("token_hash", func() (err error) {
		hash, err = s.Store.TokenHash(ctx, name)
		return err
	})
	switch {
	case errors.Is(err, store.ErrNotFound):
		return fail("bad", http.StatusNotFound, "no such user")
	case errors.Is(err, store.ErrUnavailable), errors.Is(err, context.DeadlineExceeded):
		return http.StatusServiceUnavailable, s.unavailable("publishing", err, "user", name), nil
	case err != nil:
		s.log().Error("web: store failed", "user", name, "err", err)
		return http.StatusInternalServerError, "publishing failed", nil
	}
	if len(hash) != len(given) || subtle.ConstantTimeCompare(hash, given) != 1 {
		return fail("bad", http.StatusUnauthorized, "wrong token")
	}
	return 0, "", hash
}
