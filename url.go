package finger

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"unicode/utf8"
)

// ErrInvalidURL is wrapped by every error ParseURL returns about the form
// of the URL. Errors about the request it carries wrap ErrInvalidQuery
// instead.
var ErrInvalidURL = errors.New("finger: invalid URL")

// ParseURL parses a finger URL and returns the address to connect to (as
// host:port, ready for Client.Query) and the query to send. Two forms are
// accepted:
//
//	finger://host[:port][/request]
//	finger://user@host[:port][/]
//
// The scheme is case-insensitive, the port defaults to 79, and an IPv6
// literal goes in brackets: finger://[::1]:7979/bob. The request and the
// user part are percent-decoded and then parsed with ParseQuery, so
// finger://host/%2FW%20bob asks for bob in the long form and
// finger://host/bob@other asks host to forward to other. An empty request
// asks for the list of logged-in users.
//
// Control bytes (CR, LF, NUL, TAB and the rest, and DEL) are refused, raw
// or percent-encoded, with an error wrapping ErrInvalidQuery. A query
// string, a fragment, a password, an empty host, a port that is not a
// number from 1 to 65535, or another scheme is an error wrapping
// ErrInvalidURL.
func ParseURL(s string) (addr string, q Query, err error) {
	if i := indexControl(s); i >= 0 {
		return "", Query{}, fmt.Errorf("%w: control byte 0x%02x at offset %d", ErrInvalidURL, s[i], i)
	}
	scheme, rest, ok := strings.Cut(s, ":")
	if !ok || !strings.EqualFold(scheme, "finger") {
		return "", Query{}, fmt.Errorf("%w: %q does not start with finger://", ErrInvalidURL, s)
	}
	rest, ok = strings.CutPrefix(rest, "//")
	if !ok {
		return "", Query{}, fmt.Errorf("%w: %q: finger: must be followed by //host", ErrInvalidURL, s)
	}
	if i := strings.IndexAny(rest, "?#"); i >= 0 {
		what := "query string"
		if rest[i] == '#' {
			what = "fragment"
		}
		return "", Query{}, fmt.Errorf("%w: %q: a finger URL has no %s", ErrInvalidURL, s, what)
	}
	authority, path, hasPath := strings.Cut(rest, "/")

	var request string
	hasUser := false
	if i := strings.LastIndexByte(authority, '@'); i >= 0 {
		userinfo := authority[:i]
		authority = authority[i+1:]
		if strings.ContainsAny(userinfo, ":@") {
			return "", Query{}, fmt.Errorf("%w: %q: the user part holds ':' or '@' (a password or a second host); percent-encode them", ErrInvalidURL, s)
		}
		if userinfo == "" {
			return "", Query{}, fmt.Errorf("%w: %q: empty user before '@'", ErrInvalidURL, s)
		}
		if request, err = unescapeRequest(userinfo); err != nil {
			return "", Query{}, err
		}
		hasUser = true
	}
	host, port, err := splitURLHost(authority)
	if err != nil {
		return "", Query{}, fmt.Errorf("%w: %q: %v", ErrInvalidURL, s, err)
	}
	if hasPath && path != "" {
		if hasUser {
			return "", Query{}, fmt.Errorf("%w: %q has both a user part and a request", ErrInvalidURL, s)
		}
		if request, err = unescapeRequest(path); err != nil {
			return "", Query{}, err
		}
	}
	q, err = ParseQuery(request)
	if err != nil {
		return "", Query{}, err
	}
	addr = net.JoinHostPort(host, port)
	// The address must be one the client can dial: the same rules as for
	// an address given on its own (no space in an IPv6 zone, say).
	if _, err := NormalizeAddr(addr); err != nil {
		return "", Query{}, fmt.Errorf("%w: %q: %v", ErrInvalidURL, s, err)
	}
	return addr, q, nil
}

// unescapeRequest percent-decodes the request or user part of a URL and
// refuses control bytes in the result.
func unescapeRequest(s string) (string, error) {
	r, err := url.PathUnescape(s)
	if err != nil {
		// url.EscapeError says which escape is bad.
		return "", fmt.Errorf("%w: %v", ErrInvalidURL, err)
	}
	if i := indexControl(r); i >= 0 {
		return "", fmt.Errorf("%w: control byte 0x%02x in URL request %q", ErrInvalidQuery, r[i], r)
	}
	return r, nil
}

// indexControl returns the index of the first byte of s below 0x20 or
// equal to 0x7F, or -1.
func indexControl(s string) int {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] == 0x7f {
			return i
		}
	}
	return -1
}

// splitURLHost splits the host[:port] part of a finger URL. The port
// defaults to DefaultPort; an empty port (host:) is the default too, as in
// RFC 3986.
func splitURLHost(hp string) (host, port string, err error) {
	port = DefaultPort
	if strings.HasPrefix(hp, "[") {
		end := strings.IndexByte(hp, ']')
		if end < 0 {
			return "", "", errors.New("missing ']' after IPv6 address")
		}
		host = hp[1:end]
		if _, err := parseIPv6(host); err != nil {
			return "", "", err
		}
		// RFC 6874 writes the zone separator as %25.
		host = strings.Replace(host, "%25", "%", 1)
		hp = hp[end+1:]
		if hp != "" && hp[0] != ':' {
			return "", "", fmt.Errorf("unexpected %q after ']'", hp)
		}
	} else {
		host = hp
		if i := strings.IndexByte(hp, ':'); i >= 0 {
			host = hp[:i]
			hp = hp[i:]
		} else {
			hp = ""
		}
		if host == "" {
			return "", "", errors.New("empty host")
		}
		if err := checkHostName(host); err != nil {
			return "", "", err
		}
	}
	if hp != "" {
		p := hp[1:] // after ':'
		if p != "" {
			n, err := parsePort(p)
			if err != nil {
				return "", "", err
			}
			port = strconv.Itoa(n)
		}
	}
	return host, port, nil
}

// parseIPv6 parses the inside of [ ] in a URL: an IPv6 address with an
// optional zone, written %25zone as RFC 6874 says, or %zone.
func parseIPv6(s string) (netip.Addr, error) {
	a, err := netip.ParseAddr(strings.Replace(s, "%25", "%", 1))
	if err != nil || !a.Is6() {
		return netip.Addr{}, fmt.Errorf("%q in brackets is not an IPv6 address", s)
	}
	return a, nil
}

// checkHostName accepts DNS names, IPv4 addresses and international
// names in UTF-8: letters, digits, '-', '.', '_' and non-ASCII characters.
func checkHostName(h string) error {
	if !utf8.ValidString(h) {
		return fmt.Errorf("host %q is not valid UTF-8", h)
	}
	for i := 0; i < len(h); i++ {
		c := h[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9',
			c == '-', c == '.', c == '_', c >= 0x80:
		default:
			return fmt.Errorf("invalid character %q in host %q", c, h)
		}
	}
	return nil
}

// parsePort parses a decimal port number from 1 to 65535.
func parsePort(p string) (int, error) {
	n, err := strconv.ParseUint(p, 10, 16)
	if err != nil || n == 0 || p[0] == '+' {
		return 0, fmt.Errorf("invalid port %q", p)
	}
	return int(n), nil
}
