package finger

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

var parseURLTests = []struct {
	in      string
	addr    string
	q       Query
	wantErr error // nil: success
}{
	// Host and port.
	{"finger://example.org", "example.org:79", Query{}, nil},
	{"finger://example.org/", "example.org:79", Query{}, nil},
	{"finger://example.org:7979/", "example.org:7979", Query{}, nil},
	{"finger://example.org:/bob", "example.org:79", Query{User: "bob"}, nil},
	{"finger://example.org:079/bob", "example.org:79", Query{User: "bob"}, nil},
	{"finger://192.0.2.1/bob", "192.0.2.1:79", Query{User: "bob"}, nil},
	{"finger://[::1]:7979/bob", "[::1]:7979", Query{User: "bob"}, nil},
	{"finger://[::1]/bob", "[::1]:79", Query{User: "bob"}, nil},
	{"finger://[fe80::1%25eth0]/", "[fe80::1%eth0]:79", Query{}, nil},
	{"finger://Example.ORG/bob", "Example.ORG:79", Query{User: "bob"}, nil},
	{"finger://bücher.example/bob", "bücher.example:79", Query{User: "bob"}, nil},
	{"finger://under_score.example/", "under_score.example:79", Query{}, nil},

	// Scheme.
	{"FINGER://example.org/bob", "example.org:79", Query{User: "bob"}, nil},
	{"Finger://example.org/bob", "example.org:79", Query{User: "bob"}, nil},

	// Request.
	{"finger://h/bob", "h:79", Query{User: "bob"}, nil},
	{"finger://h/%2FW%20bob", "h:79", Query{Verbose: true, User: "bob"}, nil},
	{"finger://h/%2fw%20bob", "h:79", Query{Verbose: true, User: "bob"}, nil},
	{"finger://h//W%20bob", "h:79", Query{Verbose: true, User: "bob"}, nil},
	{"finger://h//W bob", "h:79", Query{Verbose: true, User: "bob"}, nil},
	{"finger://h/%2FW", "h:79", Query{Verbose: true}, nil},
	{"finger://h/%2FW%20", "h:79", Query{Verbose: true}, nil},
	{"finger://h/bob@other", "h:79", Query{User: "bob", Hosts: []string{"other"}}, nil},
	{"finger://h/bob%40a@b", "h:79", Query{User: "bob", Hosts: []string{"a", "b"}}, nil},
	{"finger://h/@other", "h:79", Query{Hosts: []string{"other"}}, nil},
	{"finger://h/%E5%BC%A0%E4%BC%9F", "h:79", Query{User: "张伟"}, nil},
	{"finger://h/张伟", "h:79", Query{User: "张伟"}, nil},
	{"finger://h/a+b", "h:79", Query{User: "a+b"}, nil},
	{"finger://h/-l", "h:79", Query{User: "-l"}, nil},
	{"finger://h/a/b", "h:79", Query{User: "a/b"}, nil},
	{"finger://h/bob%20alice", "h:79", Query{User: "bob alice"}, nil},

	// User part.
	{"finger://bob@example.org", "example.org:79", Query{User: "bob"}, nil},
	{"finger://bob@example.org/", "example.org:79", Query{User: "bob"}, nil},
	{"finger://bob@example.org:7979", "example.org:7979", Query{User: "bob"}, nil},
	{"finger://bob@[::1]:7979", "[::1]:7979", Query{User: "bob"}, nil},
	{"finger://%E5%BC%A0%E4%BC%9F@h", "h:79", Query{User: "张伟"}, nil},
	{"finger://%2FW%20bob@h", "h:79", Query{Verbose: true, User: "bob"}, nil},

	// Control bytes, decoded or raw.
	{"finger://h/bob%0D%0A", "", Query{}, ErrInvalidQuery},
	{"finger://h/bob%0Aalice", "", Query{}, ErrInvalidQuery},
	{"finger://h/bob%00", "", Query{}, ErrInvalidQuery},
	{"finger://h/bob%09", "", Query{}, ErrInvalidQuery},
	{"finger://h/%1B[2J", "", Query{}, ErrInvalidQuery},
	{"finger://h/bob%7F", "", Query{}, ErrInvalidQuery},
	{"finger://bob%0D%0A@h", "", Query{}, ErrInvalidQuery},
	{"finger://h/bob%FF%F4", "", Query{}, ErrInvalidQuery}, // Telnet IAC IP, refused by ParseQuery
	{"finger://h/bob\r\n", "", Query{}, ErrInvalidURL},
	{"finger://h/\x00", "", Query{}, ErrInvalidURL},
	{"finger://h\n/bob", "", Query{}, ErrInvalidURL},

	// Bad requests.
	{"finger://h/%2FWbob", "", Query{}, ErrInvalidQuery},
	{"finger://h/bob@", "", Query{}, ErrInvalidQuery},
	{"finger://h/bob%zz", "", Query{}, ErrInvalidURL},
	{"finger://h/bob%2", "", Query{}, ErrInvalidURL},

	// Bad URLs.
	{"", "", Query{}, ErrInvalidURL},
	{"finger", "", Query{}, ErrInvalidURL},
	{"finger:", "", Query{}, ErrInvalidURL},
	{"finger:h/bob", "", Query{}, ErrInvalidURL},
	{"finger:/h/bob", "", Query{}, ErrInvalidURL},
	{"finger://", "", Query{}, ErrInvalidURL},
	{"finger:///bob", "", Query{}, ErrInvalidURL},
	{"finger://:79/bob", "", Query{}, ErrInvalidURL},
	{"http://example.org/bob", "", Query{}, ErrInvalidURL},
	{"fingers://example.org/bob", "", Query{}, ErrInvalidURL},
	{"bob@example.org", "", Query{}, ErrInvalidURL},
	{"example.org", "", Query{}, ErrInvalidURL},
	{"finger://h/bob?x=1", "", Query{}, ErrInvalidURL},
	{"finger://h/bob?", "", Query{}, ErrInvalidURL},
	{"finger://h?x", "", Query{}, ErrInvalidURL},
	{"finger://h/bob#frag", "", Query{}, ErrInvalidURL},
	{"finger://h#", "", Query{}, ErrInvalidURL},
	{"finger://bob:secret@h", "", Query{}, ErrInvalidURL},
	{"finger://a@b@h", "", Query{}, ErrInvalidURL},
	{"finger://@h", "", Query{}, ErrInvalidURL},
	{"finger://bob@h/alice", "", Query{}, ErrInvalidURL},
	{"finger://h:0/", "", Query{}, ErrInvalidURL},
	{"finger://h:65536/", "", Query{}, ErrInvalidURL},
	{"finger://h:+79/", "", Query{}, ErrInvalidURL},
	{"finger://h:-1/", "", Query{}, ErrInvalidURL},
	{"finger://h:finger/", "", Query{}, ErrInvalidURL},
	{"finger://h:79:80/", "", Query{}, ErrInvalidURL},
	{"finger://::1/bob", "", Query{}, ErrInvalidURL},
	{"finger://[::1/bob", "", Query{}, ErrInvalidURL},
	{"finger://[::1]x/bob", "", Query{}, ErrInvalidURL},
	{"finger://[192.0.2.1]/bob", "", Query{}, ErrInvalidURL},
	{"finger://[]/bob", "", Query{}, ErrInvalidURL},
	{"finger://[::1%25]/bob", "", Query{}, ErrInvalidURL},
	{"finger://[::% ]/0", "", Query{}, ErrInvalidURL}, // found by FuzzParseURL: a zone NormalizeAddr refuses
	{"finger://[fe80::1%eth0]/bob", "[fe80::1%eth0]:79", Query{User: "bob"}, nil},
	{"finger://ex ample.org/bob", "", Query{}, ErrInvalidURL},
	{"finger://%65xample.org/bob", "", Query{}, ErrInvalidURL},
	{"finger://h\xff/bob", "", Query{}, ErrInvalidURL},
}

func TestParseURL(t *testing.T) {
	for _, tt := range parseURLTests {
		addr, q, err := ParseURL(tt.in)
		if tt.wantErr != nil {
			if !errors.Is(err, tt.wantErr) || addr != "" || !reflect.DeepEqual(q, Query{}) {
				t.Errorf("ParseURL(%q) = %q, %#v, %v, want an error wrapping %v", tt.in, addr, q, err, tt.wantErr)
			}
			if err != nil && !strings.HasPrefix(err.Error(), "finger: ") {
				t.Errorf("ParseURL(%q) error %q does not start with \"finger: \"", tt.in, err)
			}
			continue
		}
		if err != nil || addr != tt.addr || !reflect.DeepEqual(q, tt.q) {
			t.Errorf("ParseURL(%q) = %q, %#v, %v, want %q, %#v, nil", tt.in, addr, q, err, tt.addr, tt.q)
		}
	}
}

// TestParseURLAddrIsNormal checks that every address ParseURL returns is
// already in the form NormalizeAddr gives.
func TestParseURLAddrIsNormal(t *testing.T) {
	for _, tt := range parseURLTests {
		if tt.wantErr != nil {
			continue
		}
		addr, _, _ := ParseURL(tt.in)
		if n, err := NormalizeAddr(addr); n != addr || err != nil {
			t.Errorf("NormalizeAddr(%q) (from ParseURL(%q)) = %q, %v, want %q, nil", addr, tt.in, n, err, addr)
		}
	}
}

func FuzzParseURL(f *testing.F) {
	for _, tt := range parseURLTests {
		f.Add(tt.in)
	}
	f.Fuzz(func(t *testing.T, s string) {
		addr, q, err := ParseURL(s)
		if err != nil {
			if !errors.Is(err, ErrInvalidURL) && !errors.Is(err, ErrInvalidQuery) {
				t.Fatalf("ParseURL(%q) error %v wraps neither ErrInvalidURL nor ErrInvalidQuery", s, err)
			}
			if addr != "" || !reflect.DeepEqual(q, Query{}) {
				t.Fatalf("ParseURL(%q) = %q, %#v, %v: results with an error", s, addr, q, err)
			}
			return
		}
		line := q.String()
		for i := 0; i < len(line); i++ {
			if c := line[i]; c < 0x20 || c == 0x7f {
				t.Fatalf("ParseURL(%q) query %#v: String() = %q has control byte 0x%02x", s, q, line, c)
			}
		}
		if n, err := NormalizeAddr(addr); n != addr || err != nil {
			t.Fatalf("ParseURL(%q) addr %q: NormalizeAddr = %q, %v", s, addr, n, err)
		}
		if q2, err := ParseQuery(line); err != nil || !reflect.DeepEqual(q2, q) {
			t.Fatalf("ParseURL(%q) query %#v: ParseQuery(%q) = %#v, %v", s, q, line, q2, err)
		}
	})
}
