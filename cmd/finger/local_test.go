package main

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/openfinger/finger"
	"github.com/openfinger/finger/internal/config"
	"github.com/openfinger/finger/internal/hostusers"
)

// TestLocalMatchesDaemon checks that a local answer is the daemon's answer
// for the same query: the same configuration serves a finger.Server, and
// "finger NAME" must print what "finger NAME@server" prints.
func TestLocalMatchesDaemon(t *testing.T) {
	dir := t.TempDir()
	home := filepath.Join(dir, "home")
	if err := os.Mkdir(home, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(home, ".plan"), []byte("Write the \x1b[31mclient\x1b[0m.\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	uid := os.Getuid()
	passwd := fmt.Sprintf("fxalice:x:%d:%d:Alice Fixture,Room 7,5551234,:%s:/bin/sh\n", uid, os.Getgid(), home)
	pwPath := filepath.Join(dir, "passwd")
	if err := os.WriteFile(pwPath, []byte(passwd), 0o644); err != nil {
		t.Fatal(err)
	}
	toml := fmt.Sprintf(`[sources]
passwd = %q
sessions = "none"
lastlog = ""
lastlog2 = ""
wtmpdb = []
mail_spool = ""
login_defs = %q
[policy]
allow_root = true
min_uid = 1
`, pwPath, filepath.Join(dir, "login.defs"))
	confPath := filepath.Join(dir, "fingerd.toml")
	if err := os.WriteFile(confPath, []byte(toml), 0o644); err != nil {
		t.Fatal(err)
	}
	saved := daemonConfigPath
	daemonConfigPath = confPath
	t.Cleanup(func() { daemonConfigPath = saved })

	cfg, err := config.Load(confPath)
	if err != nil {
		t.Fatal(err)
	}
	r, err := hostusers.New(hostusers.FromConfig(cfg))
	if err != nil {
		t.Fatal(err)
	}
	srv := &finger.Server{Handler: r}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	addr := l.Addr().String()

	e := testEnv(t, nil)
	e.local = answerLocal
	for _, args := range [][]string{{"fxalice"}, {"-l", "fxalice"}, {"-u", "fxalice"}, {"nobody_here"}, {}, {"-l"}} {
		local := e.exec(args...)
		var remote result
		if n := len(args); n > 0 && !strings.HasPrefix(args[n-1], "-") {
			remote = e.exec(append(args[:n-1:n-1], args[n-1]+"@"+addr)...)
		} else {
			remote = e.exec(append(args, "@"+addr)...)
		}
		if local.code != 0 || remote.code != 0 || local.stdout != remote.stdout || local.stdout == "" {
			t.Errorf("finger %q: local (exit %d, %q)\nremote (exit %d, %q)\nstderr %q %q",
				args, local.code, local.stdout, remote.code, remote.stdout, local.stderr, remote.stderr)
		}
	}

	r1 := e.exec("fxalice")
	if !strings.Contains(r1.stdout, "Login: fxalice") || !strings.Contains(r1.stdout, "Write the ^[[31mclient^[[0m.") {
		t.Errorf("finger fxalice: %q", r1.stdout)
	}
	if r := e.exec("-p", "fxalice"); strings.Contains(r.stdout, "Write the") || !strings.Contains(r.stdout, "Login: fxalice") {
		t.Errorf("finger -p fxalice: %q", r.stdout)
	}
}
