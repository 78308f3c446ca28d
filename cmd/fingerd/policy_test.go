package main

import (
	bin "encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/openfinger/finger/internal/privilege"
	"github.com/openfinger/finger/internal/testenv"
)

// policyFixture is a fixture whose passwd also has root's entry, a system
// account, and fgtest_carol, whose home (searchable by nobody) holds a
// world-readable .plan.
func policyFixture(t *testing.T) *fixture {
	t.Helper()
	f := newFixture(t, "")
	home := filepath.Join(f.dir, "carol")
	if err := os.Mkdir(home, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(home, ".plan"), []byte("Carol's plan: tests.\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if os.Geteuid() == 0 {
		for _, p := range []string{home, filepath.Join(home, ".plan")} {
			if err := os.Chown(p, 1003, 1003); err != nil {
				t.Fatal(err)
			}
		}
	}
	uid := 1003
	if os.Geteuid() != 0 {
		uid = os.Geteuid() // the file checks want the owner to be the user
	}
	pw := testPasswd +
		"fgtest_sys:x:998:998:System Service:/nonexistent/sys:/usr/sbin/nologin\n" +
		fmt.Sprintf("fgtest_carol:x:%d:%d:Carol Planner:%s:/bin/bash\n", uid, uid, home)
	if err := os.WriteFile(filepath.Join(f.dir, "passwd"), []byte(pw), 0o644); err != nil {
		t.Fatal(err)
	}
	return f
}

// TestPrivacyPolicy starts fingerd with each privacy setting of the
// [policy] table (and the flags that set them) and checks what a client
// is shown.
func TestPrivacyPolicy(t *testing.T) {
	f := policyFixture(t)
	const (
		dir   = "Directory: /nonexistent/fgtest_alice"
		shell = "Shell: /bin/sh"
		plan  = "Carol's plan: tests."
	)
	tests := []struct {
		name    string
		policy  string   // [policy] keys
		args    []string // extra flags
		query   string
		want    []string
		notWant []string
	}{
		{"defaults", "", nil, aliceLine, []string{dir, shell}, nil},
		{"hide_home", "hide_home = true", nil, aliceLine, []string{shell}, []string{"Directory:", "/nonexistent/fgtest_alice"}},
		{"hide_shell", "hide_shell = true", nil, aliceLine, []string{dir}, []string{"Shell:", "/bin/sh"}},
		{"hide_both", "hide_home = true\nhide_shell = true", nil, aliceLine, []string{"Login: fgtest_alice"}, []string{"Directory:", "Shell:"}},
		{"user files", "", nil, "fgtest_carol\r\n", []string{"Plan:", plan}, nil},
		{"user_files = false", "user_files = false", nil, "fgtest_carol\r\n", []string{"Login: fgtest_carol"}, []string{plan}},
		{"-no-user-files", "", []string{"-no-user-files"}, "fgtest_carol\r\n", []string{"Login: fgtest_carol"}, []string{plan}},
		{"root hidden", "", nil, "root\r\n", nil, []string{"Login: root"}},
		{"allow_root", "allow_root = true", nil, "root\r\n", []string{"Login: root"}, nil},
		{"system account hidden", "min_uid = 1000", nil, "fgtest_sys\r\n", nil, []string{"Login: fgtest_sys"}},
		{"show_system_accounts", "min_uid = 1000\nshow_system_accounts = true", nil, "fgtest_sys\r\n", []string{"Login: fgtest_sys"}, nil},
		{"system account not listed", "min_uid = 1000", nil, "\r\n", nil, []string{"fgtest_sys"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := filepath.Join(f.dir, "policy.toml")
			f.config = cfg
			f.write(t, "[policy]\n"+tt.policy+"\n")
			p := startDaemon(t, append([]string{"-config", cfg}, tt.args...)...)
			r := query(t, p.addrs[0], "", tt.query)
			for _, w := range tt.want {
				if !strings.Contains(r, w) {
					t.Errorf("query %q with %q %v = %q, want %q in it", tt.query, tt.policy, tt.args, r, w)
				}
			}
			for _, w := range tt.notWant {
				if strings.Contains(r, w) {
					t.Errorf("query %q with %q %v = %q, want no %q in it", tt.query, tt.policy, tt.args, r, w)
				}
			}
		})
	}
}

// TestServeAsGroup starts fingerd as root with -user and -group, and
// checks every thread's IDs.
func TestServeAsGroup(t *testing.T) {
	testenv.Root(t, "to start fingerd as root so that it drops to a user and group")
	f := newFixture(t, "")
	p := startDaemon(t, "-config", f.config, "-user", "nobody", "-group", "daemon")
	wantAlice(t, query(t, p.addrs[0], "", aliceLine))
	id, err := privilege.Lookup("nobody", "daemon")
	if err != nil {
		t.Fatal(err)
	}
	if id.GID == 0 || id.GID == 65534 {
		t.Fatalf("group daemon has GID %d; want one that differs from root's and nobody's", id.GID)
	}
	checkThreads(t, p.cmd.Process.Pid, id.UID, id.GID, 0)
}

// TestPrivacyPolicyRecords: hide_last_login, hide_remote_host and
// hide_mail from the configuration file, with a real lastlog file and mail
// spool.
func TestPrivacyPolicyRecords(t *testing.T) {
	f := newFixture(t, "")
	// fgtest_alice (UID 1001) last logged in from gw.example.org.
	rec := make([]byte, 292) // int32 time, [32]byte line, [256]byte host
	bin.LittleEndian.PutUint32(rec, uint32(time.Date(2024, 3, 4, 5, 6, 0, 0, time.UTC).Unix()))
	copy(rec[4:], "pts/3")
	copy(rec[36:], "gw.example.org")
	ll := make([]byte, 1002*292)
	copy(ll[1001*292:], rec)
	lastlog := filepath.Join(f.dir, "lastlog")
	if err := os.WriteFile(lastlog, ll, 0o644); err != nil {
		t.Fatal(err)
	}
	spool := filepath.Join(f.dir, "mail")
	if err := os.Mkdir(spool, 0o755); err != nil {
		t.Fatal(err)
	}
	box := filepath.Join(spool, "fgtest_alice")
	if err := os.WriteFile(box, []byte("From someone\n\nhello\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		policy  string
		want    []string
		notWant []string
	}{
		{"defaults", "", []string{"Last login", "from gw.example.org", "ail"}, []string{"No mail."}},
		{"hide_last_login", "hide_last_login = true", []string{"ail"}, []string{"Last login", "gw.example.org"}},
		{"hide_remote_host", "hide_remote_host = true", []string{"Last login", "ail"}, []string{"gw.example.org"}},
		{"hide_mail", "hide_mail = true", []string{"Last login"}, []string{"mail", "Mail"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := filepath.Join(f.dir, "records.toml")
			doc := fmt.Sprintf("[server]\nlisten = [\"127.0.0.1:0\"]\nuser = \"nobody\"\n[sources]\npasswd = %q\nsessions = \"none\"\n"+
				"lastlog = %q\nlastlog2 = \"\"\nwtmpdb = []\nmail_spool = %q\nlogin_defs = %q\n[policy]\n%s\n",
				filepath.Join(f.dir, "passwd"), lastlog, spool, filepath.Join(f.dir, "login.defs"), tt.policy)
			if err := os.WriteFile(cfg, []byte(doc), 0o644); err != nil {
				t.Fatal(err)
			}
			p := startDaemon(t, "-config", cfg)
			r := query(t, p.addrs[0], "", aliceLine)
			for _, w := range tt.want {
				if !strings.Contains(r, w) {
					t.Errorf("with %q: reply %q, want %q in it", tt.policy, r, w)
				}
			}
			for _, w := range tt.notWant {
				if strings.Contains(r, w) {
					t.Errorf("with %q: reply %q, want no %q in it", tt.policy, r, w)
				}
			}
		})
	}
}
