package finger

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strings"
)

// DefaultMaxQueryBytes is the query line cap used when a Server's
// MaxQueryBytes is zero. It counts the line end.
const DefaultMaxQueryBytes = 512

// Errors returned by ParseQuery and ReadQuery. Every parse error wraps
// ErrInvalidQuery; callers branch on it with errors.Is.
var (
	ErrInvalidQuery = errors.New("finger: invalid query")
	ErrQueryTooLong = fmt.Errorf("%w: query line too long", ErrInvalidQuery)
)

// Query is a parsed finger query: "[/W ][user][@host...]".
type Query struct {
	// Verbose is true when the query started with "/W" (or "/w"): the
	// client asks for the long form.
	Verbose bool
	// User is the user part. "" asks for the list of logged-in users.
	// It may hold several names separated by single spaces.
	User string
	// Hosts lists the hosts after the user, left to right:
	// "user@h1@h2" has Hosts ["h1" "h2"]. A server forwards to the last.
	Hosts []string
}

// IsList reports whether q asks for the list of logged-in users ({C}):
// no user and no host.
func (q Query) IsList() bool { return q.User == "" && len(q.Hosts) == 0 }

// String returns the wire form of q, without the line end. It is the
// form the netkit client sends: "/W " is followed by the rest even when the
// rest is empty ("/W " for a verbose list).
func (q Query) String() string {
	var b strings.Builder
	if q.Verbose {
		b.WriteString("/W ")
	}
	b.WriteString(q.User)
	for _, h := range q.Hosts {
		b.WriteByte('@')
		b.WriteString(h)
	}
	return b.String()
}

// NextHop splits a query to be forwarded: host is the right-most host, and
// rest is the query to send there (Verbose kept, the last host removed).
// ok is false when q has no host.
func (q Query) NextHop() (host string, rest Query, ok bool) {
	n := len(q.Hosts)
	if n == 0 {
		return "", q, false
	}
	rest = Query{Verbose: q.Verbose, User: q.User}
	if n > 1 {
		rest.Hosts = append([]string(nil), q.Hosts[:n-1]...)
	}
	return q.Hosts[n-1], rest, true
}

// Names returns the space-separated names of the user part.
func (q Query) Names() []string { return strings.Fields(q.User) }

// ParseQuery parses one query line. A trailing line end (CRLF, LF, CR CR LF)
// is removed first. It accepts "/W" and "/w" followed by any run of spaces
// or TABs, "/W" alone, spaces around and between names, and any number of
// "@host" parts. Bytes 0x80-0xFF are allowed; NUL, other control bytes and
// Telnet IAC (0xFF) are errors wrapping ErrInvalidQuery. A word that
// begins with '-' is a name like any other.
func ParseQuery(line string) (Query, error) {
	line = strings.TrimRight(line, "\r\n")
	for i := 0; i < len(line); i++ {
		c := line[i]
		switch {
		case c == '\t':
		case c == 0:
			return Query{}, fmt.Errorf("%w: NUL byte at offset %d", ErrInvalidQuery, i)
		case c == 0xff:
			return Query{}, fmt.Errorf("%w: Telnet IAC byte at offset %d", ErrInvalidQuery, i)
		case c < 0x20 || c == 0x7f:
			return Query{}, fmt.Errorf("%w: control byte 0x%02x at offset %d", ErrInvalidQuery, c, i)
		}
	}
	rest := strings.TrimLeft(line, " \t")
	var q Query
	if len(rest) >= 2 && rest[0] == '/' && (rest[1] == 'W' || rest[1] == 'w') {
		after := rest[2:]
		if after != "" && after[0] != ' ' && after[0] != '\t' && after[0] != '@' {
			return Query{}, fmt.Errorf("%w: /W must be followed by a space", ErrInvalidQuery)
		}
		q.Verbose = true
		rest = after
	}
	rest = strings.Trim(rest, " \t")
	user, hosts, hasHost := strings.Cut(rest, "@")
	q.User = strings.Join(strings.Fields(user), " ")
	if hasHost {
		if strings.ContainsAny(hosts, " \t") {
			return Query{}, fmt.Errorf("%w: space in host name", ErrInvalidQuery)
		}
		q.Hosts = strings.Split(hosts, "@")
		for _, h := range q.Hosts {
			if h == "" {
				return Query{}, fmt.Errorf("%w: empty host name", ErrInvalidQuery)
			}
		}
	}
	return q, nil
}

// ReadQuery reads one query line from r: up to and including the first LF,
// or to EOF when the client half-closed without a line end. At most max
// bytes are read (DefaultMaxQueryBytes when max <= 0); a longer line yields
// an error wrapping ErrQueryTooLong. A lone CR does not end a line.
//
// The returned line has its line end removed.
func ReadQuery(r io.Reader, max int) (string, error) {
	if max <= 0 {
		max = DefaultMaxQueryBytes
	}
	br, ok := r.(*bufio.Reader)
	if !ok {
		br = bufio.NewReaderSize(io.LimitReader(r, int64(max)+1), 64)
	}
	var buf []byte
	for {
		c, err := br.ReadByte()
		if err != nil {
			if errors.Is(err, io.EOF) {
				if len(buf) > max {
					return "", ErrQueryTooLong
				}
				return strings.TrimRight(string(buf), "\r"), nil
			}
			return "", err
		}
		if c == '\n' {
			return strings.TrimRight(string(buf), "\r"), nil
		}
		buf = append(buf, c)
		if len(buf) >= max {
			return "", ErrQueryTooLong
		}
	}
}
