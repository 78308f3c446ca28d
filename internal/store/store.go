package store

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
)

// Errors that callers branch on. Drivers wrap them with %w and add detail.
var (
	// ErrNotFound means the user (or the user's text) does not exist.
	ErrNotFound = errors.New("store: not found")
	// ErrExists means a user of that name already exists.
	ErrExists = errors.New("store: already exists")
	// ErrInvalid means the input was refused: a name ValidName refuses, an
	// unknown kind, a text ValidText refuses, a bad URL or token hash.
	ErrInvalid = errors.New("store: invalid")
	// ErrUnavailable means the store cannot do the work now: a read-only
	// or full disk, a database that stays locked or cannot be reached. The
	// error wraps the cause and its text says what it was; reads from a
	// cached Snapshot can go on.
	ErrUnavailable = errors.New("store: unavailable")
	// ErrClosed is returned by the methods of a closed store.
	ErrClosed = errors.New("store: closed")
	// ErrToken means a write made for the holder of a token was refused:
	// the user's token hash was not the one given when the write would
	// have committed (the token was replaced).
	ErrToken = errors.New("store: token does not match")
)

// Kind names one of the texts a user publishes.
type Kind string

// The kinds of text a user can publish, like the dot-files of an account.
const (
	KindPlan    Kind = "plan"
	KindProject Kind = "project"
	KindPGPKey  Kind = "pgpkey"
)

// Kinds lists every kind, in the order answers show them.
var Kinds = []Kind{KindPlan, KindProject, KindPGPKey}

// Valid reports whether k is one of Kinds.
func (k Kind) Valid() bool {
	return k == KindPlan || k == KindProject || k == KindPGPKey
}

// HistoryLimit is how many changes a store keeps per user and kind; older
// ones are dropped by the write that adds a newer one.
const HistoryLimit = 50

// MaxTextBytes is the largest text a store accepts, whatever the policy
// of its callers (which is usually much smaller).
const MaxTextBytes = 1 << 20

// MaxNameBytes is the longest user name.
const MaxNameBytes = 32

// User is a hosted user.
type User struct {
	Name     string    // login: see ValidName
	RealName string    // name in real life; may be empty
	Listed   bool      // shown in directories: finger {C}, the web index, feeds of all users
	Hidden   bool      // the user asked not to be fingered, like an account's ~/.nofinger
	Created  time.Time // set by CreateUser when zero
}

// Text is the current version of one published text.
type Text struct {
	Kind    Kind
	Body    string
	Changed time.Time
}

// Change is one entry of the history: a text published or deleted.
type Change struct {
	Name    string
	Kind    Kind
	Body    string // "" when Deleted
	At      time.Time
	Deleted bool
	Version int64 // the store version of the write: unique within a store
}

// Entry is a user with every text the user currently publishes.
type Entry struct {
	User
	Texts map[Kind]Text // only the kinds that exist; never nil
	// TokenHash is the hash of the user's publishing token (see
	// HashToken): a hash, so holding it reveals no token.
	TokenHash []byte
	// Version is the store version of the last write to this user or
	// its texts.
	Version int64
}

// Snapshot is the directory, or what changed in it, at one version.
type Snapshot struct {
	// Version is the store version the snapshot reflects.
	Version int64
	// Full is true when Users is the whole directory: the caller replaces
	// what it holds. Otherwise Users holds the users created or changed
	// after the version asked for, and Deleted the names deleted after it
	// (and not created again).
	Full    bool
	Users   []Entry // sorted by name
	Deleted []string
}

// Store is a directory of hosted users. Implementations are safe for
// concurrent use. Methods taking a name return an error wrapping
// ErrInvalid for a name ValidName refuses, and ErrNotFound when no such
// user exists. Times returned are in UTC, truncated to the microsecond.
type Store interface {
	// Migrate brings the schema up to the newest this build knows and
	// returns its version. It is safe to run at every start, from several
	// processes at once. A schema newer than this build knows is an error.
	Migrate(ctx context.Context) (schema int, err error)

	// CreateUser adds u with the given token hash (see HashToken and
	// ValidTokenHash). It returns an error wrapping ErrExists when the
	// name is taken.
	CreateUser(ctx context.Context, u User, tokenHash []byte) error
	// UpdateUser sets the RealName, Listed and Hidden of an existing user.
	UpdateUser(ctx context.Context, u User) error
	// DeleteUser removes a user with their texts, history and token.
	DeleteUser(ctx context.Context, name string) error
	// User returns one user.
	User(ctx context.Context, name string) (User, error)
	// Users returns every user, sorted by name.
	Users(ctx context.Context) ([]User, error)

	// SetToken replaces the user's token hash.
	SetToken(ctx context.Context, name string, tokenHash []byte) error
	// TokenHash returns the user's token hash.
	TokenHash(ctx context.Context, name string) ([]byte, error)

	// PutText publishes body as the user's text of kind k and records the
	// change in the history.
	PutText(ctx context.Context, name string, k Kind, body string) (Change, error)
	// PutTextWithToken is PutText on behalf of the holder of a token: the
	// write is made only if the user's token hash is tokenHash when it
	// commits, and otherwise fails with an error wrapping ErrToken,
	// writing nothing. A publisher whose token was checked before can
	// write with it without reading the hash again: a token replaced in
	// the meantime is refused by the write itself.
	PutTextWithToken(ctx context.Context, name string, tokenHash []byte, k Kind, body string) (Change, error)
	// DeleteText removes the user's text of kind k (ErrNotFound when there
	// is none) and records the deletion in the history.
	DeleteText(ctx context.Context, name string, k Kind) (Change, error)

	// Version returns the store version: cheap enough to poll.
	Version(ctx context.Context) (int64, error)
	// Snapshot returns the directory: all of it when since is 0 (or when
	// the store cannot tell what changed after since), otherwise what
	// changed after version since. See the package documentation.
	Snapshot(ctx context.Context, since int64) (*Snapshot, error)

	// History returns the user's newest changes of kind k, newest first,
	// at most limit of them (none when limit <= 0).
	History(ctx context.Context, name string, k Kind, limit int) ([]Change, error)
	// Recent returns the newest changes of kind k of all listed users
	// that are not hidden, newest first, at most limit of them (none when
	// limit <= 0).
	Recent(ctx context.Context, k Kind, limit int) ([]Change, error)

	// Close releases the store. Methods called after it return an error
	// wrapping ErrClosed.
	Close() error
}

// Watcher is implemented by stores that can announce writes sooner than
// polling Version would notice them. Every driver implements it: the
// conformance suite (internal/store/storetest) fails a store that does not.
type Watcher interface {
	// Watch returns a channel that receives a value after writes to the
	// store (several writes may be announced by one value). The channel is
	// closed when ctx ends or the store is closed.
	Watch(ctx context.Context) <-chan struct{}
}

// Backuper is implemented by stores that can copy themselves while in use.
type Backuper interface {
	// Backup writes a consistent copy of the store to the file path, which
	// must not exist.
	Backup(ctx context.Context, path string) error
}

// Migration is one step of a driver's schema. A driver lists its
// migrations in order, numbered from 1 without gaps; Migrate applies each
// one not yet recorded in schema_migrations, in its own transaction, and
// records it there in that transaction. Published migrations never change:
// a change of schema is a new migration.
type Migration struct {
	Version int
	Name    string // a few words, recorded with the version
	SQL     string // statements in the driver's dialect
}

// CheckMigrations reports an error unless ms is numbered 1, 2, 3... in
// order, each with a name and some SQL. Drivers call it in a test.
func CheckMigrations(ms []Migration) error {
	for i, m := range ms {
		if m.Version != i+1 {
			return fmt.Errorf("store: migration %d has version %d, want %d", i, m.Version, i+1)
		}
		if m.Name == "" || strings.TrimSpace(m.SQL) == "" {
			return fmt.Errorf("store: migration %d has no name or no SQL", m.Version)
		}
	}
	return nil
}

// ValidName reports an error wrapping ErrInvalid unless name can be a
// hosted user's name: 1 to MaxNameBytes of lower-case ASCII letters,
// digits, '.', '_' and '-', starting with a letter or digit. Such a name is
// a finger {U} that no part of a query grammar or URL path can misread.
func ValidName(name string) error {
	if name == "" || len(name) > MaxNameBytes {
		return fmt.Errorf("%w: name %q: 1 to %d characters", ErrInvalid, name, MaxNameBytes)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case 'a' <= c && c <= 'z', '0' <= c && c <= '9':
		case (c == '.' || c == '_' || c == '-') && i > 0:
		default:
			return fmt.Errorf("%w: name %q: only a-z, 0-9, '.', '_' and '-', starting with a letter or digit", ErrInvalid, name)
		}
	}
	return nil
}

// ValidKind reports an error wrapping ErrInvalid unless k is one of
// Kinds.
func ValidKind(k Kind) error {
	if !k.Valid() {
		return fmt.Errorf("%w: kind %q", ErrInvalid, k)
	}
	return nil
}

// ValidText reports an error wrapping ErrInvalid unless body can be
// stored: valid UTF-8, no NUL byte, at most MaxTextBytes.
func ValidText(body string) error {
	switch {
	case len(body) > MaxTextBytes:
		return fmt.Errorf("%w: text of %d bytes: at most %d", ErrInvalid, len(body), MaxTextBytes)
	case !utf8.ValidString(body):
		return fmt.Errorf("%w: text is not UTF-8", ErrInvalid)
	case strings.IndexByte(body, 0) >= 0:
		return fmt.Errorf("%w: text holds a NUL byte", ErrInvalid)
	}
	return nil
}

// ValidTokenHash reports an error wrapping ErrInvalid unless h has the
// length of a HashToken result.
func ValidTokenHash(h []byte) error {
	if len(h) != sha256.Size {
		return fmt.Errorf("%w: token hash of %d bytes, want %d", ErrInvalid, len(h), sha256.Size)
	}
	return nil
}

// ValidRealName reports an error wrapping ErrInvalid unless s can be a
// real name: at most 256 bytes of UTF-8 on one line, no control characters.
func ValidRealName(s string) error {
	if len(s) > 256 || !utf8.ValidString(s) {
		return fmt.Errorf("%w: real name: at most 256 bytes of UTF-8", ErrInvalid)
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			return fmt.Errorf("%w: real name holds a control character", ErrInvalid)
		}
	}
	return nil
}

// TokenBytes is the number of random bytes in a token.
const TokenBytes = 32

// NewToken returns a new publishing token (TokenBytes random bytes,
// base64url without padding) and its hash for the store.
func NewToken() (token string, hash []byte) {
	b := make([]byte, TokenBytes)
	rand.Read(b) // never fails (crypto/rand since Go 1.24)
	token = base64.RawURLEncoding.EncodeToString(b)
	return token, HashToken(token)
}

// HashToken returns the hash a store keeps for token: its SHA-256. A
// token has 256 random bits, so a fast hash is enough.
func HashToken(token string) []byte {
	h := sha256.Sum256([]byte(token))
	return h[:]
}

// TokenMatches reports, in constant time, whether token hashes to hash.
func TokenMatches(hash []byte, token string) bool {
	h := HashToken(token)
	return len(hash) == len(h) && subtle.ConstantTimeCompare(hash, h) == 1
}

// Now returns the current time as stores record it: UTC, truncated to the
// microsecond.
func Now() time.Time {
	return time.Now().UTC().Truncate(time.Microsecond)
}

// An OpenFunc opens the store at url (of its driver's scheme).
type OpenFunc func(ctx context.Context, url string) (Store, error)

var (
	driversMu sync.RWMutex
	drivers   = make(map[string]OpenFunc)
)

// Register makes a driver available for URLs of the given scheme
// ("sqlite", "postgres"). It panics if the scheme is registered twice.
func Register(scheme string, open OpenFunc) {
	driversMu.Lock()
	defer driversMu.Unlock()
	if _, dup := drivers[scheme]; dup {
		panic("store: Register called twice for scheme " + scheme)
	}
	drivers[scheme] = open
}

// Schemes returns the registered schemes, sorted.
func Schemes() []string {
	driversMu.RLock()
	defer driversMu.RUnlock()
	var s []string
	for k := range drivers {
		s = append(s, k)
	}
	sort.Strings(s)
	return s
}

// Open opens the store at url with the driver registered for its scheme,
// the part before the first ':' ("sqlite:/var/lib/fingerd/fingerd.db",
// "postgres://host/db"). It does not migrate: call Migrate.
func Open(ctx context.Context, url string) (Store, error) {
	scheme, _, ok := strings.Cut(url, ":")
	if !ok || scheme == "" {
		return nil, fmt.Errorf("%w: store URL %q has no scheme (want one of %s)", ErrInvalid, url, strings.Join(Schemes(), ", "))
	}
	if scheme == "postgresql" {
		scheme = "postgres"
	}
	driversMu.RLock()
	open := drivers[scheme]
	driversMu.RUnlock()
	if open == nil {
		return nil, fmt.Errorf("%w: no store driver for %q (have %s)", ErrInvalid, scheme, strings.Join(Schemes(), ", "))
	}
	return open(ctx, url)
}
