package config

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestDefaultIsValid(t *testing.T) {
	if err := Default().Validate(); err != nil {
		t.Fatalf("Default().Validate() = %v, want nil", err)
	}
}

func TestParseEmptyGivesDefaults(t *testing.T) {
	c, err := Parse(nil, "empty.toml")
	if err != nil {
		t.Fatalf("Parse(empty) = %v", err)
	}
	want := Default()
	want.Path = "empty.toml"
	want.lines = c.lines
	if !reflect.DeepEqual(c, want) {
		t.Fatalf("Parse(empty) = %+v, want %+v", c, want)
	}
}

func TestParseValues(t *testing.T) {
	const doc = `
# a comment
[server]
listen = ["127.0.0.1:7979", "[::1]:7979"]
user = "finger"
group = "nogroup"
keep_dac_read_search = true
landlock = false
max_query_bytes = 1024
read_timeout = "2s"
write_timeout = "3s"
conn_timeout = "1m30s"
max_conns = 10
max_conns_per_ip = 2
rate = 0.5
burst = 3
proxy_from = ["10.0.0.1", "192.0.2.0/24", "2001:db8::/32"]
proxy_header_timeout = "500ms"

[policy]
list = false
user_files = false
match_real_names = false
show_system_accounts = true
min_uid = 500
allow_root = true
max_names = 3
max_file_bytes = 100
hide_home = true
hide_shell = true
hide_last_login = true
hide_mail = true
hide_remote_host = true

[sources]
passwd = "/srv/passwd"
sessions = "utmp"
utmp = "/srv/utmp"
lastlog = ""
wtmpdb = ["/srv/wtmp.db"]
mail_spool = "/srv/mail"

[forward]
enabled = true
max_hops = 1
connect_timeout = "1s"
idle_timeout = "2s"
total_timeout = "3s"
max_bytes = 4096
allow_private = true
allow = ["finger.example.org", "192.0.2.0/24"]
allow_ports = [7979, 1079]

[programs]
enabled = true

[[virtual]]
login = "weather"
name = "Weather Service"
text = """
Sunny.
"""
listed = true

[[virtual]]
login = "date"
program = ["/bin/date", "-u"]
timeout = "1s"
max_bytes = 100

[log]
format = "json"
level = "debug"

[metrics]
listen = "127.0.0.1:9179"
`
	c, err := Parse([]byte(doc), "full.toml")
	if err != nil {
		t.Fatalf("Parse = %v", err)
	}
	if err := c.Validate(); err != nil {
		t.Fatalf("Validate = %v", err)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"listen", c.Server.Listen, []string{"127.0.0.1:7979", "[::1]:7979"}},
		{"user", c.Server.User, "finger"},
		{"keep", c.Server.KeepDACReadSearch, true},
		{"landlock", c.Server.Landlock, false},
		{"conn_timeout", c.Server.ConnTimeout.D(), 90 * time.Second},
		{"rate", c.Server.Rate, 0.5},
		{"proxy_header_timeout", c.Server.ProxyHeaderTimeout.D(), 500 * time.Millisecond},
		{"list", c.Policy.List, false},
		{"min_uid", c.Policy.MinUID, int64(500)},
		{"sessions", c.Sources.Sessions, "utmp"},
		{"lastlog", c.Sources.Lastlog, ""},
		{"lastlog2 default", c.Sources.Lastlog2, "/var/lib/lastlog/lastlog2.db"},
		{"wtmpdb", c.Sources.Wtmpdb, []string{"/srv/wtmp.db"}},
		{"login_defs default", c.Sources.LoginDefs, "/etc/login.defs"},
		{"forward", c.Forward.Enabled, true},
		{"allow", c.Forward.Allow, []string{"finger.example.org", "192.0.2.0/24"}},
		{"allow_ports", c.Forward.AllowPorts, []int{7979, 1079}},
		{"virtual count", len(c.Virtual), 2},
		{"virtual 0 text", c.Virtual[0].Text, "Sunny.\n"},
		{"virtual 0 default timeout", c.Virtual[0].Timeout.D(), DefaultVirtualTimeout},
		{"virtual 0 default max_bytes", c.Virtual[0].MaxBytes, int64(DefaultVirtualMaxBytes)},
		{"virtual 1 program", c.Virtual[1].Program, []string{"/bin/date", "-u"}},
		{"virtual 1 timeout", c.Virtual[1].Timeout.D(), time.Second},
		{"log", c.Log.Format, "json"},
		{"metrics", c.Metrics.Listen, "127.0.0.1:9179"},
		{"line of server.rate", c.Line("server.rate"), 15},
		{"line of virtual.1.login", c.Line("virtual.1.login"), 66},
	}
	for _, ch := range checks {
		if !reflect.DeepEqual(ch.got, ch.want) {
			t.Errorf("%s = %#v, want %#v", ch.name, ch.got, ch.want)
		}
	}
}

// TestErrors lists broken files; each error must contain every want
// fragment (the key, and the line when it can be known).
func TestErrors(t *testing.T) {
	tests := []struct {
		name string
		doc  string
		want []string
	}{
		{"unknown key", "[server]\nbogus = 1\n", []string{`t.toml:2`, `unknown key "server.bogus"`}},
		{"unknown table", "[nope]\na = 1\nb = 2\n", []string{`t.toml:1`, `unknown key "nope"`}},
		{"unknown top-level key", "\nlisten = [\":79\"]\n", []string{`t.toml:2`, `unknown key "listen"`}},
		{"unknown key in virtual", "[[virtual]]\nlogin = \"a\"\ntext = \"x\"\ncolour = 1\n", []string{`t.toml:4`, `"virtual.colour"`}},
		{"misspelt policy key", "[policy]\nlists = false\n", []string{`t.toml:2`, `"policy.lists"`}},
		{"wrong type", "[server]\nrate = \"fast\"\n", []string{`t.toml:2`, `server.rate`, `incompatible types`}},
		{"wrong type bool", "[policy]\n\nlist = \"no\"\n", []string{`t.toml:3`, `policy.list`}},
		{"bad duration", "[server]\n\nread_timeout = \"10x\"\n", []string{`t.toml:3`, `server.read_timeout`, `invalid duration`}},
		{"number for duration", "[server]\nread_timeout = 5\n", []string{`t.toml:2`, `server.read_timeout`}},
		{"zero duration", "[server]\nwrite_timeout = \"0s\"\n", []string{`t.toml:2`, `server.write_timeout`, `greater than 0`}},
		{"negative duration", "[forward]\nidle_timeout = \"-1s\"\n", []string{`t.toml:2`, `forward.idle_timeout`}},
		{"syntax", "[server\n", []string{`t.toml:2`, `table name`}},
		{"unterminated array", "[server]\nlisten = [\n", []string{`t.toml`}},
		{"duplicate key", "[server]\nrate = 1.0\nrate = 2.0\n", []string{`t.toml:3`}},
		{"bad listen", "[server]\nlisten = [\"127.0.0.1\"]\n", []string{`t.toml:2`, `server.listen`, `host:port`}},
		{"bad listen port", "[server]\nlisten = [\"127.0.0.1:99999\"]\n", []string{`server.listen`, `port`}},
		{"bad listen host", "[server]\nlisten = [\"b@d:79\"]\n", []string{`server.listen`}},
		{"empty listen", "[server]\nlisten = []\n", []string{`server.listen`, `at least one`}},
		{"root user", "[server]\nuser = \"root\"\n", []string{`t.toml:2`, `server.user`, `root`}},
		{"max_conns zero", "[server]\nmax_conns = 0\n", []string{`server.max_conns`}},
		{"query bytes", "[server]\nmax_query_bytes = 1000000\n", []string{`server.max_query_bytes`}},
		{"negative rate", "[server]\nrate = -1.0\n", []string{`server.rate`}},
		{"nan rate", "[server]\nrate = nan\n", []string{`server.rate`}},
		{"burst zero", "[server]\nburst = 0\n", []string{`server.burst`}},
		{"bad proxy_from", "[server]\nproxy_from = [\"10.0.0.0/33\"]\n", []string{`t.toml:2`, `server.proxy_from`, `10.0.0.0/33`}},
		{"bad proxy_from name", "[server]\nproxy_from = [\"lb.example.org\"]\n", []string{`server.proxy_from`}},
		{"negative min_uid", "[policy]\nmin_uid = -1\n", []string{`policy.min_uid`}},
		{"huge min_uid", "[policy]\nmin_uid = 99999999999\n", []string{`policy.min_uid`}},
		{"max_names", "[policy]\nmax_names = 0\n", []string{`policy.max_names`}},
		{"sessions", "[sources]\nsessions = \"wtmp\"\n", []string{`t.toml:2`, `sources.sessions`}},
		{"zero name_service_timeout", "[sources]\nname_service_timeout = \"0s\"\n", []string{`t.toml:2`, `sources.name_service_timeout`, `greater than 0`}},
		{"name_service_max_lookups zero", "[sources]\nname_service_max_lookups = 0\n", []string{`t.toml:2`, `sources.name_service_max_lookups`, `must be 1 to 1024, not 0`}},
		{"name_service_max_lookups huge", "[sources]\nname_service_max_lookups = 100000\n", []string{`sources.name_service_max_lookups`}},
		{"negative unknown_reply_floor", "[policy]\nunknown_reply_floor = \"-1ms\"\n", []string{`t.toml:2`, `policy.unknown_reply_floor`, `must be 0s to 1s`}},
		{"huge unknown_reply_floor", "[policy]\nunknown_reply_floor = \"2s\"\n", []string{`policy.unknown_reply_floor`}},
		{"relative passwd", "[sources]\npasswd = \"etc/passwd\"\n", []string{`sources.passwd`, `absolute`}},
		{"relative lastlog2", "[sources]\nlastlog2 = \"lastlog2.db\"\n", []string{`sources.lastlog2`, `absolute`}},
		{"relative wtmpdb", "[sources]\nwtmpdb = [\"/var/log/wtmp.db\", \"wtmp.db\"]\n", []string{`sources.wtmpdb`, `absolute`}},
		{"empty wtmpdb path", "[sources]\nwtmpdb = [\"\"]\n", []string{`sources.wtmpdb`, `empty`}},
		{"empty passwd", "[sources]\npasswd = \"\"\n", []string{`sources.passwd`}},
		{"bad forward allow", "[forward]\nallow = [\"not a host\"]\n", []string{`forward.allow`}},
		{"max_hops", "[forward]\nmax_hops = 0\n", []string{`forward.max_hops`}},
		{"allow_ports zero", "[forward]\nallow_ports = [79, 0]\n", []string{`t.toml:2`, `forward.allow_ports`, `0 is not a port`}},
		{"allow_ports too big", "[forward]\nallow_ports = [65536]\n", []string{`forward.allow_ports`, `65536`}},
		{"allow_ports string", "[forward]\nallow_ports = [\"7979\"]\n", []string{`forward.allow_ports`}},
		{"virtual missing program", "[programs]\nenabled = true\n[[virtual]]\nlogin = \"a\"\nprogram = [\"/nonexistent/fingerd-program\"]\n", []string{`t.toml:5`, `virtual.0.program`, `virtual user "a"`, `no such file`}},
		{"virtual none", "[[virtual]]\nlogin = \"a\"\n", []string{`t.toml:2`, `exactly one of text, file or program`}},
		{"virtual two", "[[virtual]]\nlogin = \"a\"\ntext = \"x\"\nfile = \"/x\"\n", []string{`exactly one`}},
		{"virtual program without programs", "[[virtual]]\nlogin = \"a\"\nprogram = [\"/bin/true\"]\n", []string{`t.toml:3`, `virtual.0.program`, `[programs] enabled`}},
		{"virtual relative program", "[programs]\nenabled = true\n[[virtual]]\nlogin = \"a\"\nprogram = [\"true\"]\n", []string{`t.toml:5`, `absolute`}},
		{"virtual relative file", "[[virtual]]\nlogin = \"a\"\nfile = \"x.txt\"\n", []string{`virtual.0.file`, `absolute`}},
		{"virtual clash", "[[virtual]]\nlogin = \"w\"\ntext = \"x\"\n[[virtual]]\nlogin = \"W\"\ntext = \"y\"\n", []string{`t.toml:5`, `virtual.1.login`, `already`}},
		{"virtual bad login", "[[virtual]]\nlogin = \"a b\"\ntext = \"x\"\n", []string{`virtual.0.login`}},
		{"virtual empty login", "[[virtual]]\ntext = \"x\"\n", []string{`virtual.0.login`}},
		{"virtual zero timeout", "[[virtual]]\nlogin = \"a\"\ntext = \"x\"\ntimeout = \"0s\"\n", []string{`t.toml:4`, `virtual.0.timeout`}},
		{"virtual zero max_bytes", "[[virtual]]\nlogin = \"a\"\ntext = \"x\"\nmax_bytes = 0\n", []string{`t.toml:4`, `virtual.0.max_bytes`}},
		{"virtual unknown owner", "[[virtual]]\nlogin = \"a\"\nfile = \"/x\"\nowner = \"fgtest-no-such-user\"\n", []string{`t.toml:4`, `virtual.0.owner`, `no such user "fgtest-no-such-user"`}},
		{"virtual owner without file", "[[virtual]]\nlogin = \"a\"\ntext = \"x\"\nowner = \"root\"\n", []string{`t.toml:4`, `virtual.0.owner`, `only a virtual user with a file`}},
		{"log format", "[log]\nformat = \"xml\"\n", []string{`t.toml:2`, `log.format`}},
		{"log level", "[log]\nlevel = \"loud\"\n", []string{`log.level`}},
		{"metrics listen", "[metrics]\nlisten = \"9179\"\n", []string{`t.toml:2`, `metrics.listen`}},
		{"table as value", "server = 1\n", []string{`server`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse([]byte(tt.doc), "t.toml")
			if err == nil {
				err = c.Validate()
			}
			if err == nil {
				t.Fatalf("Parse+Validate(%q) = nil, want error", tt.doc)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Parse+Validate(%q) = %q, want it to contain %q", tt.doc, err, w)
				}
			}
			if !strings.HasPrefix(err.Error(), "config: ") {
				t.Errorf("error %q does not start with \"config: \"", err)
			}
		})
	}
}

func TestValidateListsEveryProblem(t *testing.T) {
	c, err := Parse([]byte("[server]\nmax_conns = 0\nburst = 0\n[log]\nformat = \"x\"\n"), "t.toml")
	if err != nil {
		t.Fatal(err)
	}
	err = c.Validate()
	if err == nil {
		t.Fatal("Validate = nil, want error")
	}
	for _, w := range []string{"t.toml:2: server.max_conns", "t.toml:3: server.burst", "t.toml:5: log.format"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("Validate = %q, want it to contain %q", err, w)
		}
	}
}

func TestEncodeRoundTrip(t *testing.T) {
	c := Default()
	c.Server.Listen = []string{"127.0.0.1:79", "[::1]:79"}
	c.Programs.Enabled = true
	c.Virtual = []Virtual{
		{Login: "a", Name: "A", Text: "hello\n", Timeout: Duration(time.Second), MaxBytes: 10},
		{Login: "b", Program: []string{"/bin/echo", "x"}, Listed: true, Timeout: Duration(2 * time.Second), MaxBytes: 20},
	}
	var buf bytes.Buffer
	if err := c.Encode(&buf); err != nil {
		t.Fatal(err)
	}
	got, err := Parse(buf.Bytes(), "enc.toml")
	if err != nil {
		t.Fatalf("Parse(Encode(c)) = %v\n%s", err, buf.String())
	}
	if err := got.Validate(); err != nil {
		t.Fatalf("Validate(Parse(Encode(c))) = %v", err)
	}
	got.lines, got.Path = nil, ""
	c.lines, c.Path = nil, ""
	if !reflect.DeepEqual(got, c) {
		t.Fatalf("Parse(Encode(c)) = %+v\nwant %+v", got, c)
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "fingerd.toml")
	if err := os.WriteFile(p, []byte("[policy]\nlist = false\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := Load(p)
	if err != nil {
		t.Fatalf("Load = %v", err)
	}
	if c.Policy.List || c.Path != p {
		t.Fatalf("Load = list %v path %q, want false %q", c.Policy.List, c.Path, p)
	}
	if _, err := Load(filepath.Join(dir, "missing.toml")); err == nil {
		t.Fatal("Load(missing) = nil error")
	}
	big := filepath.Join(dir, "big.toml")
	if err := os.WriteFile(big, bytes.Repeat([]byte("#\n"), MaxFileBytes), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(big); err == nil || !strings.Contains(err.Error(), "larger") {
		t.Fatalf("Load(big) = %v, want size error", err)
	}
}

func TestCheckListenAddr(t *testing.T) {
	tests := []struct {
		addr string
		ok   bool
	}{
		{":79", true},
		{"127.0.0.1:0", true},
		{"[::1]:7979", true},
		{"[::]:79", true},
		{"localhost:79", true},
		{"127.0.0.1", false},
		{"::1:79", false},
		{"127.0.0.1:65536", false},
		{"127.0.0.1:-1", false},
		{"127.0.0.1:http", false},
		{"127.0.0.1:", false},
		{"a b:79", false},
	}
	for _, tt := range tests {
		err := CheckListenAddr(tt.addr)
		if (err == nil) != tt.ok {
			t.Errorf("CheckListenAddr(%q) = %v, want ok=%v", tt.addr, err, tt.ok)
		}
	}
}

func TestParsePrefix(t *testing.T) {
	tests := []struct {
		in, want string
	}{
		{"10.0.0.1", "10.0.0.1/32"},
		{"10.0.0.7/24", "10.0.0.0/24"},
		{"::1", "::1/128"},
		{"::ffff:10.0.0.1", "10.0.0.1/32"},
		{"2001:db8::/32", "2001:db8::/32"},
		{"10.0.0.0/33", ""},
		{"host", ""},
		{"fe80::1%eth0", ""},
	}
	for _, tt := range tests {
		p, err := ParsePrefix(tt.in)
		got := ""
		if err == nil {
			got = p.String()
		}
		if got != tt.want {
			t.Errorf("ParsePrefix(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}

func TestKeyLines(t *testing.T) {
	doc := "a = 1\n[s]\n\"q.k\" = 2\nx.y = 3\nm = \"\"\"\nz = 9\n\"\"\"\nw = 4 # c\n[[v]]\nn = 1\n[[v]]\nn = 2\n"
	got := keyLines([]byte(doc))
	want := map[string]int{"a": 1, "s": 2, "s.q.k": 3, "s.x.y": 4, "s.m": 5, "s.w": 8,
		"v": 9, "v.0": 9, "v.0.n": 10, "v.n": 10, "v.1": 11, "v.1.n": 12}
	for k, n := range want {
		if got[k] != n {
			t.Errorf("keyLines: %q at line %d, want %d", k, got[k], n)
		}
	}
	if _, ok := got["s.z"]; ok {
		t.Errorf("keyLines: found a key inside a multi-line string")
	}
}

func TestVirtualOwner(t *testing.T) {
	tests := []struct {
		owner string
		want  uint32
	}{
		{"", 0},
		{"root", 0},
		{"4242", 4242},
	}
	for _, tt := range tests {
		doc := fmt.Sprintf("[[virtual]]\nlogin = \"a\"\nfile = \"/x\"\nowner = %q\n", tt.owner)
		c, err := Parse([]byte(doc), "t.toml")
		if err == nil {
			err = c.Validate()
		}
		if err != nil {
			t.Errorf("owner %q: Parse+Validate = %v", tt.owner, err)
			continue
		}
		if got := c.Virtual[0].OwnerUID; got != tt.want {
			t.Errorf("owner %q: OwnerUID = %d, want %d", tt.owner, got, tt.want)
		}
	}
}
