package main

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/openfinger/finger/internal/testenv"
)

// TestVirtualFileRules runs fingerd with keep_dac_read_search, the setting
// under which a virtual user's file that a local user maintains could be
// turned into any file of the system, and checks that each kind of file
// that breaks a rule is answered with the generic line and logged with
// its reason, while good files are served.
func TestVirtualFileRules(t *testing.T) {
	testenv.Root(t, "to create files owned by other users and device nodes, and to keep CAP_DAC_READ_SEARCH")
	f := newFixture(t, "")
	dir := filepath.Join(f.dir, "vfiles")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	j := func(n string) string { return filepath.Join(dir, n) }
	mk := func(name, data string, mode os.FileMode, uid int) {
		t.Helper()
		if err := os.WriteFile(j(name), []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(j(name), uid, uid); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(j(name), mode); err != nil {
			t.Fatal(err)
		}
	}
	mk("good", "Good news.\n", 0o644, 0)
	mk("alice", "Alice's news.\n", 0o644, 4242)
	mk("rootinalice", "root's file where alice's is expected\n", 0o644, 0)
	mk("other", "planted by uid 4343\n", 0o644, 4343)
	mk("groupw", "group-writable\n", 0o664, 0)
	mk("otherw", "world-writable\n", 0o646, 0)
	mk("secret", "root-only secret\n", 0o600, 0)
	mk("big", strings.Repeat("0123456789", 10), 0o644, 0)
	if err := os.Symlink("/etc/shadow", j("shadow")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("secret", j("secretlink")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/etc", j("etc")); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(j("fifo"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mknod(j("zero"), syscall.S_IFCHR|0o644, 1<<8|5); err != nil {
		t.Fatal(err)
	}

	const unavailable = "finger: service temporarily unavailable.\r\n"
	tests := []struct {
		login, file, extra string
		reply              string
		log                string // the logged error after the path; "" when served
	}{
		{"vgood", "good", "", "Good news.\r\n", ""},
		{"valice", "alice", "owner = \"4242\"\n", "Alice's news.\r\n", ""},
		// The serving process keeps no capability (the home reader alone
		// keeps CAP_DAC_READ_SEARCH): a file the serving user may not read
		// is not served.
		{"vsecret", "secret", "", unavailable, ": open: permission denied"},
		{"vbig", "big", "max_bytes = 10\n", "0123456789\r\n[truncated at 10 bytes]\r\n", ""},
		{"vshadow", "shadow", "", unavailable, ": a symbolic link: refused"},
		{"vsecretlink", "secretlink", "", unavailable, ": a symbolic link: refused"},
		{"vetc", "etc/shadow", "", unavailable, ": open: " + j("etc") + ": a symbolic link or not a directory: refused"},
		{"vfifo", "fifo", "", unavailable, ": not a regular file: refused"},
		{"vzero", "zero", "", unavailable, ": not a regular file: refused"},
		{"vdir", "", "", unavailable, ": not a regular file: refused"},
		{"vother", "other", "", unavailable, ": owned by uid 4343, not by uid 0: refused"},
		{"vrootinalice", "rootinalice", "owner = \"4242\"\n", unavailable, ": owned by uid 0, not by uid 4242: refused"},
		{"vgroupw", "groupw", "", unavailable, ": writable by group or others (mode 0664): refused"},
		{"votherw", "otherw", "", unavailable, ": writable by group or others (mode 0646): refused"},
	}
	var conf strings.Builder
	conf.WriteString("keep_dac_read_search = true\n")
	for _, tt := range tests {
		fmt.Fprintf(&conf, "[[virtual]]\nlogin = %q\nfile = %q\n%s", tt.login, j(tt.file), tt.extra)
	}
	f.write(t, conf.String())
	p := startDaemon(t, "-config", f.config, "-user", "nobody")
	for _, tt := range tests {
		start := time.Now()
		if got := query(t, p.addrs[0], "", tt.login+"\r\n"); got != tt.reply {
			t.Errorf("%s (%s): reply %q, want %q", tt.login, tt.file, got, tt.reply)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("%s (%s): answered after %v: the read blocked", tt.login, tt.file, d)
		}
		if tt.log == "" {
			continue
		}
		p.log.waitFor(t, `msg="fingerd: virtual user file" login=`+tt.login+` err=`, 10*time.Second)
		want := regexp.QuoteMeta(fmt.Sprintf(`msg="fingerd: virtual user file" login=%s err="safefile: %s%s"`, tt.login, j(tt.file), tt.log))
		if n := p.log.count(want); n != 1 {
			t.Errorf("%s: %d log lines matching %s, want 1", tt.login, n, want)
		}
	}
	if t.Failed() {
		t.Logf("log:\n%s", p.log.String())
	}
}
