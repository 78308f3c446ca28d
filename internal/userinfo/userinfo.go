// Package userinfo answers finger queries about the users of a host: it
// matches a query against accounts, gathers sessions, last login, mail status
// and the users' published files, and renders the familiar BSD layout.
//
// The data comes from sources that implement the small interfaces below;
// the subpackages provide them (passwd, utmp, logind, lastlog, mail,
// virtual). Nothing here knows about sockets: the Responder is a
// finger.Handler that writes to an io.Writer.
package userinfo

import (
	"context"
	"errors"
	"time"
)

// ErrNotFound is returned by sources when a user or record does not exist.
var ErrNotFound = errors.New("userinfo: not found")

// ErrReported marks the failure of a source that reports its own failures
// to the operator (once when it starts failing, not once per query). The
// Responder treats such an error as any other failure but does not log it.
var ErrReported = errors.New("userinfo: failure already reported")

// Account is one user account, with its GECOS field already split.
type Account struct {
	Login       string
	UID         uint32
	GID         uint32
	Name        string // real name: leading '*' removed, '&' expanded to the capitalised login
	Office      string
	OfficePhone string
	HomePhone   string
	Other       string // fifth and later GECOS fields, joined by ','
	Home        string
	Shell       string
	// Hosted marks a user without a system account who publishes texts
	// through the daemon (see internal/userinfo/hosted): the policy treats
	// it as an ordinary account whatever its UID, and its long form shows
	// no directory, shell, sessions, last login or mail, but when its plan
	// last changed.
	Hosted bool
}

// Session is one login session of a user.
type Session struct {
	Login     string
	TTY       string        // "pts/3", "tty5"; a seat name ("seat0") when there is no tty
	Host      string        // remote host; "" for a local login
	LoginTime time.Time     // zero when unknown
	Idle      time.Duration // <0 when unknown
	// MessagesOff is true when the terminal does not accept messages (netkit
	// shows a '*' before the tty).
	MessagesOff bool
}

// LastLogin is the most recent login of a user as recorded by lastlog.
type LastLogin struct {
	Time time.Time
	TTY  string
	Host string
}

// MailStatus describes a user's mail spool.
type MailStatus struct {
	// Exists is false when there is no spool file or it is empty ("No mail.").
	Exists bool
	// Unread is true when the spool was modified after it was last read.
	Unread   bool
	Received time.Time // modification time of the spool
	Read     time.Time // access time of the spool
}

// Accounts is a source of user accounts.
type Accounts interface {
	// Lookup returns the account with exactly this login name, or an error
	// wrapping ErrNotFound.
	Lookup(ctx context.Context, login string) (*Account, error)
	// All returns every account the source can enumerate, for real-name
	// matching. Sources that cannot enumerate return what they can.
	All(ctx context.Context) ([]*Account, error)
}

// UnknownLookups is implemented by Accounts sources whose Lookup costs
// more for a login they do not know than for one they do (passwd asks the
// name service only for logins its file lacks). The Responder calls
// LookupAsUnknown for a login it found but answers as unknown (hidden,
// root, a system account), so that answering it costs the same work as
// answering a login that exists nowhere, and takes the same time.
type UnknownLookups interface {
	// LookupAsUnknown does the work Lookup does for a login the source
	// does not know, and discards the result.
	LookupAsUnknown(ctx context.Context, login string)
}

// Sessions is a source of login sessions.
type Sessions interface {
	// Sessions returns the current sessions of all users. A host without
	// any session source returns an empty list, not an error.
	Sessions(ctx context.Context) ([]Session, error)
}

// LastLogins is a source of last-login records.
type LastLogins interface {
	// LastLogin returns the last login of a, or an error wrapping
	// ErrNotFound when there is no record.
	LastLogin(ctx context.Context, a *Account) (LastLogin, error)
}

// Mailboxes reports mail status.
type Mailboxes interface {
	Mail(ctx context.Context, a *Account) (MailStatus, error)
}

// UserFile is the content of a file a user published (.plan and friends).
type UserFile struct {
	Data      []byte
	Truncated bool // the file was longer than the cap; Data holds the first bytes
	// Changed is when the text last changed, when the source knows
	// (hosted users' texts); zero otherwise.
	Changed time.Time
}

// Files reads the files users publish in their home directory.
type Files interface {
	// ReadFile returns the named dot-file (".plan", ".project", ".pgpkey")
	// of a, at most max bytes. It returns an error wrapping ErrNotFound when
	// the file does not exist or is not published (not a regular file owned
	// by the user and readable by others, a symlink, a FIFO...).
	ReadFile(ctx context.Context, a *Account, name string, max int64) (UserFile, error)
	// Hidden reports whether a asked not to be fingered (~/.nofinger).
	Hidden(ctx context.Context, a *Account) bool
}

// Directory lists users to show in {C} although they have no session,
// such as the hosted users who asked to be listed.
type Directory interface {
	// Listed returns the users to list, in any order.
	Listed(ctx context.Context) ([]Account, error)
}
