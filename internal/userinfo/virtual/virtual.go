// Package virtual is an in-memory source of finger users: accounts,
// sessions, last logins, mail status and published files, all held in
// memory. It serves users configured by the operator that have no system
// account, and it is the reference source the userinfo tests run against.
//
// A *Source implements userinfo.Accounts, Sessions, LastLogins, Mailboxes
// and Files. It is safe for concurrent use; users may be added or removed
// while queries are being answered. Values passed in and returned are
// copies: callers may modify them freely.
package virtual

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"slices"
	"sync"

	"github.com/openfinger/finger/internal/userinfo"
)

// User is everything a Source knows about one user.
type User struct {
	// Account is the user's account. Account.Login must not be empty; it
	// is the key under which the user is stored.
	Account userinfo.Account
	// Sessions are the user's current login sessions, in display order.
	// Their Login field is set to Account.Login when stored.
	Sessions []userinfo.Session
	// LastLogin is the user's last login; a zero Time means no record
	// ("Never logged in.").
	LastLogin userinfo.LastLogin
	// Mail is the status of the user's mailbox.
	Mail userinfo.MailStatus
	// Files holds the published dot-files by name (".plan", ".project",
	// ".pgpkey"). A name that is absent is not published.
	Files map[string][]byte
	// Hidden is true when the user asked not to be fingered, as a
	// ~/.nofinger file does for a system user.
	Hidden bool
}

// Source is an in-memory user database. The zero value is an empty source
// ready to use.
type Source struct {
	mu    sync.RWMutex
	users map[string]*User
	order []string // logins in the order they were first added
}

var (
	_ userinfo.Accounts   = (*Source)(nil)
	_ userinfo.Sessions   = (*Source)(nil)
	_ userinfo.LastLogins = (*Source)(nil)
	_ userinfo.Mailboxes  = (*Source)(nil)
	_ userinfo.Files      = (*Source)(nil)
)

// New returns a Source holding users, in that order. A later user with the
// login of an earlier one replaces it.
func New(users ...User) *Source {
	s := new(Source)
	for _, u := range users {
		s.Set(u)
	}
	return s
}

// Set adds u, or replaces the user with the same login. It panics if
// u.Account.Login is empty, a programming error.
func (s *Source) Set(u User) {
	login := u.Account.Login
	if login == "" {
		panic("virtual: Set with an empty login")
	}
	c := cloneUser(&u)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.users == nil {
		s.users = make(map[string]*User)
	}
	if _, ok := s.users[login]; !ok {
		s.order = append(s.order, login)
	}
	s.users[login] = c
}

// Remove deletes the user with this login and reports whether it existed.
func (s *Source) Remove(login string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.users[login]; !ok {
		return false
	}
	delete(s.users, login)
	s.order = slices.DeleteFunc(s.order, func(l string) bool { return l == login })
	return true
}

// Len returns the number of users.
func (s *Source) Len() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.users)
}

func cloneUser(u *User) *User {
	c := *u
	c.Sessions = slices.Clone(u.Sessions)
	for i := range c.Sessions {
		c.Sessions[i].Login = u.Account.Login
	}
	if u.Files != nil {
		c.Files = make(map[string][]byte, len(u.Files))
		for k, v := range u.Files {
			c.Files[k] = bytes.Clone(v)
		}
	}
	return &c
}

func notFound(what, login string) error {
	return fmt.Errorf("virtual: %s %q: %w", what, login, userinfo.ErrNotFound)
}

// user returns the stored user; the caller holds at least the read lock.
func (s *Source) user(login string) (*User, bool) {
	u, ok := s.users[login]
	return u, ok
}

// Lookup returns a copy of the account with exactly this login, or an
// error wrapping userinfo.ErrNotFound.
func (s *Source) Lookup(ctx context.Context, login string) (*userinfo.Account, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	u, ok := s.user(login)
	if !ok {
		return nil, notFound("user", login)
	}
	a := u.Account
	return &a, nil
}

// All returns copies of every account, in the order the users were added.
func (s *Source) All(ctx context.Context) ([]*userinfo.Account, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	accts := make([]userinfo.Account, len(s.order))
	out := make([]*userinfo.Account, len(s.order))
	for i, login := range s.order {
		accts[i] = s.users[login].Account
		out[i] = &accts[i]
	}
	return out, nil
}

// Sessions returns the sessions of every user, users in the order they
// were added and each user's sessions in the order given.
func (s *Source) Sessions(ctx context.Context) ([]userinfo.Session, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	n := 0
	for _, login := range s.order {
		n += len(s.users[login].Sessions)
	}
	out := make([]userinfo.Session, 0, n)
	for _, login := range s.order {
		out = append(out, s.users[login].Sessions...)
	}
	return out, nil
}

// LastLogin returns the last login of a, or an error wrapping
// userinfo.ErrNotFound when a is unknown or has no record.
func (s *Source) LastLogin(ctx context.Context, a *userinfo.Account) (userinfo.LastLogin, error) {
	if err := ctx.Err(); err != nil {
		return userinfo.LastLogin{}, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	u, ok := s.user(a.Login)
	if !ok || u.LastLogin.Time.IsZero() {
		return userinfo.LastLogin{}, notFound("last login of", a.Login)
	}
	return u.LastLogin, nil
}

// Mail returns the mail status of a, or an error wrapping
// userinfo.ErrNotFound when a is unknown.
func (s *Source) Mail(ctx context.Context, a *userinfo.Account) (userinfo.MailStatus, error) {
	if err := ctx.Err(); err != nil {
		return userinfo.MailStatus{}, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	u, ok := s.user(a.Login)
	if !ok {
		return userinfo.MailStatus{}, notFound("mailbox of", a.Login)
	}
	return u.Mail, nil
}

// ReadFile returns a copy of the named file of a, at most max bytes
// (max <= 0 means no limit), with Truncated set when the file is longer.
// An unknown user or unpublished file gives an error wrapping
// userinfo.ErrNotFound.
func (s *Source) ReadFile(ctx context.Context, a *userinfo.Account, name string, max int64) (userinfo.UserFile, error) {
	if err := ctx.Err(); err != nil {
		return userinfo.UserFile{}, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	u, ok := s.user(a.Login)
	if !ok {
		return userinfo.UserFile{}, notFound("user", a.Login)
	}
	data, ok := u.Files[name]
	if !ok {
		return userinfo.UserFile{}, fmt.Errorf("virtual: %s of %q: %w", name, a.Login, userinfo.ErrNotFound)
	}
	var f userinfo.UserFile
	if max > 0 && int64(len(data)) > max {
		data = data[:max]
		f.Truncated = true
	}
	f.Data = bytes.Clone(data)
	if f.Data == nil {
		f.Data = []byte{}
	}
	return f, nil
}

// Hidden reports whether a is stored with Hidden set. Unknown users are
// not hidden.
func (s *Source) Hidden(ctx context.Context, a *userinfo.Account) bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	u, ok := s.user(a.Login)
	return ok && u.Hidden
}

// FileNames returns the names of the files published by the user with
// this login, sorted; nil when the user is unknown.
func (s *Source) FileNames(login string) []string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	u, ok := s.user(login)
	if !ok {
		return nil
	}
	return slices.Sorted(maps.Keys(u.Files))
}
