package passwd

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestParseGECOS(t *testing.T) {
	tests := []struct {
		field, login string
		want         GECOS
	}{
		{"", "x", GECOS{}},
		{"Alice Liddell", "alice", GECOS{Name: "Alice Liddell"}},
		{"Alice Liddell,Room 101,5551234,15551239876", "alice",
			GECOS{Name: "Alice Liddell", Office: "Room 101", OfficePhone: "5551234", HomePhone: "15551239876"}},
		{"*Carol Ann & Smith,Lab 3,x1234,,other,more", "fgtest_carol",
			GECOS{Name: "Carol Ann Fgtest_carol Smith", Office: "Lab 3", OfficePhone: "x1234", Other: "other,more"}},
		{"**Two Stars", "u", GECOS{Name: "*Two Stars"}},
		{"&", "élodie", GECOS{Name: "Élodie"}},
		{"& & &", "bob", GECOS{Name: "Bob Bob Bob"}},
		{"&", "ǆemal", GECOS{Name: "ǅemal"}}, // title case, not upper case
		{"&", "\xffbad", GECOS{Name: "\xffbad"}},
		{"&", "", GECOS{}},
		{"Bob 张伟 Zhang,,,", "bob", GECOS{Name: "Bob 张伟 Zhang"}},
		{"  Spaced  , Office ,  1234 ", "s", GECOS{Name: "Spaced", Office: "Office", OfficePhone: "1234"}},
		{",,,,", "e", GECOS{}},
		{"N,O,P,H,a,b,c", "n", GECOS{Name: "N", Office: "O", OfficePhone: "P", HomePhone: "H", Other: "a,b,c"}},
		{"raw \x1b[2J bytes\x80", "r", GECOS{Name: "raw \x1b[2J bytes\x80"}},
	}
	for _, tt := range tests {
		if got := ParseGECOS(tt.field, tt.login); got != tt.want {
			t.Errorf("ParseGECOS(%q, %q) = %+v, want %+v", tt.field, tt.login, got, tt.want)
		}
	}
}

func TestParseGECOSBounded(t *testing.T) {
	tests := []struct {
		name, field, login string
	}{
		{"10KB name", strings.Repeat("A", 10*1024), "u"},
		{"10KB of fields", strings.Repeat("abc,", 2560), "u"},
		{"10KB of &", strings.Repeat("&", 10*1024), strings.Repeat("l", 256)},
		{"10KB UTF-8", strings.Repeat("张", 3500) + ",x", "u"},
		{"10KB other", "n,o,p,h," + strings.Repeat("o", 10*1024), "u"},
	}
	for _, tt := range tests {
		g := ParseGECOS(tt.field, tt.login)
		for _, f := range []string{g.Name, g.Office, g.OfficePhone, g.HomePhone, g.Other} {
			if len(f) > MaxFieldLen {
				t.Errorf("%s: ParseGECOS field has %d bytes, want <= %d", tt.name, len(f), MaxFieldLen)
			}
			if utf8.ValidString(tt.field) && utf8.ValidString(tt.login) && !utf8.ValidString(f) {
				t.Errorf("%s: ParseGECOS field %q is not valid UTF-8 (cut inside a rune)", tt.name, f)
			}
		}
		if g.Name == "" {
			t.Errorf("%s: ParseGECOS lost the name entirely", tt.name)
		}
	}
}

func TestTruncate(t *testing.T) {
	tests := []struct {
		s    string
		max  int
		want string
	}{
		{"abc", 5, "abc"},
		{"abcdef", 3, "abc"},
		{"a张", 2, "a"},
		{"a张", 3, "a"},
		{"a张", 4, "a张"},
		{"\x80\x80\x80\x80\x80", 3, "\x80\x80\x80"},
		{"", 0, ""},
	}
	for _, tt := range tests {
		if got := truncate(tt.s, tt.max); got != tt.want {
			t.Errorf("truncate(%q, %d) = %q, want %q", tt.s, tt.max, got, tt.want)
		}
	}
}

func TestCapitalize(t *testing.T) {
	tests := []struct{ in, want string }{
		{"alice", "Alice"}, {"Alice", "Alice"}, {"élodie", "Élodie"}, {"张伟", "张伟"},
		{"", ""}, {"1abc", "1abc"}, {"ß", "ß"}, {"ǳ", "ǲ"},
	}
	for _, tt := range tests {
		if got := Capitalize(tt.in); got != tt.want {
			t.Errorf("Capitalize(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
