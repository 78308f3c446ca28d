// Package config reads fingerd's TOML configuration file (fingerd.toml(5))
// into a Config with safe defaults, and validates it before the daemon
// serves anything.
//
// Every key is optional. A key the daemon does not know is an error that
// names the key and its line, as is a value of the wrong type or out of
// range: a typo must never silently fall back to a default.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/BurntSushi/toml"
)

// DefaultPath is the configuration file read when none is named and it
// exists.
const DefaultPath = "/etc/fingerd.toml"

// MaxFileBytes caps the size of a configuration file.
const MaxFileBytes = 1 << 20

// Session source names for Sources.Sessions.
const (
	SessionsAuto   = "auto"   // logind when it answers, utmp otherwise
	SessionsLogind = "logind" // logind only
	SessionsUtmp   = "utmp"   // utmp only
	SessionsNone   = "none"   // nobody is ever logged in
)

// Config is the whole configuration. The zero value is not useful: start
// from Default, or use Parse or Load, which fill in the defaults for every
// key the file leaves out.
type Config struct {
	Server   Server    `toml:"server"`
	Policy   Policy    `toml:"policy"`
	Sources  Sources   `toml:"sources"`
	Forward  Forward   `toml:"forward"`
	Programs Programs  `toml:"programs"`
	Virtual  []Virtual `toml:"virtual"`
	Log      Log       `toml:"log"`
	Metrics  Metrics   `toml:"metrics"`
	Store    Store     `toml:"store"`
	Web      Web       `toml:"web"`

	// Path is the file the configuration was read from; "" when it was
	// not read from a file.
	Path string `toml:"-"`

	// lines maps a key path ("server.rate", "virtual.1.login") to the
	// line it is set on, for error messages.
	lines map[string]int
}

// Server holds the [server] table: addresses, privileges and limits.
type Server struct {
	// Listen lists the standalone addresses ("host:port"; an empty host
	// means every address, IPv4 and IPv6). Ignored in inetd and socket
	// activation modes.
	Listen []string `toml:"listen"`
	// User and Group are the unprivileged identity served as when started
	// as root; an empty Group means the user's primary group.
	User  string `toml:"user"`
	Group string `toml:"group"`
	// KeepDACReadSearch, when started as root, runs the home-directory
	// reader: a separate process that keeps CAP_DAC_READ_SEARCH alone,
	// so that published files and ~/.nofinger inside homes of mode 0700
	// are seen, while the serving process keeps no capability.
	KeepDACReadSearch bool `toml:"keep_dac_read_search"`
	// Landlock restricts the filesystem view where the kernel supports it.
	Landlock bool `toml:"landlock"`

	MaxQueryBytes int      `toml:"max_query_bytes"`
	ReadTimeout   Duration `toml:"read_timeout"`
	WriteTimeout  Duration `toml:"write_timeout"`
	ConnTimeout   Duration `toml:"conn_timeout"`
	// MaxConns caps connections at once; fingerd lowers it to three
	// quarters of its descriptor limit less 64. At the cap, the connection
	// that has waited longest for its query is evicted.
	MaxConns      int `toml:"max_conns"`
	MaxConnsPerIP int `toml:"max_conns_per_ip"`
	// MaxConnsPerNet caps connections at once from one IPv6 /48.
	MaxConnsPerNet int `toml:"max_conns_per_net"`
	// Rate is the sustained number of queries per second allowed from one
	// client address (IPv6: one /64); 0 means no rate limit. Burst is the
	// bucket size.
	Rate  float64 `toml:"rate"`
	Burst int     `toml:"burst"`
	// ProxyFrom lists the addresses and CIDRs of load balancers allowed to
	// send a PROXY protocol header. Empty: the PROXY protocol is off.
	ProxyFrom []string `toml:"proxy_from"`
	// ProxyHeaderTimeout bounds the wait for a PROXY header.
	ProxyHeaderTimeout Duration `toml:"proxy_header_timeout"`
}

// Policy holds the [policy] table: what the daemon tells about users.
type Policy struct {
	List               bool  `toml:"list"`
	UserFiles          bool  `toml:"user_files"`
	MatchRealNames     bool  `toml:"match_real_names"`
	ShowSystemAccounts bool  `toml:"show_system_accounts"`
	MinUID             int64 `toml:"min_uid"`
	AllowRoot          bool  `toml:"allow_root"`
	MaxNames           int   `toml:"max_names"`
	MaxFileBytes       int64 `toml:"max_file_bytes"`
	HideHome           bool  `toml:"hide_home"`
	HideShell          bool  `toml:"hide_shell"`
	HideLastLogin      bool  `toml:"hide_last_login"`
	HideMail           bool  `toml:"hide_mail"`
	HideRemoteHost     bool  `toml:"hide_remote_host"`
	// HideUnreadableHomes hides the users whose home fingerd cannot
	// search (it cannot know whether they have a ~/.nofinger).
	HideUnreadableHomes bool `toml:"hide_unreadable_homes"`
	// UnknownReplyFloor is the least time, per name asked, a reply that
	// says a name is unknown takes (see userinfo.Policy); 0 switches the
	// floor off.
	UnknownReplyFloor Duration `toml:"unknown_reply_floor"`
}

// Sources holds the [sources] table: where user data comes from.
type Sources struct {
	Passwd   string `toml:"passwd"`
	Sessions string `toml:"sessions"`
	Utmp     string `toml:"utmp"`
	Lastlog  string `toml:"lastlog"` // the old lastlog file; "" switches it off
	// Lastlog2 is the lastlog2 database (Debian 13, Fedora 43); "" switches
	// it off.
	Lastlog2 string `toml:"lastlog2"`
	// Wtmpdb lists the wtmpdb databases; empty switches them off. Every
	// file that exists is read; the newest record of all last-login sources
	// wins.
	Wtmpdb    []string `toml:"wtmpdb"`
	MailSpool string   `toml:"mail_spool"` // "" switches mail status off
	LoginDefs string   `toml:"login_defs"` // UID_MIN is read from here when policy.min_uid is 0
	// NameServiceTimeout bounds the wait for one name-service (NSS)
	// lookup of a login not in the passwd file; NameServiceMaxLookups
	// bounds such lookups outstanding at once. Past either, the login is
	// answered as unknown.
	NameServiceTimeout    Duration `toml:"name_service_timeout"`
	NameServiceMaxLookups int      `toml:"name_service_max_lookups"`
}

// Forward holds the [forward] table: relaying user@host queries.
type Forward struct {
	Enabled        bool     `toml:"enabled"`
	MaxHops        int      `toml:"max_hops"`
	ConnectTimeout Duration `toml:"connect_timeout"`
	IdleTimeout    Duration `toml:"idle_timeout"`
	TotalTimeout   Duration `toml:"total_timeout"`
	MaxBytes       int64    `toml:"max_bytes"`
	// AllowPrivate permits private (RFC 1918, fc00::/7), shared
	// (100.64.0.0/10), link-local, site-local, local-use NAT64 and
	// multicast targets. Loopback, this host's own addresses and the other
	// special-purpose ranges stay refused: only Allow permits them.
	AllowPrivate bool `toml:"allow_private"`
	// Allow lists host names, addresses and CIDRs that are always
	// permitted, loopback and this host's addresses included.
	Allow []string `toml:"allow"`
	// AllowPorts lists the ports other than 79 a query may name
	// ("user@host:7979"); empty permits port 79 only.
	AllowPorts []int `toml:"allow_ports"`
}

// Programs holds the [programs] table.
type Programs struct {
	// Enabled must be true for any virtual user to run a program.
	Enabled bool `toml:"enabled"`
}

// Virtual is one [[virtual]] user: a login that answers with fixed text,
// a file's content or a program's output.
type Virtual struct {
	Login string `toml:"login"`
	Name  string `toml:"name"`
	Text  string `toml:"text,omitempty"`
	File  string `toml:"file,omitempty"`
	// Owner is the user a file must belong to (a login or a numeric
	// UID); "" means root. Validate resolves it into OwnerUID.
	Owner string `toml:"owner,omitempty"`
	// OwnerUID is Owner resolved by Validate; 0 (root) when Owner is "".
	OwnerUID uint32   `toml:"-"`
	Program  []string `toml:"program,omitempty"`
	Listed   bool     `toml:"listed"`
	Timeout  Duration `toml:"timeout"`
	MaxBytes int64    `toml:"max_bytes"`
}

// Log holds the [log] table.
type Log struct {
	Format string `toml:"format"` // "text" or "json"
	Level  string `toml:"level"`  // "debug", "info", "warn" or "error"
}

// Metrics holds the [metrics] table.
type Metrics struct {
	// Listen is the address of the Prometheus endpoint (/metrics and
	// /healthz); "" switches it off.
	Listen string `toml:"listen"`
}

// Store holds the [store] table: the directory of hosted users.
type Store struct {
	// URL names the store: "sqlite:/var/lib/fingerd/fingerd.db" (one
	// file) or "postgres://..." (a shared database). "" switches hosted
	// users off.
	URL string `toml:"url"`
	// PollInterval is how often the daemon asks the store whether it
	// changed; changes made by other processes (fingerd user ...) show
	// within it.
	PollInterval Duration `toml:"poll_interval"`
}

// Web holds the [web] table: publishing and reading hosted users' texts
// over HTTP.
type Web struct {
	// Listen is the HTTP address; "" switches the web server off. It
	// needs [store] url.
	Listen string `toml:"listen"`
	// Cert and Key are the PEM files of a TLS certificate chain and its
	// key: set both to serve HTTPS.
	Cert string `toml:"cert"`
	Key  string `toml:"key"`
}

// Default returns the configuration used for every key a file leaves out.
func Default() *Config {
	return &Config{
		Server: Server{
			Listen:             []string{":79"},
			User:               "nobody",
			KeepDACReadSearch:  true,
			Landlock:           true,
			MaxQueryBytes:      512,
			ReadTimeout:        Duration(10 * time.Second),
			WriteTimeout:       Duration(30 * time.Second),
			ConnTimeout:        Duration(60 * time.Second),
			MaxConns:           10000,
			MaxConnsPerIP:      16,
			MaxConnsPerNet:     256,
			Rate:               5,
			Burst:              20,
			ProxyFrom:          []string{},
			ProxyHeaderTimeout: Duration(time.Second),
		},
		Policy: Policy{
			List:           true,
			UserFiles:      true,
			MatchRealNames: true,
			MaxNames:       8,
			MaxFileBytes:   65536,

			UnknownReplyFloor: Duration(2 * time.Millisecond),
		},
		Sources: Sources{
			Passwd:    "/etc/passwd",
			Sessions:  SessionsAuto,
			Utmp:      "/var/run/utmp",
			Lastlog:   "/var/log/lastlog",
			Lastlog2:  "/var/lib/lastlog/lastlog2.db",
			Wtmpdb:    []string{"/var/log/wtmp.db", "/var/lib/wtmpdb/wtmp.db"},
			MailSpool: "/var/mail",
			LoginDefs: "/etc/login.defs",

			NameServiceTimeout:    Duration(time.Second),
			NameServiceMaxLookups: 16,
		},
		Forward: Forward{
			MaxHops:        3,
			ConnectTimeout: Duration(5 * time.Second),
			IdleTimeout:    Duration(10 * time.Second),
			TotalTimeout:   Duration(30 * time.Second),
			MaxBytes:       1 << 20,
			Allow:          []string{},
			AllowPorts:     []int{},
		},
		Log:   Log{Format: "text", Level: "info"},
		Store: Store{PollInterval: Duration(250 * time.Millisecond)},
	}
}

// Virtual defaults, applied to each [[virtual]] entry for the keys it
// leaves out.
const (
	DefaultVirtualTimeout  = 5 * time.Second
	DefaultVirtualMaxBytes = 65536
)

// Load reads and parses the file at path; see Parse. The result is not
// yet validated.
func Load(path string) (*Config, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxFileBytes+1))
	if err != nil {
		return nil, fmt.Errorf("config: %s: %w", path, err)
	}
	if len(data) > MaxFileBytes {
		return nil, fmt.Errorf("config: %s: larger than %d bytes", path, MaxFileBytes)
	}
	return Parse(data, path)
}

// Parse decodes a TOML document onto the defaults. name is used in error
// messages (a file name). Unknown keys and values of the wrong type are
// errors naming the key and, where it can be found, the line. The result
// is not yet validated: call Validate.
func Parse(data []byte, name string) (*Config, error) {
	if name == "" {
		name = "config"
	}
	c := Default()
	c.Path = name
	c.lines = keyLines(data)
	md, err := toml.NewDecoder(bytes.NewReader(data)).Decode(c)
	if err != nil {
		return nil, c.decodeError(err)
	}
	if und := md.Undecoded(); len(und) > 0 {
		var errs []error
		for _, k := range und {
			// A table that is itself unknown is reported once, not once
			// per key inside it.
			if len(k) > 1 && containsKey(und, k[:len(k)-1]) {
				continue
			}
			errs = append(errs, fmt.Errorf("%s: unknown key %q", c.where(k.String()), k.String()))
		}
		return nil, fmt.Errorf("config: %w", errors.Join(errs...))
	}
	for i := range c.Virtual {
		v := &c.Virtual[i]
		if v.Timeout == 0 && c.lines[fmt.Sprintf("virtual.%d.timeout", i)] == 0 {
			v.Timeout = Duration(DefaultVirtualTimeout)
		}
		if v.MaxBytes == 0 && c.lines[fmt.Sprintf("virtual.%d.max_bytes", i)] == 0 {
			v.MaxBytes = DefaultVirtualMaxBytes
		}
	}
	return c, nil
}

func containsKey(keys []toml.Key, k toml.Key) bool {
	for _, o := range keys {
		if len(o) == len(k) && o.String() == k.String() {
			return true
		}
	}
	return false
}

// decodeError turns a decoding error into one naming the file, line and,
// where known, the key.
func (c *Config) decodeError(err error) error {
	var pe toml.ParseError
	if errors.As(err, &pe) {
		line := pe.Position.Line
		if line == 0 {
			line = pe.Line
		}
		msg := pe.Message
		if msg == "" {
			msg = pe.Error()
		}
		msg = strings.TrimPrefix(msg, "toml: ")
		if pe.LastKey != "" {
			if line == 0 {
				line = c.lines[pe.LastKey]
			}
			return fmt.Errorf("config: %s:%d: %s: %s", c.Path, line, pe.LastKey, msg)
		}
		return fmt.Errorf("config: %s:%d: %s", c.Path, line, msg)
	}
	msg := strings.TrimPrefix(err.Error(), "toml: ")
	if m := lineKeyRE().FindStringSubmatch(msg); m != nil {
		line, key, rest := m[1], m[2], m[3]
		if line == "" {
			if n := c.lines[key]; n > 0 {
				line = strconv.Itoa(n)
			}
		}
		if line != "" {
			return fmt.Errorf("config: %s:%s: %s: %s", c.Path, line, key, rest)
		}
		return fmt.Errorf("config: %s: %s: %s", c.Path, key, rest)
	}
	return fmt.Errorf("config: %s: %s", c.Path, msg)
}

// lineKeyRE matches the decoder's `line N (last key "K"): message` form.
// It is compiled on first use, not when a program using the package starts.
var lineKeyRE = sync.OnceValue(func() *regexp.Regexp {
	return regexp.MustCompile(`^(?:line (\d+) )?\(last key "([^"]*)"\): (.*)$`)
})

// where returns "file:line" for a key path, or "file" when the line is
// not known.
func (c *Config) where(key string) string {
	if n := c.lines[key]; n > 0 {
		return fmt.Sprintf("%s:%d", c.Path, n)
	}
	if c.Path == "" {
		return "config"
	}
	return c.Path
}

// Line returns the line of the file on which key (a dotted path such as
// "server.rate" or "virtual.0.login") is set, or 0 if unknown.
func (c *Config) Line(key string) int { return c.lines[key] }

// Encode writes c as TOML: every key, with the values in effect.
func (c *Config) Encode(w io.Writer) error {
	enc := toml.NewEncoder(w)
	enc.Indent = ""
	return enc.Encode(c)
}

// Duration is a time.Duration written as a Go duration string ("10s",
// "1m30s") in the file.
type Duration time.Duration

// D returns d as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// UnmarshalText parses a Go duration string.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("invalid duration %q (want e.g. \"10s\", \"1m30s\")", b)
	}
	*d = Duration(v)
	return nil
}

// MarshalText formats d as a Go duration string.
func (d Duration) MarshalText() ([]byte, error) {
	return []byte(time.Duration(d).String()), nil
}
