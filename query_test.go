package finger

import (
	"bufio"
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"
	"testing/iotest"
)

var parseQueryTests = []struct {
	name string
	line string
	want Query
	err  error // nil, or the sentinel the error must wrap
}{
	// {C}: the list of logged-in users.
	{"empty", "", Query{}, nil},
	{"CRLF only", "\r\n", Query{}, nil},
	{"LF only", "\n", Query{}, nil},
	{"spaces only", "   \r\n", Query{}, nil},

	// {U}{C} and its line ends.
	{"user", "alice", Query{User: "alice"}, nil},
	{"user CRLF", "alice\r\n", Query{User: "alice"}, nil},
	{"user bare LF", "alice\n", Query{User: "alice"}, nil},
	{"user CR CR LF", "alice\r\r\n", Query{User: "alice"}, nil},
	{"user lone CR", "alice\r", Query{User: "alice"}, nil},
	{"trailing spaces", "alice   \r\n", Query{User: "alice"}, nil},
	{"leading spaces", "  alice\r\n", Query{User: "alice"}, nil},
	{"trailing TAB", "alice\t\r\n", Query{User: "alice"}, nil},

	// {W}: "/W" and "/w" with any run of spaces or TABs after it.
	{"/W user", "/W alice\r\n", Query{Verbose: true, User: "alice"}, nil},
	{"/w user", "/w alice\r\n", Query{Verbose: true, User: "alice"}, nil},
	{"/W spaces user", "/W     alice\r\n", Query{Verbose: true, User: "alice"}, nil},
	{"/W TAB user", "/W\talice\r\n", Query{Verbose: true, User: "alice"}, nil},
	{"/W mixed run", "/W \t \talice\r\n", Query{Verbose: true, User: "alice"}, nil},
	{"/W alone", "/W\r\n", Query{Verbose: true}, nil},
	{"/w alone", "/w", Query{Verbose: true}, nil},
	{"/W trailing space", "/W \r\n", Query{Verbose: true}, nil},
	{"spaces /W", "  /W alice", Query{Verbose: true, User: "alice"}, nil},
	{"/W user trailing", "/W alice  \r\n", Query{Verbose: true, User: "alice"}, nil},
	{"/Wfoo", "/Wfoo\r\n", Query{}, ErrInvalidQuery},
	{"/W@host", "/W@host\r\n", Query{}, ErrInvalidQuery},
	{"/W twice", "/W /W", Query{Verbose: true, User: "/W"}, nil},
	{"/X is a name", "/X", Query{User: "/X"}, nil},
	{"/ alone is a name", "/", Query{User: "/"}, nil},
	{"W/ is a name", "W/ x", Query{User: "W/ x"}, nil},

	// Several names.
	{"two names", "alice bob\r\n", Query{User: "alice bob"}, nil},
	{"names run of spaces", "alice \t  bob", Query{User: "alice bob"}, nil},
	{"names with host", "/W alice bob@h", Query{Verbose: true, User: "alice bob", Hosts: []string{"h"}}, nil},

	// {Q2}: hosts.
	{"user@host", "alice@host\r\n", Query{User: "alice", Hosts: []string{"host"}}, nil},
	{"@host", "@host\r\n", Query{Hosts: []string{"host"}}, nil},
	{"/W @host", "/W @host\r\n", Query{Verbose: true, Hosts: []string{"host"}}, nil},
	{"user@h1@h2", "alice@h1@h2\r\n", Query{User: "alice", Hosts: []string{"h1", "h2"}}, nil},
	{"three hops", "a@h1@h2@h3", Query{User: "a", Hosts: []string{"h1", "h2", "h3"}}, nil},
	{"dotted host", "alice@mail.example.org", Query{User: "alice", Hosts: []string{"mail.example.org"}}, nil},
	{"IPv6 literal", "alice@[::1]", Query{User: "alice", Hosts: []string{"[::1]"}}, nil},
	{"IPv6 literal port", "alice@[2001:db8::1]:7979", Query{User: "alice", Hosts: []string{"[2001:db8::1]:7979"}}, nil},
	{"host:port", "alice@example.org:7979", Query{User: "alice", Hosts: []string{"example.org:7979"}}, nil},
	{"space before @", "alice @host", Query{User: "alice", Hosts: []string{"host"}}, nil},
	{"host trailing spaces", "alice@host  \r\n", Query{User: "alice", Hosts: []string{"host"}}, nil},
	{"space after @", "alice@ host", Query{}, ErrInvalidQuery},
	{"space in host", "alice@ho st", Query{}, ErrInvalidQuery},
	{"user@@host", "alice@@host", Query{}, ErrInvalidQuery},
	{"@ alone", "@\r\n", Query{}, ErrInvalidQuery},
	{"user@", "alice@\r\n", Query{}, ErrInvalidQuery},
	{"host@", "alice@h1@", Query{}, ErrInvalidQuery},

	// Words beginning with '-' are names.
	{"-x", "-x\r\n", Query{User: "-x"}, nil},
	{"--help", "--help", Query{User: "--help"}, nil},
	{"-p user", "-p alice", Query{User: "-p alice"}, nil},

	// Bytes 0x80-0xFF.
	{"UTF-8 name", "张伟\r\n", Query{User: "张伟"}, nil},
	{"UTF-8 accents", "élève", Query{User: "élève"}, nil},
	{"high bytes", "fgtest_\xe9\xff\x80alice", Query{User: "fgtest_\xe9\xff\x80alice"}, nil},
	{"all high bytes", "\x80\x9b\xa0\xc0\xfe", Query{User: "\x80\x9b\xa0\xc0\xfe"}, nil},
	{"0xFF at end", "ren\xff", Query{User: "ren\xff"}, nil},
	{"NBSP does not split", "a\u00a0b", Query{User: "a\u00a0b"}, nil},
	{"UTF-8 host", "张伟@例子.中国", Query{User: "张伟", Hosts: []string{"例子.中国"}}, nil},

	// Invalid bytes.
	{"NUL inside", "fgtest\x00_alice", Query{}, ErrInvalidQuery},
	{"NUL first", "\x00fgtest_alice\r\n", Query{}, ErrInvalidQuery},
	{"NUL only", "\x00", Query{}, ErrInvalidQuery},
	{"ESC", "alice\x1b[2J", Query{}, ErrInvalidQuery},
	{"BEL BS", "alice\x07\x08", Query{}, ErrInvalidQuery},
	{"DEL", "alice\x7f", Query{}, ErrInvalidQuery},
	{"CR inside", "ali\rce", Query{}, ErrInvalidQuery},
	{"LF inside", "alice\nbob", Query{}, ErrInvalidQuery},
	{"two line ends", "alice\n\n", Query{}, ErrInvalidQuery},
	{"vertical tab", "alice\vbob", Query{}, ErrInvalidQuery},
	{"control in host", "alice@ho\x01st", Query{}, ErrInvalidQuery},
	{"Telnet WILL/DO", "\xff\xfb\x01\xff\xfd\x03fgtest_alice", Query{}, ErrInvalidQuery},
	{"Telnet IP", "alice\xff\xf4", Query{}, ErrInvalidQuery},
	{"Telnet IAC IAC", "alice\xff\xff", Query{}, ErrInvalidQuery},
	{"Telnet SB", "\xff\xfa\x18\x01\xff\xf0alice", Query{}, ErrInvalidQuery},
}

func TestParseQuery(t *testing.T) {
	for _, tt := range parseQueryTests {
		t.Run(tt.name, func(t *testing.T) {
			q, err := ParseQuery(tt.line)
			if tt.err != nil {
				if !errors.Is(err, tt.err) {
					t.Fatalf("ParseQuery(%q) = %+v, %v, want %+v, %v", tt.line, q, err, Query{}, tt.err)
				}
				if q.Verbose || q.User != "" || q.Hosts != nil {
					t.Errorf("ParseQuery(%q) = %+v on error, want the zero Query", tt.line, q)
				}
				if !strings.HasPrefix(err.Error(), "finger: invalid query") {
					t.Errorf("ParseQuery(%q) error %q does not start with %q", tt.line, err, "finger: invalid query")
				}
				return
			}
			if err != nil || !reflect.DeepEqual(q, tt.want) {
				t.Fatalf("ParseQuery(%q) = %+v, %v, want %+v, %v", tt.line, q, err, tt.want, nil)
			}
			// Round trip through the wire form.
			q2, err := ParseQuery(q.String())
			if err != nil || !reflect.DeepEqual(q2, q) {
				t.Errorf("ParseQuery(%q) = %+v, %v, want %+v, <nil> (round trip of %q)", q.String(), q2, err, q, tt.line)
			}
		})
	}
}

// TestParseQueryErrorHidesQuery checks that error texts never carry the
// query's bytes: they end up in logs and replies.
func TestParseQueryErrorHidesQuery(t *testing.T) {
	for _, line := range []string{"x\x1b[2Jsecret", "secret\x00", "secret@@h", "/Wsecret"} {
		_, err := ParseQuery(line)
		if err == nil || strings.Contains(err.Error(), "secret") {
			t.Errorf("ParseQuery(%q) error = %v, want an error without the query text", line, err)
		}
	}
}

func TestQueryString(t *testing.T) {
	tests := []struct {
		q    Query
		want string
	}{
		{Query{}, ""},
		{Query{Verbose: true}, "/W "},
		{Query{User: "alice"}, "alice"},
		{Query{Verbose: true, User: "alice"}, "/W alice"},
		{Query{Verbose: true, Hosts: []string{"h"}}, "/W @h"},
		{Query{User: "alice", Hosts: []string{"h1", "h2"}}, "alice@h1@h2"},
	}
	for _, tt := range tests {
		if got := tt.q.String(); got != tt.want {
			t.Errorf("%+v.String() = %q, want %q", tt.q, got, tt.want)
		}
	}
}

func TestNextHop(t *testing.T) {
	tests := []struct {
		q        Query
		wantHost string
		wantRest Query
		wantOK   bool
	}{
		{Query{User: "alice"}, "", Query{User: "alice"}, false},
		{Query{User: "alice", Hosts: []string{"h"}}, "h", Query{User: "alice"}, true},
		{Query{Verbose: true, Hosts: []string{"h"}}, "h", Query{Verbose: true}, true},
		{Query{Verbose: true, User: "a", Hosts: []string{"h1", "h2"}}, "h2", Query{Verbose: true, User: "a", Hosts: []string{"h1"}}, true},
	}
	for _, tt := range tests {
		host, rest, ok := tt.q.NextHop()
		if host != tt.wantHost || !reflect.DeepEqual(rest, tt.wantRest) || ok != tt.wantOK {
			t.Errorf("%+v.NextHop() = %q, %+v, %v, want %q, %+v, %v", tt.q, host, rest, ok, tt.wantHost, tt.wantRest, tt.wantOK)
		}
	}
	// NextHop must not share the Hosts array with q.
	q := Query{User: "a", Hosts: []string{"h1", "h2", "h3"}}
	_, rest, _ := q.NextHop()
	rest.Hosts[0] = "changed"
	if q.Hosts[0] != "h1" {
		t.Errorf("NextHop result shares Hosts with the query")
	}
}

func TestQueryIsListNames(t *testing.T) {
	tests := []struct {
		q         Query
		wantList  bool
		wantNames []string
	}{
		{Query{}, true, nil},
		{Query{Verbose: true}, true, nil},
		{Query{Hosts: []string{"h"}}, false, nil},
		{Query{User: "alice"}, false, []string{"alice"}},
		{Query{User: "alice bob"}, false, []string{"alice", "bob"}},
		{Query{User: "a\u00a0b c"}, false, []string{"a\u00a0b", "c"}},
	}
	for _, tt := range tests {
		if got := tt.q.IsList(); got != tt.wantList {
			t.Errorf("%+v.IsList() = %v, want %v", tt.q, got, tt.wantList)
		}
		if got := tt.q.Names(); !reflect.DeepEqual(got, tt.wantNames) {
			t.Errorf("%+v.Names() = %q, want %q", tt.q, got, tt.wantNames)
		}
	}
}

func TestReadQuery(t *testing.T) {
	const max = 16
	tests := []struct {
		name  string
		input string
		want  string
		err   error
	}{
		{"CRLF", "alice\r\n", "alice", nil},
		{"bare LF", "alice\n", "alice", nil},
		{"CR CR LF", "alice\r\r\n", "alice", nil},
		{"EOF without line end", "alice", "alice", nil},
		{"EOF after CR", "alice\r", "alice", nil},
		{"lone CR does not end the line", "ali\rce\n", "ali\rce", nil},
		{"empty line", "\r\n", "", nil},
		{"nothing", "", "", io.EOF},
		{"first line only", "alice\r\nbob\r\n", "alice", nil},
		{"exactly the cap with LF", strings.Repeat("a", max-1) + "\n", strings.Repeat("a", max-1), nil},
		{"exactly the cap with CRLF", strings.Repeat("a", max-2) + "\r\n", strings.Repeat("a", max-2), nil},
		{"exactly the cap at EOF", strings.Repeat("a", max), strings.Repeat("a", max), nil},
		{"one over with LF", strings.Repeat("a", max) + "\n", "", ErrQueryTooLong},
		{"one over with CRLF", strings.Repeat("a", max-1) + "\r\n", "", ErrQueryTooLong},
		{"one over at EOF", strings.Repeat("a", max+1), "", ErrQueryTooLong},
		{"far over", strings.Repeat("a", 10240) + "\r\n", "", ErrQueryTooLong},
		{"high bytes kept", "张伟\r\n", "张伟", nil},
	}
	readers := []struct {
		name string
		wrap func(io.Reader) io.Reader
	}{
		{"plain", func(r io.Reader) io.Reader { return r }},
		{"one byte", iotest.OneByteReader},
		{"bufio", func(r io.Reader) io.Reader { return bufio.NewReader(r) }},
	}
	for _, rd := range readers {
		for _, tt := range tests {
			got, err := ReadQuery(rd.wrap(strings.NewReader(tt.input)), max)
			if got != tt.want || !errors.Is(err, tt.err) || (tt.err == nil && err != nil) {
				t.Errorf("%s: ReadQuery(%q, %d) = %q, %v, want %q, %v", rd.name, tt.input, max, got, err, tt.want, tt.err)
			}
		}
	}
}

func TestReadQueryDefaultCap(t *testing.T) {
	at := strings.Repeat("a", DefaultMaxQueryBytes-2) + "\r\n"
	if got, err := ReadQuery(strings.NewReader(at), 0); err != nil || len(got) != DefaultMaxQueryBytes-2 {
		t.Errorf("ReadQuery(%d bytes, 0) = %d bytes, %v, want %d bytes, <nil>", len(at), len(got), err, DefaultMaxQueryBytes-2)
	}
	over := "a" + at
	if _, err := ReadQuery(strings.NewReader(over), 0); !errors.Is(err, ErrQueryTooLong) {
		t.Errorf("ReadQuery(%d bytes, 0) error = %v, want %v", len(over), err, ErrQueryTooLong)
	}
}

func TestReadQueryReadError(t *testing.T) {
	boom := errors.New("boom")
	_, err := ReadQuery(iotest.ErrReader(boom), 0)
	if !errors.Is(err, boom) {
		t.Errorf("ReadQuery(failing reader) error = %v, want %v", err, boom)
	}
}

func FuzzParseQuery(f *testing.F) {
	for _, tt := range parseQueryTests {
		f.Add(tt.line)
	}
	f.Fuzz(func(t *testing.T, line string) {
		q, err := ParseQuery(line)
		if err != nil {
			if !errors.Is(err, ErrInvalidQuery) {
				t.Fatalf("ParseQuery(%q) error %v does not wrap ErrInvalidQuery", line, err)
			}
			return
		}
		s := q.String()
		if strings.ContainsAny(s, "\r\n\x00") {
			t.Fatalf("ParseQuery(%q) = %+v whose String() %q holds a line end or NUL", line, q, s)
		}
		q2, err := ParseQuery(s)
		if err != nil || !reflect.DeepEqual(q2, q) {
			t.Fatalf("ParseQuery(%q) = %+v, %v, want %+v, <nil> (round trip of %q)", s, q2, err, q, line)
		}
	})
}

func FuzzReadQuery(f *testing.F) {
	f.Add("alice\r\n", 16)
	f.Add("alice", 5)
	f.Add("\r\r\r\n", 4)
	f.Add(strings.Repeat("a", 40), 8)
	f.Add("", 0)
	f.Fuzz(func(t *testing.T, input string, max int) {
		if max > 1<<16 || max < -1 {
			max = max%(1<<16) + 1
		}
		line, err := ReadQuery(strings.NewReader(input), max)
		limit := max
		if limit <= 0 {
			limit = DefaultMaxQueryBytes
		}
		if len(line) > limit {
			t.Fatalf("ReadQuery(%q, %d) returned %d bytes", input, max, len(line))
		}
		if err != nil {
			return
		}
		if strings.Contains(line, "\n") || strings.HasSuffix(line, "\r") {
			t.Fatalf("ReadQuery(%q, %d) = %q, which keeps a line end", input, max, line)
		}
		if !strings.HasPrefix(input, line) {
			t.Fatalf("ReadQuery(%q, %d) = %q, not a prefix of the input", input, max, line)
		}
	})
}

func BenchmarkParseQuery(b *testing.B) {
	for _, bm := range []struct{ name, line string }{
		{"list", "\r\n"},
		{"user", "alice\r\n"},
		{"verbose", "/W alice\r\n"},
		{"forward", "/W alice@h1.example.org@h2.example.org\r\n"},
		{"names", "alice bob   carol\tdave\r\n"},
	} {
		b.Run(bm.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := ParseQuery(bm.line); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkReadQuery(b *testing.B) {
	b.ReportAllocs()
	r := strings.NewReader("")
	for b.Loop() {
		r.Reset("/W alice@example.org\r\n")
		if _, err := ReadQuery(r, 0); err != nil {
			b.Fatal(err)
		}
	}
}
