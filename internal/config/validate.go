package config

import (
	"errors"
	"fmt"
	"math"
	"net"
	"net/netip"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Limits on values that have no natural bound.
const (
	maxQueryBytesLimit = 64 << 10
	maxNamesLimit      = 64
	// Each outstanding name-service lookup may hold an OS thread.
	maxNameServiceLookups = 1024
	maxUID                = math.MaxUint32 - 1
)

// Validate checks every value and the relations between them. The error
// lists each problem on its own line as "file:line: key: problem".
func (c *Config) Validate() error {
	v := &validator{c: c}
	v.server()
	v.policy()
	v.sources()
	v.forward()
	v.virtuals()
	v.log()
	if c.Metrics.Listen != "" {
		v.hostPort("metrics.listen", c.Metrics.Listen)
	}
	v.store()
	if len(v.errs) == 0 {
		return nil
	}
	return fmt.Errorf("config: %w", errors.Join(v.errs...))
}

type validator struct {
	c    *Config
	errs []error
}

func (v *validator) errorf(key, format string, args ...any) {
	v.errs = append(v.errs, fmt.Errorf("%s: %s: %s", v.c.where(key), key, fmt.Sprintf(format, args...)))
}

func (v *validator) positive(key string, d Duration) {
	if d <= 0 {
		v.errorf(key, "duration must be greater than 0, not %s", d.D())
	}
}

func (v *validator) atLeast(key string, n, min int64) {
	if n < min {
		v.errorf(key, "must be at least %d, not %d", min, n)
	}
}

func (v *validator) hostPort(key, addr string) {
	if err := CheckListenAddr(addr); err != nil {
		v.errorf(key, "%v", err)
	}
}

func (v *validator) absPath(key, p string, optional bool) {
	switch {
	case p == "" && optional:
	case p == "":
		v.errorf(key, "must not be empty")
	case !filepath.IsAbs(p):
		v.errorf(key, "must be an absolute path, not %q", p)
	case strings.ContainsRune(p, 0):
		v.errorf(key, "NUL byte in path")
	}
}

// CheckListenAddr reports whether addr is a usable "host:port" listening
// address: the host empty, an IP address or a name, the port a number.
func CheckListenAddr(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("address %q: want host:port (IPv6 in brackets, e.g. \"[::1]:79\")", addr)
	}
	if n, err := strconv.ParseUint(port, 10, 16); err != nil || port == "" || (n == 0 && port != "0") {
		return fmt.Errorf("address %q: port must be a number from 0 to 65535", addr)
	}
	if host == "" {
		return nil
	}
	if _, err := netip.ParseAddr(host); err == nil {
		return nil
	}
	if !validHostName(host) {
		return fmt.Errorf("address %q: %q is neither an IP address nor a host name", addr, host)
	}
	return nil
}

func validHostName(h string) bool {
	if len(h) == 0 || len(h) > 253 {
		return false
	}
	for _, label := range strings.Split(h, ".") {
		if label == "" || len(label) > 63 {
			return false
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_'
			if !ok {
				return false
			}
		}
	}
	return true
}

// ParsePrefix parses an IP address or CIDR as a prefix; a plain address
// is a single-address prefix. IPv4-mapped IPv6 addresses are unmapped.
func ParsePrefix(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("%q is not an address or CIDR", s)
		}
		if p.Addr().Is4In6() {
			p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
		}
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil || a.Zone() != "" {
		return netip.Prefix{}, fmt.Errorf("%q is not an address or CIDR", s)
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}

func (v *validator) server() {
	s := &v.c.Server
	if len(s.Listen) == 0 {
		v.errorf("server.listen", "at least one address is needed")
	}
	for _, a := range s.Listen {
		v.hostPort("server.listen", a)
	}
	switch {
	case s.User == "":
		v.errorf("server.user", "must not be empty")
	case s.User == "root" || s.User == "0":
		v.errorf("server.user", "fingerd never serves as root")
	}
	if s.Group == "root" || s.Group == "0" {
		v.errorf("server.group", "fingerd never serves with group root")
	}
	if s.MaxQueryBytes < 3 || s.MaxQueryBytes > maxQueryBytesLimit {
		v.errorf("server.max_query_bytes", "must be from 3 to %d, not %d", maxQueryBytesLimit, s.MaxQueryBytes)
	}
	v.positive("server.read_timeout", s.ReadTimeout)
	v.positive("server.write_timeout", s.WriteTimeout)
	v.positive("server.conn_timeout", s.ConnTimeout)
	v.positive("server.proxy_header_timeout", s.ProxyHeaderTimeout)
	v.atLeast("server.max_conns", int64(s.MaxConns), 1)
	v.atLeast("server.max_conns_per_ip", int64(s.MaxConnsPerIP), 1)
	v.atLeast("server.max_conns_per_net", int64(s.MaxConnsPerNet), 1)
	if math.IsNaN(s.Rate) || math.IsInf(s.Rate, 0) || s.Rate < 0 {
		v.errorf("server.rate", "must be a number of queries per second, 0 or more, not %v", s.Rate)
	}
	if s.Rate > 0 {
		v.atLeast("server.burst", int64(s.Burst), 1)
	} else if s.Burst < 0 {
		v.errorf("server.burst", "must not be negative")
	}
	for _, p := range s.ProxyFrom {
		if _, err := ParsePrefix(p); err != nil {
			v.errorf("server.proxy_from", "%v", err)
		}
	}
}

func (v *validator) policy() {
	p := &v.c.Policy
	if p.MinUID < 0 || p.MinUID > maxUID {
		v.errorf("policy.min_uid", "must be from 0 to %d, not %d", int64(maxUID), p.MinUID)
	}
	if p.MaxNames < 1 || p.MaxNames > maxNamesLimit {
		v.errorf("policy.max_names", "must be from 1 to %d, not %d", maxNamesLimit, p.MaxNames)
	}
	v.atLeast("policy.max_file_bytes", p.MaxFileBytes, 1)
	if d := p.UnknownReplyFloor; d < 0 || d.D() > time.Second {
		v.errorf("policy.unknown_reply_floor", "must be 0s to 1s, not %s", d.D())
	}
}

func (v *validator) sources() {
	s := &v.c.Sources
	v.absPath("sources.passwd", s.Passwd, false)
	switch s.Sessions {
	case SessionsAuto, SessionsLogind, SessionsUtmp, SessionsNone:
	default:
		v.errorf("sources.sessions", "must be one of auto, logind, utmp, none; not %q", s.Sessions)
	}
	v.absPath("sources.utmp", s.Utmp, s.Sessions == SessionsLogind || s.Sessions == SessionsNone)
	v.absPath("sources.lastlog", s.Lastlog, true)
	v.absPath("sources.lastlog2", s.Lastlog2, true)
	for _, p := range s.Wtmpdb {
		v.absPath("sources.wtmpdb", p, false)
	}
	v.absPath("sources.mail_spool", s.MailSpool, true)
	v.absPath("sources.login_defs", s.LoginDefs, true)
	v.positive("sources.name_service_timeout", s.NameServiceTimeout)
	if n := s.NameServiceMaxLookups; n < 1 || n > maxNameServiceLookups {
		v.errorf("sources.name_service_max_lookups", "must be 1 to %d, not %d", maxNameServiceLookups, n)
	}
}

func (v *validator) forward() {
	f := &v.c.Forward
	v.atLeast("forward.max_hops", int64(f.MaxHops), 1)
	v.positive("forward.connect_timeout", f.ConnectTimeout)
	v.positive("forward.idle_timeout", f.IdleTimeout)
	v.positive("forward.total_timeout", f.TotalTimeout)
	v.atLeast("forward.max_bytes", f.MaxBytes, 1)
	for _, a := range f.Allow {
		if strings.Contains(a, "/") {
			if _, err := ParsePrefix(a); err != nil {
				v.errorf("forward.allow", "%v", err)
			}
			continue
		}
		if _, err := netip.ParseAddr(a); err != nil && !validHostName(a) {
			v.errorf("forward.allow", "%q is neither a host name, an address nor a CIDR", a)
		}
	}
	for _, port := range f.AllowPorts {
		if port < 1 || port > 65535 {
			v.errorf("forward.allow_ports", "%d is not a port (1 to 65535)", port)
		}
	}
}

// ValidLogin reports whether s can be a virtual user's login: 1 to 32
// printable characters, no space, '@', '/' or control character.
func ValidLogin(s string) bool {
	if s == "" || len(s) > 32 || !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if r == '@' || r == '/' || unicode.IsSpace(r) || !unicode.IsPrint(r) {
			return false
		}
	}
	return true
}

func (v *validator) virtuals() {
	seen := make(map[string]int)
	for i, u := range v.c.Virtual {
		key := func(k string) string { return fmt.Sprintf("virtual.%d.%s", i, k) }
		if !ValidLogin(u.Login) {
			v.errorf(key("login"), "%q is not a valid login (1 to 32 printable characters, no space, '@' or '/')", u.Login)
		} else if j, dup := seen[strings.ToLower(u.Login)]; dup {
			v.errorf(key("login"), "%q is already the login of virtual user %d (line %d)", u.Login, j, v.c.Line(fmt.Sprintf("virtual.%d.login", j)))
		} else {
			seen[strings.ToLower(u.Login)] = i
		}
		n := 0
		if u.Text != "" {
			n++
		}
		if u.File != "" {
			n++
		}
		if len(u.Program) > 0 {
			n++
		}
		if n != 1 {
			v.errorf(key("login"), "virtual user %q needs exactly one of text, file or program", u.Login)
		}
		if u.File != "" {
			v.absPath(key("file"), u.File, false)
		}
		if u.Owner != "" {
			if u.File == "" {
				v.errorf(key("owner"), "only a virtual user with a file has an owner")
			} else if uid, err := lookupOwner(u.Owner); err != nil {
				v.errorf(key("owner"), "%v", err)
			} else {
				v.c.Virtual[i].OwnerUID = uid
			}
		} else {
			v.c.Virtual[i].OwnerUID = 0
		}
		if len(u.Program) > 0 {
			if !v.c.Programs.Enabled {
				v.errorf(key("program"), "programs are off: set [programs] enabled = true to run one")
			}
			v.absPath(key("program"), u.Program[0], false)
			for _, a := range u.Program {
				if strings.ContainsRune(a, 0) {
					v.errorf(key("program"), "NUL byte in argument")
				}
			}
			if v.c.Programs.Enabled && filepath.IsAbs(u.Program[0]) {
				// The program must exist, be an executable regular file
				// and not be writable by group or others: checked now so
				// that a bad path is a configuration error, not a failure
				// at query time.
				if err := u.ProgramSpec().Validate(); err != nil {
					v.errorf(key("program"), "virtual user %q: %v", u.Login, err)
				}
			}
		}
		v.positive(key("timeout"), u.Timeout)
		v.atLeast(key("max_bytes"), u.MaxBytes, 1)
	}
}

func (v *validator) store() {
	s, w := &v.c.Store, &v.c.Web
	if s.URL != "" {
		scheme, rest, _ := strings.Cut(s.URL, ":")
		switch scheme {
		case "sqlite":
			p := strings.TrimPrefix(rest, "//")
			if !strings.HasPrefix(p, "/") || strings.ContainsAny(p, "?#") {
				v.errorf("store.url", "want sqlite:/absolute/path/to/file.db, not %q", s.URL)
			}
		case "postgres", "postgresql":
		default:
			v.errorf("store.url", "want sqlite:/path/to/file.db or postgres://..., not %q", s.URL)
		}
	}
	if s.PollInterval < Duration(10*time.Millisecond) || s.PollInterval > Duration(time.Minute) {
		v.errorf("store.poll_interval", "must be from 10ms to 1m, not %s", s.PollInterval.D())
	}
	if w.Listen != "" {
		v.hostPort("web.listen", w.Listen)
		if s.URL == "" {
			v.errorf("web.listen", "needs [store] url: the web server publishes hosted users' texts")
		}
	}
	if (w.Cert == "") != (w.Key == "") {
		v.errorf("web.cert", "set both web.cert and web.key, or neither")
	}
	v.absPath("web.cert", w.Cert, true)
	v.absPath("web.key", w.Key, true)
}

func (v *validator) log() {
	switch v.c.Log.Format {
	case "text", "json":
	default:
		v.errorf("log.format", "must be text or json, not %q", v.c.Log.Format)
	}
	switch strings.ToLower(v.c.Log.Level) {
	case "debug", "info", "warn", "warning", "error":
	default:
		v.errorf("log.level", "must be debug, info, warn or error, not %q", v.c.Log.Level)
	}
}

// lookupOwner returns the UID of a virtual user's file owner: a login
// known to the system, or a numeric UID.
func lookupOwner(owner string) (uint32, error) {
	if n, err := strconv.ParseUint(owner, 10, 32); err == nil && n <= maxUID {
		return uint32(n), nil
	}
	u, err := user.Lookup(owner)
	if err != nil {
		return 0, fmt.Errorf("no such user %q", owner)
	}
	n, err := strconv.ParseUint(u.Uid, 10, 32)
	if err != nil {
		return 0, fmt.Errorf("user %q has the non-numeric UID %q", owner, u.Uid)
	}
	return uint32(n), nil
}
