package passwd

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// MaxFieldLen is the largest number of bytes kept in any one GECOS field
// after parsing (name, office, phones, other). Longer fields are cut at a
// rune boundary, so a 10 KB GECOS never reaches the renderer whole.
const MaxFieldLen = 256

// GECOS is a split GECOS field.
type GECOS struct {
	Name        string // leading '*' removed, '&' expanded to the capitalised login
	Office      string
	OfficePhone string
	HomePhone   string
	Other       string // fifth and later fields, joined by ','
}

// ParseGECOS splits a GECOS field "name,office,office phone,home phone,other..."
// for the account login. Fields are trimmed of surrounding white space and
// cut to MaxFieldLen bytes. A single leading '*' on the name is ignored, and
// every '&' in the name is replaced by the login with its first letter in
// title case (Unicode-aware), as BSD finger does. Bytes that are not valid
// UTF-8 are kept as they are; filtering for display is the renderer's job.
func ParseGECOS(field, login string) GECOS {
	parts := strings.SplitN(field, ",", 5)
	get := func(i int) string {
		if i < len(parts) {
			return truncate(strings.TrimSpace(parts[i]), MaxFieldLen)
		}
		return ""
	}
	name := strings.TrimSpace(parts[0])
	name = truncate(strings.TrimPrefix(name, "*"), MaxFieldLen)
	if strings.Contains(name, "&") {
		name = expand(name, Capitalize(login))
	}
	g := GECOS{
		Name:        truncate(strings.TrimSpace(name), MaxFieldLen),
		Office:      get(1),
		OfficePhone: get(2),
		HomePhone:   get(3),
		Other:       get(4),
	}
	return g
}

// expand replaces each '&' in name by login, stopping once the result is
// longer than MaxFieldLen so that many '&' and a long login stay cheap.
func expand(name, login string) string {
	var b strings.Builder
	for i := 0; i < len(name) && b.Len() <= MaxFieldLen; i++ {
		if name[i] == '&' {
			b.WriteString(login)
		} else {
			b.WriteByte(name[i])
		}
	}
	return b.String()
}

// Capitalize returns s with its first rune in title case ("alice" →
// "Alice", "élodie" → "Élodie"). A string that does not start with a valid
// rune is returned unchanged.
func Capitalize(s string) string {
	r, n := utf8.DecodeRuneInString(s)
	if r == utf8.RuneError {
		return s
	}
	t := unicode.ToTitle(r)
	if t == r {
		return s
	}
	return string(t) + s[n:]
}

// truncate cuts s to at most max bytes without splitting a valid UTF-8
// sequence at the end.
func truncate(s string, max int) string {
	if len(s) <= max {
		return s
	}
	cut := max
	// Back off over continuation bytes (at most 3) when the cut lands
	// inside a multi-byte sequence.
	for i := 0; i < utf8.UTFMax-1 && cut > 0 && !utf8.RuneStart(s[cut]); i++ {
		cut--
	}
	if !utf8.RuneStart(s[cut]) {
		// Not UTF-8 at all around the cut: a plain byte cut is fine.
		cut = max
	}
	return s[:cut]
}
