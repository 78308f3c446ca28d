// Package hostusers builds the userinfo.Responder that answers finger
// queries about this host's users: accounts from passwd, sessions from
// systemd-logind with a utmp fallback, last logins from lastlog, lastlog2
// and wtmpdb (the newest record wins), mail
// status from the spool, and the files users publish in their homes.
//
// fingerd serves the Responder it returns; the finger client calls it for
// local lookups, so "finger alice" and "finger alice@localhost" give the
// same answer for the same options.
package hostusers

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/openfinger/finger/internal/config"
	"github.com/openfinger/finger/internal/userinfo"
	"github.com/openfinger/finger/internal/userinfo/lastlog"
	"github.com/openfinger/finger/internal/userinfo/logind"
	"github.com/openfinger/finger/internal/userinfo/logins"
	"github.com/openfinger/finger/internal/userinfo/mail"
	"github.com/openfinger/finger/internal/userinfo/passwd"
	"github.com/openfinger/finger/internal/userinfo/utmp"
)

// Options says where the user information comes from and what may be
// shown. They are the [sources] and [policy] tables of fingerd.toml(5).
type Options struct {
	Sources config.Sources
	Policy  config.Policy
	// Logger receives source failures; nil discards them.
	Logger *slog.Logger
	// Files reads the users' published files and ~/.nofinger; nil means
	// a passwd.Files with this process's privileges, hiding the users of
	// unsearchable homes when Policy.HideUnreadableHomes is set.
	Files userinfo.Files
	// NameServiceLimited, when not nil, is called for each account
	// lookup the name service's timeout or bound cut short.
	NameServiceLimited func()
}

// FromConfig returns the Options of a daemon configuration.
func FromConfig(c *config.Config) Options {
	return Options{Sources: c.Sources, Policy: c.Policy}
}

// DefaultOptions returns the Options of the default configuration.
func DefaultOptions() Options { return FromConfig(config.Default()) }

// New returns a Responder for this host's users. Paths left empty in
// opts.Sources switch a source off where the configuration allows it
// (lastlog, lastlog2, wtmpdb, mail spool) and mean the system default otherwise (passwd,
// utmp, login.defs). An unknown session source name is an error.
//
// Sessions, last logins, mail status and the users' files (and
// ~/.nofinger) are cached for userinfo.DefaultCacheTTL (one second), in
// caches bounded in entries and bytes: a busy daemon answers repeated
// queries without touching the file system, and changes show within a
// second. Accounts come from passwd.Accounts, which rereads the file when
// it changes. Each call of New starts with empty caches (fingerd calls it
// again on reload). The session source is wrapped in a
// userinfo.CachedSessions, whose Close closes it.
//
// The Responder has no Forward handler (queries with @host are refused);
// callers add one, and other sources, before serving.
func New(opts Options) (*userinfo.Responder, error) {
	src := opts.Sources
	var sessions userinfo.Sessions
	switch src.Sessions {
	case config.SessionsAuto, "":
		sessions = &logind.Fallback{Primary: &logind.Sessions{}, Secondary: &utmp.Sessions{Path: src.Utmp}}
	case config.SessionsLogind:
		sessions = &logind.Sessions{}
	case config.SessionsUtmp:
		sessions = &utmp.Sessions{Path: src.Utmp}
	case config.SessionsNone:
	default:
		return nil, fmt.Errorf("hostusers: unknown session source %q", src.Sessions)
	}
	pol, err := policy(opts.Policy, src.LoginDefs)
	if err != nil {
		return nil, err
	}
	files := opts.Files
	if files == nil {
		files = &passwd.Files{HideUnreadableHomes: opts.Policy.HideUnreadableHomes}
	}
	r := &userinfo.Responder{
		Accounts: &passwd.Accounts{
			Path:          src.Passwd,
			LookupTimeout: src.NameServiceTimeout.D(),
			MaxLookups:    src.NameServiceMaxLookups,
			Logger:        opts.Logger,
			OnLimit:       opts.NameServiceLimited,
		},
		Files:  &userinfo.CachedFiles{Source: files},
		Policy: pol,
		Logger: opts.Logger,
	}
	if sessions != nil {
		r.Sessions = &userinfo.CachedSessions{Source: sessions}
	}
	if ll := lastLogins(src, opts.Logger); ll != nil {
		r.LastLogins = &userinfo.CachedLastLogins{Source: ll}
	}
	if src.MailSpool != "" {
		r.Mailboxes = &userinfo.CachedMailboxes{Source: &mail.Spool{Dir: src.MailSpool}}
	}
	return r, nil
}

// Served returns the accounts of the passwd file (not the name service)
// that the policy lets fingerd show: ordinary accounts, and root or system
// accounts only when the policy allows them.
func Served(ctx context.Context, opts Options) ([]*userinfo.Account, error) {
	pol, err := policy(opts.Policy, opts.Sources.LoginDefs)
	if err != nil {
		return nil, err
	}
	all, err := (&passwd.Accounts{Path: opts.Sources.Passwd, NoNSS: true}).All(ctx)
	if err != nil {
		return nil, fmt.Errorf("hostusers: %w", err)
	}
	var out []*userinfo.Account
	for _, a := range all {
		if pol.Serves(a) {
			out = append(out, a)
		}
	}
	return out, nil
}

// lastLogins returns the configured last-login sources, or nil when all
// are off. With several, the newest record wins; a database that fails is
// logged to log once, when it starts failing.
func lastLogins(src config.Sources, log *slog.Logger) userinfo.LastLogins {
	var n logins.Newest
	if src.Lastlog != "" {
		n = append(n, &lastlog.File{Path: src.Lastlog})
	}
	if src.Lastlog2 != "" {
		n = append(n, &logins.Lastlog2{Path: src.Lastlog2, Logger: log})
	}
	if len(src.Wtmpdb) > 0 {
		n = append(n, &logins.Wtmpdb{Paths: src.Wtmpdb, Logger: log})
	}
	switch len(n) {
	case 0:
		return nil
	case 1:
		return n[0]
	}
	return n
}

// policy converts the [policy] table. A zero min_uid means UID_MIN from
// login.defs.
func policy(p config.Policy, loginDefs string) (userinfo.Policy, error) {
	pol := userinfo.Policy{
		AllowList:          p.List,
		UserFiles:          p.UserFiles,
		MatchRealNames:     p.MatchRealNames,
		ShowSystemAccounts: p.ShowSystemAccounts,
		AllowRoot:          p.AllowRoot,
		MaxNames:           p.MaxNames,
		MaxFileBytes:       p.MaxFileBytes,
		HideHome:           p.HideHome,
		HideShell:          p.HideShell,
		HideLastLogin:      p.HideLastLogin,
		HideMail:           p.HideMail,
		HideRemoteHost:     p.HideRemoteHost,
		UnknownReplyFloor:  p.UnknownReplyFloor.D(),
	}
	if pol.UnknownReplyFloor == 0 {
		pol.UnknownReplyFloor = -1 // "0s" in the configuration: off
	}
	switch {
	case p.MinUID < 0 || p.MinUID > 1<<32-1:
		return userinfo.Policy{}, fmt.Errorf("hostusers: min_uid %d out of range", p.MinUID)
	case p.MinUID > 0:
		pol.MinUID = uint32(p.MinUID)
	default:
		min, err := passwd.UIDMin(loginDefs)
		if err != nil {
			return userinfo.Policy{}, fmt.Errorf("hostusers: %w", err)
		}
		pol.MinUID = min
	}
	return pol, nil
}
