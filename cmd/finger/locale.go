package main

import (
	"strings"

	"github.com/openfinger/finger"
)

// ctypeLocale returns the locale that decides the character set, as POSIX
// resolves it: LC_ALL, else LC_CTYPE, else LANG, the first that is set and
// not empty; "C" when none is.
func ctypeLocale(getenv func(string) string) string {
	for _, k := range []string{"LC_ALL", "LC_CTYPE", "LANG"} {
		if v := getenv(k); v != "" {
			return v
		}
	}
	return "C"
}

// isUTF8Locale reports whether the locale name (language[_territory]
// [.codeset][@modifier]) names the UTF-8 character set: its codeset is
// UTF-8, however spelt (UTF-8, utf8, UTF8).
func isUTF8Locale(name string) bool {
	_, codeset, ok := strings.Cut(name, ".")
	if !ok {
		return false
	}
	codeset, _, _ = strings.Cut(codeset, "@")
	codeset = strings.ToLower(strings.NewReplacer("-", "", "_", "").Replace(codeset))
	return codeset == "utf8"
}

// localeFilter is the filter used when neither the command line, nor
// FINGER_FILTER, nor /etc/finger.conf chooses one: the UTF-8-safe filter
// in a UTF-8 locale (the terminal shows UTF-8 text; controls, escape
// sequences, bidi overrides and invalid bytes are still escaped), the
// strict RFC 1288 filter in any other.
func localeFilter(getenv func(string) string) finger.Filter {
	return finger.Filter{UTF8: isUTF8Locale(ctypeLocale(getenv))}
}
