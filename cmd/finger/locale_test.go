package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/openfinger/finger"
)

func TestCtypeLocale(t *testing.T) {
	tests := []struct {
		env  map[string]string
		want string
		utf8 bool
	}{
		{map[string]string{}, "C", false},
		{map[string]string{"LANG": "C.UTF-8"}, "C.UTF-8", true},
		{map[string]string{"LANG": "en_US.UTF-8"}, "en_US.UTF-8", true},
		{map[string]string{"LANG": "zh_CN.utf8"}, "zh_CN.utf8", true},
		{map[string]string{"LANG": "de_DE.utf-8@euro"}, "de_DE.utf-8@euro", true},
		{map[string]string{"LANG": "en_US"}, "en_US", false},
		{map[string]string{"LANG": "en_US.ISO-8859-1"}, "en_US.ISO-8859-1", false},
		{map[string]string{"LANG": "POSIX"}, "POSIX", false},
		{map[string]string{"LANG": "ja_JP.eucJP"}, "ja_JP.eucJP", false},
		{map[string]string{"LANG": "en_US.UTF-8", "LC_CTYPE": "C"}, "C", false},
		{map[string]string{"LANG": "C", "LC_CTYPE": "en_US.UTF-8"}, "en_US.UTF-8", true},
		{map[string]string{"LANG": "en_US.UTF-8", "LC_CTYPE": "en_US.UTF-8", "LC_ALL": "C"}, "C", false},
		{map[string]string{"LANG": "C", "LC_ALL": "C.UTF-8"}, "C.UTF-8", true},
		// An empty variable counts as unset.
		{map[string]string{"LANG": "C.UTF-8", "LC_ALL": "", "LC_CTYPE": ""}, "C.UTF-8", true},
		{map[string]string{"LANG": "", "LC_ALL": ""}, "C", false},
		// Other categories do not choose the character set.
		{map[string]string{"LC_MESSAGES": "en_US.UTF-8", "LC_COLLATE": "C.UTF-8"}, "C", false},
	}
	for _, tt := range tests {
		getenv := func(k string) string { return tt.env[k] }
		got := ctypeLocale(getenv)
		if got != tt.want {
			t.Errorf("ctypeLocale(%v) = %q, want %q", tt.env, got, tt.want)
		}
		if u := isUTF8Locale(got); u != tt.utf8 {
			t.Errorf("isUTF8Locale(%q) = %v, want %v", got, u, tt.utf8)
		}
		if f := localeFilter(getenv); f != (finger.Filter{UTF8: tt.utf8}) {
			t.Errorf("localeFilter(%v) = %+v, want UTF8=%v", tt.env, f, tt.utf8)
		}
	}
}

// utf8Reply is a reply with Chinese text, an escape sequence, a bidi
// override and an invalid byte.
const utf8Reply = "Plan:\r\n\u8ba1\u5212\r\n\x1b[2J\u202eevil\xff\r\n"

// TestFilterPrecedenceWithLocale checks which filter applies: the command line, then
// FINGER_FILTER, then /etc/finger.conf, then the locale.
func TestFilterPrecedenceWithLocale(t *testing.T) {
	srv := newRawServer(t, sendAndClose(utf8Reply))
	const (
		strict = "Plan:\n\\xe8\\xae\\xa1\\xe5\\x88\\x92\n^[[2J\\xe2\\x80\\xaeevil\\xff\n"
		utf8   = "Plan:\n\u8ba1\u5212\n^[[2J\\u202eevil\\xff\n"
		high   = "Plan:\n\u8ba1\u5212\n^[[2J\u202eevil\xff\n"
	)
	tests := []struct {
		name string
		env  map[string]string
		conf string
		args []string
		want string
	}{
		{"C locale", nil, "", nil, strict},
		{"UTF-8 locale", map[string]string{"LANG": "C.UTF-8"}, "", nil, utf8},
		{"LC_ALL=C wins over LANG", map[string]string{"LANG": "en_US.UTF-8", "LC_ALL": "C"}, "", nil, strict},
		{"-a in a UTF-8 locale", map[string]string{"LANG": "C.UTF-8"}, "", []string{"-a"}, strict},
		{"-filter strict in a UTF-8 locale", map[string]string{"LANG": "C.UTF-8"}, "", []string{"-filter", "strict"}, strict},
		{"-8 keeps its meaning in a UTF-8 locale", map[string]string{"LANG": "C.UTF-8"}, "", []string{"-8"}, high},
		{"-u in the C locale", nil, "", []string{"-u"}, utf8},
		{"finger.conf over the locale", map[string]string{"LANG": "C.UTF-8"}, "filter = strict\n", nil, strict},
		{"finger.conf utf8 in the C locale", nil, "filter = \"utf8\"\n", nil, utf8},
		{"FINGER_FILTER over finger.conf", map[string]string{"FINGER_FILTER": "utf8"}, "filter = strict\n", nil, utf8},
		{"FINGER_FILTER strict in a UTF-8 locale", map[string]string{"FINGER_FILTER": "strict", "LANG": "C.UTF-8"}, "", nil, strict},
		{"-a over FINGER_FILTER", map[string]string{"FINGER_FILTER": "utf8"}, "", []string{"-a"}, strict},
	}
	for _, tt := range tests {
		e := testEnv(t, tt.env)
		if tt.conf != "" {
			e.configPath = filepath.Join(t.TempDir(), "finger.conf")
			if err := os.WriteFile(e.configPath, []byte(tt.conf), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		r := e.exec(append(tt.args, "alice@"+srv.addr)...)
		if r.code != 0 || r.stdout != tt.want {
			t.Errorf("%s: finger %v = %q (exit %d, %q), want %q", tt.name, tt.args, r.stdout, r.code, r.stderr, tt.want)
		}
	}
	for _, args := range [][]string{{"-a", "-u"}, {"-a", "-c"}, {"-8", "-a"}, {"-a", "-filter", "utf8"}} {
		if r := testEnv(t, nil).exec(append(args, "alice@"+srv.addr)...); r.code != exitUsage || !strings.Contains(r.stderr, "-a cannot be combined") {
			t.Errorf("finger %v = exit %d, %q; want a usage error", args, r.code, r.stderr)
		}
	}
}

// TestProcessLocaleDefault runs the command as a process: a UTF-8 locale
// shows a Chinese .plan as text with the escape sequence still escaped;
// the C locale shows the strict escapes.
func TestProcessLocaleDefault(t *testing.T) {
	srv := newRawServer(t, sendAndClose(utf8Reply))
	for _, tt := range []struct {
		env  []string
		want string
	}{
		{[]string{"LANG=C.UTF-8"}, "Plan:\n\u8ba1\u5212\n^[[2J\\u202eevil\\xff\n"},
		{[]string{"LANG=en_US.UTF-8", "LC_ALL=C"}, "Plan:\n\\xe8\\xae\\xa1\\xe5\\x88\\x92\n^[[2J\\xe2\\x80\\xaeevil\\xff\n"},
		{nil, "Plan:\n\\xe8\\xae\\xa1\\xe5\\x88\\x92\n^[[2J\\xe2\\x80\\xaeevil\\xff\n"},
	} {
		r := command(t, tt.env, "alice@"+srv.addr)
		if r.code != 0 || r.stdout != tt.want {
			t.Errorf("env %q: stdout %q (exit %d, %q), want %q", tt.env, r.stdout, r.code, r.stderr, tt.want)
		}
	}
}

func TestProcessVersion(t *testing.T) {
	for _, arg := range []string{"-v", "--version", "-version"} {
		r := command(t, nil, arg)
		if r.code != 0 || !strings.HasPrefix(r.stdout, "finger ") || strings.Count(r.stdout, "\n") != 1 || r.stderr != "" {
			t.Errorf("finger %s = %q, %q, exit %d; want one version line on stdout, exit 0", arg, r.stdout, r.stderr, r.code)
		}
	}
}
