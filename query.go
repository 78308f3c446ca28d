package finger

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strings"
)

// DefaultMaxQueryBytes is the query line cap used when a Server's
// MaxQueryBytes is zero or ReadQuery's max is not positive. It counts the
// line end.
const DefaultMaxQueryBytes = 512

// Errors returned by ParseQuery and ReadQuery. Every parse error wraps
// ErrInvalidQuery, and ErrQueryTooLong wraps it too; callers branch on them
// with errors.Is.
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
	// It is nil when the query names no host.
	Hosts []string
}

// IsList reports whether q asks for the list of logged-in users ({C}):
// no user and no host.
func (q Query) IsList() bool { return q.User == "" && len(q.Hosts) == 0 }

// String returns the wire form of q, without the line end. It is the
// form the netkit client sends: "/W " is followed by the rest even when the
// rest is empty ("/W " for a verbose list).
//
// For every Query returned by ParseQuery, ParseQuery(q.String()) returns q
// again. A Query built by hand round-trips only if it could have been
// parsed: names and hosts without spaces, TABs, '@' or control bytes, and
// no host empty.
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

// Names returns the names of the user part, split at spaces and TABs only
// (a non-ASCII space inside a UTF-8 name does not split it). It returns
// nil when User is empty.
func (q Query) Names() []string {
	if q.User == "" {
		return nil
	}
	return strings.FieldsFunc(q.User, isSpace)
}

func isSpace(r rune) bool { return r == ' ' || r == '\t' }

// ParseQuery parses one query line.
//
// One line end is removed first: a final LF and any CRs before it, so
// CRLF, a bare LF, CR CR LF and a lone CR all end a line. Then:
//
//   - Spaces and TABs before and after the query are ignored, and a run of
//     them between names counts as one space.
//   - "/W" or "/w" at the start asks for the verbose form. It must be
//     followed by a space, a TAB or the end of the line: "/W" alone and
//     "/W " ask for a verbose list. "/Wfoo" and "/W@host" are errors, since
//     they could equally mean the name "/Wfoo" or the user "/W" at host;
//     RFC 1288 requires the space.
//   - The user part may hold several names ("alice bob"), kept in User
//     separated by single spaces. A name may start with '-': it is a name,
//     never an option.
//   - Each '@' starts a host: "user@h1@h2" has Hosts ["h1" "h2"]. Host
//     names are kept as sent, so dotted names, "[::1]" and "host:port"
//     stay intact. An empty host ("@", "user@", "user@@host") and a space
//     inside the host part are errors: RFC 1288's {H} is "@hostname".
//   - Bytes 0x80-0xFF are allowed, so UTF-8 names such as "张伟" and
//     Latin-1 names work. Only a Telnet IAC sequence is refused: 0xFF
//     followed by a Telnet command byte (0xF0-0xFF), which a Telnet client
//     sends to negotiate options or to interrupt and which never occurs in
//     UTF-8.
//   - NUL, the other control bytes (below 0x20 except TAB) and DEL are
//     errors, so a query can never carry a line break or a terminal
//     escape sequence.
//
// Errors wrap ErrInvalidQuery and say what was wrong and where; they never
// quote the query.
func ParseQuery(line string) (Query, error) {
	line = strings.TrimSuffix(line, "\n")
	line = strings.TrimRight(line, "\r")
	for i := 0; i < len(line); i++ {
		c := line[i]
		switch {
		case c == '\t':
		case c == 0:
			return Query{}, fmt.Errorf("%w: NUL byte at offset %d", ErrInvalidQuery, i)
		case c == 0xff && i+1 < len(line) && line[i+1] >= 0xf0:
			return Query{}, fmt.Errorf("%w: Telnet IAC sequence at offset %d", ErrInvalidQuery, i)
		case c < 0x20 || c == 0x7f:
			return Query{}, fmt.Errorf("%w: control byte 0x%02x at offset %d", ErrInvalidQuery, c, i)
		}
	}
	rest := strings.TrimLeft(line, " \t")
	var q Query
	if len(rest) >= 2 && rest[0] == '/' && (rest[1] == 'W' || rest[1] == 'w') {
		if len(rest) > 2 && rest[2] != ' ' && rest[2] != '\t' {
			return Query{}, fmt.Errorf("%w: /W must be followed by a space", ErrInvalidQuery)
		}
		q.Verbose = true
		rest = rest[2:]
	}
	rest = strings.Trim(rest, " \t")
	user, hosts, hasHost := strings.Cut(rest, "@")
	q.User = strings.Join(strings.FieldsFunc(user, isSpace), " ")
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
// or to EOF when the client half-closed without a line end. The returned
// line has its line end (the LF and any CRs before it) removed. A lone CR
// does not end a line.
//
// At most max bytes are consumed, the line end included
// (DefaultMaxQueryBytes when max <= 0): a line of exactly max bytes is
// read, and a longer one yields an error wrapping ErrQueryTooLong. EOF
// before any byte yields io.EOF: a client that sent nothing asked nothing.
//
// ReadQuery reads ahead in blocks; bytes after the line are discarded,
// which suits finger's one query per connection. When r is a
// *bufio.Reader, bytes after the line stay in it.
func ReadQuery(r io.Reader, max int) (string, error) {
	if max <= 0 {
		max = DefaultMaxQueryBytes
	}
	br, ok := r.(*bufio.Reader)
	if !ok {
		size := max + 1
		if size > 4096 {
			size = 4096
		}
		br = bufio.NewReaderSize(io.LimitReader(r, int64(max)+1), size)
	}
	var buf []byte
	for n := 0; ; {
		c, err := br.ReadByte()
		if err != nil {
			if err == io.EOF {
				if n == 0 {
					return "", io.EOF
				}
				return strings.TrimRight(string(buf), "\r"), nil
			}
			return "", err
		}
		if n++; n > max {
			return "", ErrQueryTooLong
		}
		if c == '\n' {
			return strings.TrimRight(string(buf), "\r"), nil
		}
		buf = append(buf, c)
	}
}
