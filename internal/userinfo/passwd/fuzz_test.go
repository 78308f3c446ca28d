package passwd

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func FuzzParseLine(f *testing.F) {
	for _, s := range []string{
		"root:x:0:0:root:/root:/bin/bash",
		"fgtest_carol:x:1003:1003:*Carol Ann & Smith,Lab 3,x1234,,other,more:/home/c:/bin/sh",
		"u:x:1:2:Bob 张伟 Zhang,,,:/h:/bin/a:b\r",
		"+nis::::::", "", ":::::::", "a:b:c", "é:x:1:1:&&&&:/:/",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		a, err := ParseLine(line)
		if err != nil {
			if a != nil {
				t.Fatalf("ParseLine(%q) = %+v, %v: account with an error", line, a, err)
			}
			return
		}
		if !validLogin(a.Login) {
			t.Fatalf("ParseLine(%q) accepted invalid login %q", line, a.Login)
		}
		for _, s := range []string{a.Name, a.Office, a.OfficePhone, a.HomePhone, a.Other} {
			if len(s) > MaxFieldLen {
				t.Fatalf("ParseLine(%q) field of %d bytes, want <= %d", line, len(s), MaxFieldLen)
			}
			if utf8.ValidString(line) && !utf8.ValidString(s) {
				t.Fatalf("ParseLine(%q) produced invalid UTF-8 field %q from valid input", line, s)
			}
		}
		// Parse on the same text as a file agrees with ParseLine.
		all, _ := Parse(strings.NewReader(line))
		if !strings.ContainsAny(line, "\n") && (len(all) != 1 || *all[0] != *a) {
			t.Fatalf("Parse(%q) = %v, want [%+v]", line, all, a)
		}
	})
}

func FuzzParseGECOS(f *testing.F) {
	f.Add("*Carol Ann & Smith,Lab 3,x1234,,other,more", "carol")
	f.Add("&&&&", "ǆ")
	f.Fuzz(func(t *testing.T, gecos, login string) {
		g := ParseGECOS(gecos, login)
		for _, s := range []string{g.Name, g.Office, g.OfficePhone, g.HomePhone, g.Other} {
			if len(s) > MaxFieldLen {
				t.Fatalf("ParseGECOS(%q, %q) field of %d bytes", gecos, login, len(s))
			}
		}
	})
}
