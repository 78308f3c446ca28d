// Package finger implements the finger protocol (RFC 1288): the query
// grammar, a server shaped like net/http, a client, and the output filter
// both sides use to keep control and escape sequences away from terminals.
//
// A finger exchange is one query line from the client, then the server's
// reply, then the server's close. The close is the only end-of-reply marker.
//
// # Queries
//
// ParseQuery accepts every form of RFC 1288's grammar, as corrected by
// practice: "{C}" (an empty line, the list of logged-in users), "{U}{C}",
// "/W" or "/w" followed by any run of spaces or TABs, "/W" alone (a verbose
// list), and any number of "@host" parts. Lines may end in CRLF, a bare LF,
// CR CR LF, or nothing when the client half-closes (ReadQuery). Where the
// peers disagree, this package decides as follows, each time in the
// direction that keeps a query unambiguous:
//
//   - "/W" must be followed by a space, a TAB or the end of the line;
//     "/Wfoo" and "/W@host" are errors rather than guesses.
//   - Several names in one query are allowed ("alice bob"), as netkit
//     fingerd allows them; a name beginning with '-' is a name, never an
//     option.
//   - Every host must be non-empty and contain no space: "@", "user@" and
//     "user@@host" are errors. Hosts are kept as sent, so "[::1]" and
//     "host:port" stay intact.
//   - Bytes 0x80-0xFF are allowed (UTF-8 and Latin-1 names); NUL, the other
//     control bytes, DEL and Telnet IAC sequences are errors.
//   - A connection closed before any byte is not a query and gets no
//     answer.
//
// # Serving
//
// A Server's zero value serves with bounded time (a read timeout for the
// query, a write timeout, a total timeout per connection), a bounded query
// line, and caps on connections at once and per client address. The
// server's own answers are single lines: "finger: invalid query",
// "finger: query too long", "finger: input timeout" and "finger: too many
// connections". After such an answer the server half-closes and drains the
// client's input briefly, so the line is not lost to a TCP reset. Reply
// line ends are written as CRLF whatever the Handler writes; handler panics
// are recovered; each connection is logged as one log/slog record with the
// query escaped.
//
// The package uses the standard library only.
package finger
