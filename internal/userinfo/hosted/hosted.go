// Package hosted is the finger source of hosted users: people without an
// account on the host who publish their plan through the daemon, kept in a
// store (internal/store).
//
// A Source answers from a copy of the directory held in memory, so finger
// answers never wait for the store and go on when it is unavailable. Load
// reads the whole directory; Run keeps the copy current, polling the
// store's version every PollInterval and refreshing soon after the store
// announces a write (store.Watcher), reading only what changed. A write of
// the daemon's own (a publish over HTTP) is brought in by Wrote, from the
// change itself, without reading the store back.
//
// A *Source implements userinfo.Accounts, userinfo.Files and
// userinfo.Directory for the hosted users alone. Overlay puts them
// together with the host's accounts, which win a login both have.
package hosted

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/openfinger/finger/internal/store"
	"github.com/openfinger/finger/internal/userinfo"
)

// DefaultPollInterval is how often Run asks the store for its version
// when PollInterval is zero: changes made by other processes show within
// this time.
const DefaultPollInterval = 250 * time.Millisecond

// fileKinds maps the dot-file names the Responder asks for to kinds.
var fileKinds = map[string]store.Kind{
	".plan":    store.KindPlan,
	".project": store.KindProject,
	".pgpkey":  store.KindPGPKey,
}

// Source is the hosted users of a store, held in memory. Set the fields
// before Load; they must not change afterwards.
type Source struct {
	// Store is where the users live.
	Store store.Store
	// PollInterval is how often Run polls the store version; 0 means
	// DefaultPollInterval.
	PollInterval time.Duration
	// Logger receives refresh failures and recoveries; nil discards them.
	Logger *slog.Logger

	cur     atomic.Pointer[state]
	synced  atomic.Int64 // Unix nanoseconds: when the store last confirmed cur
	mu      sync.Mutex   // serializes refreshes and changes of cur
	failing bool         // the last refresh failed (guarded by mu)
	lastErr atomic.Pointer[error]
	// Guarded by mu: changes written by this process that wait for the
	// ones before them (Wrote), by version; and a channel closed when cur
	// next changes.
	pending map[int64]store.Change
	changed chan struct{}
}

// state is one immutable copy of the directory.
type state struct {
	version int64
	// users is split in shards, so that a change copies one shard, not
	// the whole directory. Shards are never modified once published.
	users [shards]map[string]*user
	n     int // users held

	allOnce sync.Once
	sorted  []*user            // every user, by name
	all     []userinfo.Account // every user's account, by name
	listed  []userinfo.Account // listed and not hidden, by name
}

// shards is the number of pieces of a state's user map.
const shards = 64

// shardOf returns the shard of a login (FNV-1a).
func shardOf(login string) int {
	h := uint32(2166136261)
	for i := 0; i < len(login); i++ {
		h = (h ^ uint32(login[i])) * 16777619
	}
	return int(h % shards)
}

type user struct {
	store.Entry
	acct userinfo.Account
}

var (
	_ userinfo.Accounts  = (*Source)(nil)
	_ userinfo.Files     = (*Source)(nil)
	_ userinfo.Directory = (*Source)(nil)
)

func (s *Source) log() *slog.Logger {
	if s.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return s.Logger
}

// Load reads the whole directory from the store. It is called once before
// serving; an error means the source holds nothing.
func (s *Source) Load(ctx context.Context) error {
	snap, err := s.Store.Snapshot(ctx, 0)
	if err != nil {
		return fmt.Errorf("hosted: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.apply(snap)
	return nil
}

// Run keeps the copy current until ctx ends; it returns ctx's error.
// Failures are logged once when they begin and once when they end; the
// copy stays as it was meanwhile.
func (s *Source) Run(ctx context.Context) error {
	interval := s.PollInterval
	if interval <= 0 {
		interval = DefaultPollInterval
	}
	var watch <-chan struct{}
	if w, ok := s.Store.(store.Watcher); ok {
		watch = w.Watch(ctx)
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		case _, ok := <-watch:
			if !ok {
				watch = nil
				continue
			}
			// The writers of this process bring their changes in
			// themselves (Wrote, WaitVersion): give them a moment, so
			// that the refresh finds the copy current and costs one
			// query, and announcements of that moment count once.
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(announceDelay):
			}
			select {
			case <-watch:
			default:
			}
		}
		s.Refresh(ctx)
	}
}

// announceDelay is how long Run waits after a store announced a write
// before refreshing.
const announceDelay = 20 * time.Millisecond

// Refresh brings the copy up to the store's current version now.
func (s *Source) Refresh(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	err := s.refresh(ctx)
	if ctx.Err() == nil {
		s.lastErr.Store(&err)
	}
	switch {
	case err != nil && !s.failing && ctx.Err() == nil:
		s.failing = true
		s.log().Warn("hosted: cannot refresh hosted users; answering from what is held", "err", err,
			"version", s.Version(), "synced", s.Synced())
	case err == nil && s.failing:
		s.failing = false
		s.log().Info("hosted: hosted users refreshed again", "version", s.Version())
	}
	return err
}

func (s *Source) refresh(ctx context.Context) error {
	cur := s.cur.Load()
	var have int64
	if cur != nil {
		have = cur.version
	}
	v, err := s.Store.Version(ctx)
	if err != nil {
		return fmt.Errorf("hosted: %w", err)
	}
	if cur != nil && v == have {
		s.synced.Store(time.Now().UnixNano())
		return nil
	}
	snap, err := s.Store.Snapshot(ctx, have)
	if err != nil {
		return fmt.Errorf("hosted: %w", err)
	}
	s.apply(snap)
	return nil
}

// apply merges snap into the copy; the caller holds s.mu.
func (s *Source) apply(snap *store.Snapshot) {
	cur := s.cur.Load()
	next := &state{version: snap.Version}
	copied := [shards]bool{}
	if snap.Full || cur == nil {
		for i := range next.users {
			next.users[i] = make(map[string]*user)
			copied[i] = true
		}
	} else {
		next.users, next.n = cur.users, cur.n
	}
	shard := func(name string) map[string]*user {
		i := shardOf(name)
		if !copied[i] {
			next.users[i] = maps.Clone(next.users[i])
			copied[i] = true
		}
		return next.users[i]
	}
	for _, name := range snap.Deleted {
		m := shard(name)
		if _, ok := m[name]; ok {
			delete(m, name)
			next.n--
		}
	}
	for _, e := range snap.Users {
		m := shard(e.Name)
		if _, ok := m[e.Name]; !ok {
			next.n++
		}
		m[e.Name] = &user{Entry: e, acct: userinfo.Account{Login: e.Name, Name: e.RealName, Hosted: true}}
	}
	s.publish(next)
	s.synced.Store(time.Now().UnixNano())
}

// publish makes next the copy answers come from, and wakes Wrote's
// waiters; the caller holds s.mu.
func (s *Source) publish(next *state) {
	s.cur.Store(next)
	for v := range s.pending {
		if v <= next.version {
			delete(s.pending, v)
		}
	}
	if s.changed != nil {
		close(s.changed)
		s.changed = nil
	}
}

// wroteGrace is how long Wrote waits for the writes before a change to
// be brought in by their writers, before it reads them from the store.
// The writes committed together with it are handed back at the same time
// and come within microseconds; a write of another process never comes.
const wroteGrace = 5 * time.Millisecond

// Wrote brings a change this process wrote (the Change that the store's
// PutText or DeleteText returned) into the copy, and returns once the copy
// holds its version, or when ctx ends. The change is applied to what is
// held, without reading the store back, when the copy is at the version
// just before it: the copy then holds exactly what the store held after
// the write. A change whose predecessors are not held yet waits a moment
// for them (the other writes of the same commit, brought in by their own
// writers), then reads what changed from the store, as WaitVersion does.
func (s *Source) Wrote(ctx context.Context, c store.Change) error {
	defer func() {
		s.mu.Lock()
		delete(s.pending, c.Version)
		s.mu.Unlock()
	}()
	var grace <-chan time.Time
	for {
		s.mu.Lock()
		have := s.Version()
		switch {
		case have >= c.Version:
			s.mu.Unlock()
			return nil
		case have == c.Version-1:
			ok := s.applyWritten(c)
			s.mu.Unlock()
			if ok {
				return nil
			}
			// Not a change the copy can take (its user is not held):
			// read it.
			return s.WaitVersion(ctx, c.Version)
		}
		if s.pending == nil {
			s.pending = make(map[int64]store.Change)
		}
		s.pending[c.Version] = c
		if s.changed == nil {
			s.changed = make(chan struct{})
		}
		changed := s.changed
		s.mu.Unlock()
		if grace == nil {
			t := time.NewTimer(wroteGrace)
			defer t.Stop()
			grace = t.C
		}
		select {
		case <-changed:
		case <-grace:
			return s.WaitVersion(ctx, c.Version)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// applyWritten applies c, whose version follows the copy's, and then the
// pending changes that follow it; it reports whether c was applied. The
// caller holds s.mu.
func (s *Source) applyWritten(c store.Change) bool {
	cur := s.cur.Load()
	if cur == nil {
		return false // nothing loaded yet: the change is not all there is
	}
	next := &state{version: cur.version, users: cur.users, n: cur.n}
	copied := [shards]bool{}
	for {
		i := shardOf(c.Name)
		u, ok := next.users[i][c.Name]
		if !ok || !c.Kind.Valid() || c.Version != next.version+1 {
			break
		}
		if !copied[i] {
			next.users[i] = maps.Clone(next.users[i])
			copied[i] = true
		}
		e := u.Entry
		e.Texts = maps.Clone(e.Texts)
		if e.Texts == nil {
			e.Texts = map[store.Kind]store.Text{}
		}
		if c.Deleted {
			delete(e.Texts, c.Kind)
		} else {
			e.Texts[c.Kind] = store.Text{Kind: c.Kind, Body: c.Body, Changed: c.At}
		}
		e.Version = c.Version
		next.users[i][c.Name] = &user{Entry: e, acct: u.acct}
		next.version = c.Version
		if c, ok = s.pending[next.version+1]; !ok {
			break
		}
	}
	if next.version == cur.version {
		return false
	}
	s.publish(next)
	return true
}

// WaitVersion waits until the copy holds version v or later, refreshing
// it when needed, or until ctx ends. Many waiters share one refresh.
func (s *Source) WaitVersion(ctx context.Context, v int64) error {
	for s.Version() < v {
		s.mu.Lock()
		var err error
		if s.Version() < v {
			err = s.refresh(ctx)
		}
		s.mu.Unlock()
		if err != nil {
			return err
		}
		if s.Version() >= v {
			return nil
		}
		// A store replica that has not seen v yet: wait a little.
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
	return nil
}

// Version returns the store version the copy reflects; 0 before Load.
func (s *Source) Version() int64 {
	if st := s.cur.Load(); st != nil {
		return st.version
	}
	return 0
}

// Synced returns when the store last confirmed the copy was current: how
// stale answers may be when the store is unavailable. Zero before Load.
func (s *Source) Synced() time.Time {
	if n := s.synced.Load(); n != 0 {
		return time.Unix(0, n)
	}
	return time.Time{}
}

// Err returns the error of the last refresh, nil when it succeeded or
// before the first: whether the store can be reached now. A refresh cut
// short by its context ending is not counted.
func (s *Source) Err() error {
	if p := s.lastErr.Load(); p != nil {
		return *p
	}
	return nil
}

// Len returns the number of hosted users held.
func (s *Source) Len() int {
	if st := s.cur.Load(); st != nil {
		return st.n
	}
	return 0
}

func (s *Source) get(login string) (*user, bool) {
	st := s.cur.Load()
	if st == nil {
		return nil, false
	}
	u, ok := st.users[shardOf(login)][login]
	return u, ok
}

// Entry returns what is held of the user: the entry's Texts must not be
// modified.
func (s *Source) Entry(name string) (store.Entry, bool) {
	u, ok := s.get(name)
	if !ok {
		return store.Entry{}, false
	}
	return u.Entry, true
}

// Entries returns every user held, sorted by name; the entries' Texts
// must not be modified.
func (s *Source) Entries() []store.Entry {
	st := s.cur.Load()
	if st == nil {
		return nil
	}
	st.lists()
	out := make([]store.Entry, len(st.sorted))
	for i, u := range st.sorted {
		out[i] = u.Entry
	}
	return out
}

func notFound(what, login string) error {
	return &missing{what: what, login: login}
}

// missing is the error for something a hosted user does not have. Queries
// meet it at every answer (a user without a .project, say), and the
// caller rarely prints it, so its text is made only when asked for.
type missing struct {
	what, login string
	of          bool // what is a text of the user: "plan of"
}

func (e *missing) Error() string {
	of := ""
	if e.of {
		of = " of"
	}
	return "hosted: " + e.what + of + " " + strconv.Quote(e.login) + ": " + userinfo.ErrNotFound.Error()
}

func (e *missing) Unwrap() error { return userinfo.ErrNotFound }

// Lookup returns the hosted user with exactly this login, or an error
// wrapping userinfo.ErrNotFound.
func (s *Source) Lookup(ctx context.Context, login string) (*userinfo.Account, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	u, ok := s.get(login)
	if !ok {
		return nil, notFound("user", login)
	}
	a := u.acct
	return &a, nil
}

// lists builds, once per state, the users sorted by name and their
// account lists.
func (st *state) lists() ([]userinfo.Account, []userinfo.Account) {
	st.allOnce.Do(func() {
		us := make([]*user, 0, st.n)
		for _, m := range st.users {
			for _, u := range m {
				us = append(us, u)
			}
		}
		slices.SortFunc(us, func(a, b *user) int { return cmp.Compare(a.Name, b.Name) })
		st.sorted = us
		st.all = make([]userinfo.Account, len(us))
		for i, u := range us {
			st.all[i] = u.acct
			if u.Listed && !u.Hidden {
				st.listed = append(st.listed, u.acct)
			}
		}
	})
	return st.all, st.listed
}

// All returns copies of every hosted user's account, sorted by login.
func (s *Source) All(ctx context.Context) ([]*userinfo.Account, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	st := s.cur.Load()
	if st == nil {
		return nil, nil
	}
	all, _ := st.lists()
	vals := slices.Clone(all)
	out := make([]*userinfo.Account, len(vals))
	for i := range vals {
		out[i] = &vals[i]
	}
	return out, nil
}

// shared returns every hosted user's account, sorted by login, as the
// copy held shares them: the caller must not modify them.
func (s *Source) shared(ctx context.Context) ([]userinfo.Account, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	st := s.cur.Load()
	if st == nil {
		return nil, nil
	}
	all, _ := st.lists()
	return all, nil
}

// Listed returns the users who asked to be listed and are not hidden,
// sorted by login.
func (s *Source) Listed(ctx context.Context) ([]userinfo.Account, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	st := s.cur.Load()
	if st == nil {
		return nil, nil
	}
	_, listed := st.lists()
	return slices.Clone(listed), nil
}

// ReadFile returns the user's text published under the dot-file name
// (".plan", ".project", ".pgpkey"), at most max bytes (max <= 0: all),
// with the time it changed.
func (s *Source) ReadFile(ctx context.Context, a *userinfo.Account, name string, max int64) (userinfo.UserFile, error) {
	if err := ctx.Err(); err != nil {
		return userinfo.UserFile{}, err
	}
	k, ok := fileKinds[name]
	if !ok {
		return userinfo.UserFile{}, fmt.Errorf("hosted: %q is not a text users publish: %w", name, userinfo.ErrNotFound)
	}
	u, ok := s.get(a.Login)
	if !ok {
		return userinfo.UserFile{}, notFound("user", a.Login)
	}
	t, ok := u.Texts[k]
	if !ok {
		return userinfo.UserFile{}, &missing{what: string(k), login: a.Login, of: true}
	}
	f := userinfo.UserFile{Changed: t.Changed}
	body := t.Body
	if max > 0 && int64(len(body)) > max {
		body, f.Truncated = body[:max], true
	}
	f.Data = []byte(body)
	return f, nil
}

// Hidden reports whether the user asked not to be fingered. Unknown users
// are not hidden.
func (s *Source) Hidden(ctx context.Context, a *userinfo.Account) bool {
	u, ok := s.get(a.Login)
	return ok && u.Hidden
}

// Overlay is the host's accounts and the hosted users together, for a
// Responder: a login that is both a system account and a hosted user
// belongs to the account, and the operator is told once per login.
type Overlay struct {
	System      userinfo.Accounts
	SystemFiles userinfo.Files // nil: system accounts publish nothing
	Hosted      *Source
	// Logger is told of hosted users hidden by a system account.
	Logger *slog.Logger
	// ShadowTTL is how long a hosted login found to be no system account
	// stays so without asking again; 0 means DefaultShadowTTL.
	ShadowTTL time.Duration

	warned sync.Map // login → struct{}
	known  sync.Map // hosted login → shadowEntry
}

var (
	_ userinfo.Accounts  = (*Overlay)(nil)
	_ userinfo.Files     = (*Overlay)(nil)
	_ userinfo.Directory = (*Overlay)(nil)
)

func (o *Overlay) shadowed(login string) {
	if _, dup := o.warned.LoadOrStore(login, struct{}{}); dup || o.Logger == nil {
		return
	}
	o.Logger.Warn("hosted: a system account has the login of a hosted user; the account is answered, the hosted user is not (delete or rename one)", "login", login)
}

// DefaultShadowTTL is how long an Overlay trusts what it learnt of a
// hosted login from the system accounts when ShadowTTL is zero.
const DefaultShadowTTL = 30 * time.Second

// shadowEntry is what the system accounts said of a hosted login.
type shadowEntry struct {
	system bool
	at     time.Time
}

// SystemHas reports whether a system account has this login, asking the
// system accounts at most once per ShadowTTL for a hosted login that is
// none (as Lookup does).
func (o *Overlay) SystemHas(ctx context.Context, login string) bool {
	if _, ok := o.Hosted.get(login); ok {
		if v, ok := o.known.Load(login); ok {
			if e := v.(shadowEntry); time.Since(e.at) < o.ttl() {
				return e.system
			}
		}
	}
	a, err := o.Lookup(ctx, login)
	return err == nil && !a.Hosted
}

func (o *Overlay) ttl() time.Duration {
	if o.ShadowTTL <= 0 {
		return DefaultShadowTTL
	}
	return o.ShadowTTL
}

// Lookup returns the system account with this login, else the hosted user.
// For a hosted login the answer of the system accounts is remembered for
// ShadowTTL, so that answering a hosted user does not ask the name
// service every time; an account created for that login wins within
// ShadowTTL.
func (o *Overlay) Lookup(ctx context.Context, login string) (*userinfo.Account, error) {
	if _, ok := o.Hosted.get(login); ok {
		ttl := o.ttl()
		if v, ok := o.known.Load(login); ok {
			if e := v.(shadowEntry); time.Since(e.at) < ttl && !e.system {
				return o.Hosted.Lookup(ctx, login)
			}
		}
		a, err := o.System.Lookup(ctx, login)
		switch {
		case err == nil:
			o.known.Store(login, shadowEntry{system: true, at: time.Now()})
			o.shadowed(login)
			return a, nil
		case errors.Is(err, userinfo.ErrNotFound):
			o.known.Store(login, shadowEntry{at: time.Now()})
			return o.Hosted.Lookup(ctx, login)
		default:
			return nil, err
		}
	}
	return o.System.Lookup(ctx, login)
}

// systemLogins returns the set of system logins (what the source could
// enumerate).
func (o *Overlay) systemLogins(ctx context.Context) (map[string]bool, []*userinfo.Account, error) {
	sys, err := o.System.All(ctx)
	set := make(map[string]bool, len(sys))
	for _, a := range sys {
		if a != nil {
			set[a.Login] = true
		}
	}
	return set, sys, err
}

// All returns the system accounts, then the hosted users whose login no
// system account has. It runs for every query for a name no login has
// (real-name matching): the hosted users' accounts are not copied but
// shared with the held copy, and must not be modified.
func (o *Overlay) All(ctx context.Context) ([]*userinfo.Account, error) {
	set, sys, err := o.systemLogins(ctx)
	hosted, herr := o.Hosted.shared(ctx)
	out := slices.Grow(sys, len(hosted))
	for i := range hosted {
		if set[hosted[i].Login] {
			o.shadowed(hosted[i].Login)
			continue
		}
		out = append(out, &hosted[i])
	}
	return out, errors.Join(err, herr)
}

// Listed returns the listed hosted users whose login no system account
// has.
func (o *Overlay) Listed(ctx context.Context) ([]userinfo.Account, error) {
	listed, err := o.Hosted.Listed(ctx)
	if err != nil || len(listed) == 0 {
		return listed, err
	}
	set, _, err := o.systemLogins(ctx)
	return slices.DeleteFunc(listed, func(a userinfo.Account) bool {
		if set[a.Login] {
			o.shadowed(a.Login)
			return true
		}
		return false
	}), err
}

// Check tells the operator (once per login) of every hosted user a system
// account hides, and returns their logins.
func (o *Overlay) Check(ctx context.Context) ([]string, error) {
	set, _, err := o.systemLogins(ctx)
	var out []string
	for _, e := range o.Hosted.Entries() {
		if set[e.Name] {
			o.shadowed(e.Name)
			out = append(out, e.Name)
		}
	}
	return out, err
}

// ReadFile reads a hosted user's text or a system account's file.
func (o *Overlay) ReadFile(ctx context.Context, a *userinfo.Account, name string, max int64) (userinfo.UserFile, error) {
	if a.Hosted {
		return o.Hosted.ReadFile(ctx, a, name, max)
	}
	if o.SystemFiles == nil {
		return userinfo.UserFile{}, notFound("file of", a.Login)
	}
	return o.SystemFiles.ReadFile(ctx, a, name, max)
}

// Hidden reports whether the user asked not to be fingered.
func (o *Overlay) Hidden(ctx context.Context, a *userinfo.Account) bool {
	if a.Hosted {
		return o.Hosted.Hidden(ctx, a)
	}
	return o.SystemFiles != nil && o.SystemFiles.Hidden(ctx, a)
}
