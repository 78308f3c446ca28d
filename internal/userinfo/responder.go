package userinfo

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/openfinger/finger"
)

// Texts the Responder sends. Each is one line; the Responder ends it with
// "\n" (the server turns that into CRLF).
const (
	// MsgListDenied refuses a {C} query when Policy.AllowList is off.
	MsgListDenied = "Finger online user list denied"
	// MsgForwardDenied refuses a query with @host when the Responder has
	// no Forward handler.
	MsgForwardDenied = "Finger forwarding service denied"
	// MsgUnavailable stands for a source failure; the failure itself is
	// only logged.
	MsgUnavailable = "finger: service temporarily unavailable."
	// MsgNoOne answers {C} when nobody is logged in.
	MsgNoOne = "No one logged on."
)

// Defaults used for zero Policy limits.
const (
	DefaultMinUID       = 1000
	DefaultMaxUID       = 60000
	DefaultMaxNames     = 8
	DefaultMaxMatches   = 16
	DefaultMaxScan      = 100000
	DefaultMaxFileBytes = 64 << 10
)

// Policy is what the operator allows a remote user to see. The zero value
// is the most restrictive policy: no {C} list, no user files, no real-name
// matching, system accounts and root hidden, default limits, and every
// detail that has a Hide switch shown. DefaultPolicy returns the usual
// choice.
type Policy struct {
	// AllowList answers {C} (the list of logged-in users). When false,
	// {C} gets MsgListDenied.
	AllowList bool
	// UserFiles shows the users' .pgpkey, .project and .plan (and "No
	// Plan.") in the long form.
	UserFiles bool
	// MatchRealNames lets a name match the words of the users' real names
	// (case-insensitive, whole words), as well as login names (exact).
	MatchRealNames bool

	// MinUID is the lowest UID of an ordinary account; 0 means
	// DefaultMinUID (the usual UID_MIN of /etc/login.defs). Accounts
	// below it are system accounts: never found by real name, and shown
	// (by login and in {C}) only when ShowSystemAccounts is set.
	MinUID uint32
	// MaxUID is the highest UID of an ordinary account; 0 means
	// DefaultMaxUID (the usual UID_MAX). Accounts above it (nobody at
	// 65534, systemd's dynamic users from 61184) are system accounts too.
	MaxUID uint32
	// ShowSystemAccounts shows system accounts other than root when
	// asked for by login name, and their sessions in {C}.
	ShowSystemAccounts bool
	// AllowRoot shows root (UID 0 or login "root") when asked for by login
	// name, and its sessions in {C}. Root is never found by real name.
	AllowRoot bool

	// MaxNames is the number of names answered per query; 0 or less means
	// DefaultMaxNames. Further names are ignored, with a notice.
	MaxNames int
	// MaxMatches caps the accounts one name finds by real name; 0 or less
	// means DefaultMaxMatches.
	MaxMatches int
	// MaxScan caps the accounts examined by one real-name search; 0 or
	// less means DefaultMaxScan.
	MaxScan int
	// MaxFileBytes caps what is shown of each user file; 0 or less means
	// DefaultMaxFileBytes. A longer file is cut, with a visible notice.
	MaxFileBytes int64

	// Privacy switches: each hides one detail everywhere it appears.
	HideHome       bool // home directory
	HideShell      bool // login shell
	HideOffice     bool // office
	HidePhones     bool // office and home phone numbers
	HideLastLogin  bool // "Last login ..." and "Never logged in."
	HideMail       bool // mail status
	HideRemoteHost bool // the host a session comes from

	// UnknownReplyFloor is the least time, per name asked, before a reply
	// that says a name is unknown is written, counted from the start of
	// the query; 0 means DefaultUnknownReplyFloor, below 0 switches it
	// off. Hidden users, root, system accounts and logins that do not
	// exist all get that same line, but not for the same work: without a
	// floor, their timing would tell them apart. The floor rises with the
	// slowest such answers of the last seconds (see pacer).
	UnknownReplyFloor time.Duration
}

// DefaultPolicy returns the policy fingerd uses unless configured
// otherwise: {C} answered, user files shown, real-name matching on,
// system accounts and root hidden, default limits.
func DefaultPolicy() Policy {
	return Policy{
		AllowList:      true,
		UserFiles:      true,
		MatchRealNames: true,
		MinUID:         DefaultMinUID,
		MaxUID:         DefaultMaxUID,
		MaxNames:       DefaultMaxNames,
		MaxMatches:     DefaultMaxMatches,
		MaxScan:        DefaultMaxScan,
		MaxFileBytes:   DefaultMaxFileBytes,
	}
}

// normalized returns p with every zero limit replaced by its default.
func (p Policy) normalized() Policy {
	if p.MinUID == 0 {
		p.MinUID = DefaultMinUID
	}
	if p.MaxUID == 0 {
		p.MaxUID = DefaultMaxUID
	}
	if p.MaxNames <= 0 {
		p.MaxNames = DefaultMaxNames
	}
	if p.MaxMatches <= 0 {
		p.MaxMatches = DefaultMaxMatches
	}
	if p.MaxScan <= 0 {
		p.MaxScan = DefaultMaxScan
	}
	if p.MaxFileBytes <= 0 {
		p.MaxFileBytes = DefaultMaxFileBytes
	}
	if p.UnknownReplyFloor == 0 {
		p.UnknownReplyFloor = DefaultUnknownReplyFloor
	}
	return p
}

// isRoot reports whether a is the superuser.
func isRoot(a *Account) bool { return a.UID == 0 || a.Login == "root" }

// shown reports whether p lets a be shown at all (by login, or in {C}).
// p is normalized.
func (p *Policy) shown(a *Account) bool {
	switch {
	case a.Hosted:
		return true
	case isRoot(a):
		return p.AllowRoot
	case p.system(a):
		return p.ShowSystemAccounts
	}
	return true
}

// Serves reports whether p lets a be shown at all, by login or in the
// list: root only with AllowRoot, system accounts only with
// ShowSystemAccounts. fingerd derives what it may read from it.
func (p Policy) Serves(a *Account) bool {
	n := p.normalized()
	return n.shown(a)
}

// system reports whether a is a system account: its UID is outside
// MinUID..MaxUID. p is normalized.
func (p *Policy) system(a *Account) bool { return a.UID < p.MinUID || a.UID > p.MaxUID }

// realNameCandidate reports whether a may be found by real name: ordinary
// accounts only. p is normalized.
func (p *Policy) realNameCandidate(a *Account) bool {
	return a.Hosted || !isRoot(a) && !p.system(a)
}

// Responder answers finger queries about the users of a host from its
// sources, in the BSD finger layout. It implements finger.Handler and is
// safe for concurrent use once configured; its fields must not change
// while it serves.
//
// A {C} query (empty user) lists the logged-in users, one line per session,
// and the Listed users; with /W it gives the long form of each logged-in
// user. A {U} query gives the
// long form of every user the names match. A query with @host is handed to
// Forward, or refused.
//
// Everything that comes from a user (real name, office, phones, files,
// remote host, tty) passes the UTF-8-safe output filter. Source failures
// are logged to Logger and shown to the remote user only as MsgUnavailable
// or as a missing detail.
//
// The Responder itself keeps nothing between queries: each query reads the
// sessions once, looks up each name once, and enumerates the accounts at
// most once (only when a name is not a login and real-name matching is
// on). Caching belongs to the sources, which know when their data
// changes.
type Responder struct {
	// Sources. A nil source is not available: its details are left out.
	// Without Accounts nobody is found and {C} lists nobody.
	Accounts   Accounts
	Sessions   Sessions
	LastLogins LastLogins
	Mailboxes  Mailboxes
	Files      Files // user files and .nofinger; nil: no files, nobody hidden

	// Policy is what may be shown. Its zero value is the most restrictive;
	// see DefaultPolicy.
	Policy Policy

	// Listed are users shown in the {C} list although they have no
	// session: users that exist outside Accounts, such as the daemon's
	// configured virtual users. Each gets one line with its login and
	// name (and office and phone, unless hidden) and no tty, idle or login
	// time, sorted in with the logged-in users; a login that is logged in
	// as well is shown once, from its sessions. The policy's account rules
	// and Files' hiding do not apply to them: whoever configured the
	// Responder listed them. They have no long form in {C} with /W.
	Listed []Account
	// Directory adds users to the {C} list the way Listed does, asked at
	// each query (hosted users who chose to be listed); nil: none.
	Directory Directory

	// Forward answers queries with @host. Nil refuses them with
	// MsgForwardDenied.
	Forward finger.Handler

	// Now returns the current time; nil means time.Now.
	Now func() time.Time
	// Location is the time zone times are shown in; nil means time.Local.
	Location *time.Location
	// Logger receives source failures; nil discards them.
	Logger *slog.Logger

	pace pacer
}

var _ finger.Handler = (*Responder)(nil)

// request is the state of one query being answered.
type request struct {
	rs    *Responder
	ctx   context.Context
	pol   Policy
	start time.Time // when the Responder began the query
	now   time.Time
	loc   *time.Location
	log   *slog.Logger
	out   output

	sessions      []Session // all sessions, when sessionsKnown
	sessionsKnown bool
}

// ServeFinger answers r, writing the reply to w.
func (rs *Responder) ServeFinger(ctx context.Context, w io.Writer, r *finger.Request) {
	q := r.Query
	if len(q.Hosts) > 0 {
		if rs.Forward != nil {
			rs.Forward.ServeFinger(ctx, w, r)
			return
		}
		io.WriteString(w, MsgForwardDenied+"\n")
		return
	}
	bp := outBufs.Get().(*[]byte)
	req := &request{
		rs:    rs,
		ctx:   ctx,
		start: time.Now(),
		pol:   rs.Policy.normalized(),
		loc:   rs.Location,
		log:   rs.Logger,
		out:   output{w: w, b: (*bp)[:0]},
	}
	defer func() { *bp = req.out.b; putOutBuf(bp) }()
	if rs.Now != nil {
		req.now = rs.Now()
	} else {
		req.now = time.Now()
	}
	if req.loc == nil {
		req.loc = time.Local
	}
	if req.log == nil {
		req.log = slog.New(slog.DiscardHandler)
	}
	names := q.Names()
	if len(names) == 0 {
		req.list(q.Verbose)
	} else {
		req.users(names)
	}
	req.out.flush()
}

// failed logs a source failure for the operator.
func (req *request) failed(source string, err error, attrs ...any) {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, ErrReported) {
		return
	}
	req.log.Warn("userinfo: source failed", append([]any{"source", source, "err", err}, attrs...)...)
}

// loadSessions fetches every session once per query.
func (req *request) loadSessions() {
	if req.sessionsKnown || req.rs.Sessions == nil {
		return
	}
	s, err := req.rs.Sessions.Sessions(req.ctx)
	if err != nil {
		req.failed("sessions", err)
		return
	}
	req.sessions = s
	req.sessionsKnown = true
}

// sessionsOf returns the sessions of login, in source order.
func (req *request) sessionsOf(login string) []Session {
	var out []Session
	for i := range req.sessions {
		if req.sessions[i].Login == login {
			out = append(out, req.sessions[i])
		}
	}
	return out
}

// hidden reports whether a asked not to be fingered.
func (req *request) hidden(a *Account) bool {
	return req.rs.Files != nil && req.rs.Files.Hidden(req.ctx, a)
}

// person is one user to show, with the sessions shown for it.
type person struct {
	acct     *Account
	sessions []Session
}

// list answers {C}.
func (req *request) list(verbose bool) {
	if !req.pol.AllowList {
		req.out.line(MsgListDenied)
		return
	}
	var people []person
	if req.rs.Sessions != nil && req.rs.Accounts != nil {
		req.loadSessions()
		if !req.sessionsKnown {
			if req.ctx.Err() == nil {
				req.out.line(MsgUnavailable)
			}
			return
		}
		people = req.loggedIn()
		if req.ctx.Err() != nil {
			return
		}
	}
	if !verbose {
		people = req.appendListed(people)
	}
	if len(people) == 0 {
		req.out.line(MsgNoOne)
		return
	}
	if verbose {
		for i := range people {
			if i > 0 {
				req.out.str("\n")
			}
			req.long(&people[i])
			if req.ctx.Err() != nil || req.out.err != nil {
				return
			}
		}
		return
	}
	slices.SortStableFunc(people, func(a, b person) int { return strings.Compare(a.acct.Login, b.acct.Login) })
	req.out.b = appendShortList(req.out.b, people, &req.pol, req.now, req.loc)
}

// appendListed adds the Listed users that are not among people, each
// with one empty session: no tty, idle time or login time.
func (req *request) appendListed(people []person) []person {
	listed := req.rs.Listed
	if req.rs.Directory != nil {
		more, err := req.rs.Directory.Listed(req.ctx)
		if err != nil {
			req.failed("directory", err)
		}
		listed = append(slices.Clip(listed), more...)
	}
	for i := range listed {
		a := listed[i]
		if a.Login == "" || slices.ContainsFunc(people, func(p person) bool { return p.acct.Login == a.Login }) {
			continue
		}
		people = append(people, person{acct: &a, sessions: []Session{{Login: a.Login, Idle: -1}}})
	}
	return people
}

// loggedIn groups the sessions by user, in order of first appearance,
// leaving out users that are unknown, hidden or not shown by the policy.
func (req *request) loggedIn() []person {
	index := make(map[string]int) // login → index in people, or -1
	var people []person
	for _, s := range req.sessions {
		i, seen := index[s.Login]
		if !seen {
			i = -1
			if a := req.lookupShown(s.Login); a != nil {
				i = len(people)
				people = append(people, person{acct: a})
			}
			index[s.Login] = i
		}
		if i >= 0 {
			people[i].sessions = append(people[i].sessions, s)
		}
	}
	return people
}

// lookupShown returns the account with this login when it exists, the
// policy shows it and it is not hidden; nil otherwise (failures logged).
func (req *request) lookupShown(login string) *Account {
	if login == "" || req.ctx.Err() != nil {
		return nil
	}
	a, err := req.rs.Accounts.Lookup(req.ctx, login)
	if err != nil {
		if !errors.Is(err, ErrNotFound) {
			req.failed("accounts", err, "login", login)
		}
		return nil
	}
	if a == nil || a.Login != login || !req.pol.shown(a) || req.hidden(a) {
		return nil
	}
	return a
}
