package passwd

import (
	"errors"
	"io"
	"os"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/openfinger/finger/internal/userinfo"
)

func TestParseLine(t *testing.T) {
	tests := []struct {
		line string
		want *userinfo.Account // nil: ErrBadLine
	}{
		{"root:x:0:0:root:/root:/bin/bash",
			&userinfo.Account{Login: "root", Name: "root", Home: "/root", Shell: "/bin/bash"}},
		{"fgtest_alice:x:1001:1001:Alice Liddell,Room 101,5551234,15551239876:/home/fgtest_alice:/bin/bash",
			&userinfo.Account{Login: "fgtest_alice", UID: 1001, GID: 1001, Name: "Alice Liddell", Office: "Room 101",
				OfficePhone: "5551234", HomePhone: "15551239876", Home: "/home/fgtest_alice", Shell: "/bin/bash"}},
		{"u:x:1:2:::", &userinfo.Account{Login: "u", UID: 1, GID: 2}},
		{"u:x:1:2:N:/h:/bin/a:b", &userinfo.Account{Login: "u", UID: 1, GID: 2, Name: "N", Home: "/h", Shell: "/bin/a:b"}},
		{"u:x:1:2:N:/h:/bin/sh\r", &userinfo.Account{Login: "u", UID: 1, GID: 2, Name: "N", Home: "/h", Shell: "/bin/sh"}},
		{"u:x:4294967295:0:::", &userinfo.Account{Login: "u", UID: 4294967295}},
		{"", nil},
		{"# comment:x:1:1:::", nil},
		{"+nis::::::", nil},
		{"-nis::::::", nil},
		{"+", nil},
		{"garbage", nil},
		{"u:x:1:1:N:/h", nil},
		{":x:1:1:N:/h:/bin/sh", nil},
		{"u:x::1:N:/h:/bin/sh", nil},
		{"u:x:1::N:/h:/bin/sh", nil},
		{"u:x:abc:1:N:/h:/bin/sh", nil},
		{"u:x:-1:1:N:/h:/bin/sh", nil},
		{"u:x:+1:1:N:/h:/bin/sh", nil},
		{"u:x:4294967296:1:N:/h:/bin/sh", nil},
		{"u:x:1:99999999999:N:/h:/bin/sh", nil},
		{"bad login:x:1:1:N:/h:/bin/sh", nil},
		{"bad\tlogin:x:1:1:N:/h:/bin/sh", nil},
		{"bad\x00login:x:1:1:N:/h:/bin/sh", nil},
		{"a/b:x:1:1:N:/h:/bin/sh", nil},
		{"..:x:1:1:N:/h:/bin/sh", nil},
		{".:x:1:1:N:/h:/bin/sh", nil},
	}
	for _, tt := range tests {
		got, err := ParseLine(tt.line)
		if tt.want == nil {
			if err == nil || !errors.Is(err, ErrBadLine) {
				t.Errorf("ParseLine(%q) = %+v, %v, want ErrBadLine", tt.line, got, err)
			}
			continue
		}
		if err != nil || *got != *tt.want {
			t.Errorf("ParseLine(%q) = %+v, %v, want %+v", tt.line, got, err, tt.want)
		}
	}
}

func TestParseFixture(t *testing.T) {
	f, err := os.Open("testdata/passwd")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	got, err := Parse(f)
	if err != nil {
		t.Fatalf("Parse(testdata/passwd) error %v", err)
	}
	var logins []string
	for _, a := range got {
		logins = append(logins, a.Login)
	}
	want := "root daemon systemd-timesync fgtest_alice fgtest_bob fgtest_carol fgtest_alice élodie crlf shellcolon nobody lastline"
	if g := strings.Join(logins, " "); g != want {
		t.Errorf("Parse(testdata/passwd) logins = %q, want %q", g, want)
	}
}

func TestParseLongLines(t *testing.T) {
	gecos10k := strings.Repeat("G", 10*1024)
	tooLong := "huge:x:5:5:" + strings.Repeat("H", MaxLineLen) + ":/h:/bin/sh"
	justFits := "fits:x:6:6:" + strings.Repeat("F", MaxLineLen-len("fits:x:6:6::/h:/bin/sh")) + ":/h:/bin/sh"
	in := strings.Join([]string{
		"a:x:1:1:A:/a:/bin/sh",
		"big:x:2:2:" + gecos10k + ",office:/big:/bin/sh",
		tooLong,
		justFits,
		"b:x:3:3:B:/b:/bin/sh",
		tooLong, // last line too long, no line end
	}, "\n")
	readers := []struct {
		kind string
		r    io.Reader
	}{
		{"whole", strings.NewReader(in)},
		{"onebyte", iotest.OneByteReader(strings.NewReader(in))},
		{"half", iotest.HalfReader(strings.NewReader(in))},
	}
	for _, rd := range readers {
		got, err := Parse(rd.r)
		if err != nil {
			t.Fatalf("%s: Parse error %v", rd.kind, err)
		}
		var logins []string
		for _, a := range got {
			logins = append(logins, a.Login)
			if len(a.Name) > MaxFieldLen {
				t.Errorf("%s: Parse name of %s has %d bytes, want <= %d", rd.kind, a.Login, len(a.Name), MaxFieldLen)
			}
		}
		if g, w := strings.Join(logins, " "), "a big fits b"; g != w {
			t.Errorf("%s: Parse(long lines) logins = %q, want %q", rd.kind, g, w)
		}
		if len(got) > 1 && got[1].Office != "office" {
			t.Errorf("%s: Parse(10 KB GECOS) office = %q, want %q", rd.kind, got[1].Office, "office")
		}
	}
}

func TestParseReadError(t *testing.T) {
	boom := errors.New("boom")
	r := io.MultiReader(strings.NewReader("a:x:1:1:A:/a:/bin/sh\n"), iotest.ErrReader(boom))
	got, err := Parse(r)
	if !errors.Is(err, boom) || len(got) != 1 {
		t.Errorf("Parse(failing reader) = %d accounts, %v, want 1, %v", len(got), err, boom)
	}
}
