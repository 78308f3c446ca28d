package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/openfinger/finger/internal/program"
	"github.com/openfinger/finger/internal/testenv"
)

// needRootForDrop fails under CI (which runs as root) and skips
// elsewhere: these tests start fingerd as root so that it drops to nobody.
func needRootForDrop(t *testing.T) {
	t.Helper()
	testenv.Root(t, "to start fingerd as root so that it drops to nobody")
}

// writeScript writes a /bin/sh script the way an administrator installs a
// program: owned by root, mode 0755, in a directory nobody can search.
func writeScript(t *testing.T, dir, name, body string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte("#!/bin/sh\n"+body), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, 0o755); err != nil { // whatever the umask
		t.Fatal(err)
	}
	if err := os.Chown(p, 0, 0); err != nil {
		t.Fatal(err)
	}
	return p
}

// groupAlive returns the PIDs of the processes of process group pgid that
// have not exited (zombies are dead and left out).
func groupAlive(pgid int) []int {
	ents, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid pgrp ...: comm may hold spaces and
		// parentheses, so fields are counted after its last ')'.
		s := string(b)
		i := strings.LastIndexByte(s, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(s[i+1:])
		if len(f) < 3 || f[0] == "Z" || f[0] == "X" {
			continue
		}
		if g, err := strconv.Atoi(f[2]); err == nil && g == pgid {
			pids = append(pids, pid)
		}
	}
	return pids
}

// TestPrograms runs fingerd as root, dropping to nobody, with virtual
// users answered by programs under the Landlock view for programs.
func TestPrograms(t *testing.T) {
	needRootForDrop(t)
	f := newFixture(t, "")
	hello := writeScript(t, f.dir, "hello",
		`printf 'hello from %s: user=[%s] verbose=%s argc=%d args=[%s] uid=%s\n' "$0" "$FINGER_USER" "$FINGER_VERBOSE" "$#" "$*" "$(id -u)"
case "$FINGER_CLIENT" in 127.0.0.1:*) echo client=loopback;; *) echo "client=[$FINGER_CLIENT]";; esac
echo "to the operator log" >&2
`)
	forever := writeScript(t, f.dir, "forever",
		`echo "pgid=$$"
sleep 1000 &
while :; do sleep 1; done
`)
	// A login made of shell metacharacters, a format directive and a
	// leading '-': it may reach the program only as FINGER_USER.
	meta := "-x$(id)`id`;|&<>*?'\"\\%n${HOME}"
	f.write(t, fmt.Sprintf(`[programs]
enabled = true
[[virtual]]
login = "hello"
program = [%q, "fixed arg", "-x"]
[[virtual]]
login = %q
program = [%q]
[[virtual]]
login = "forever"
program = [%q]
timeout = "1s"
`, hello, meta, hello, forever))
	p := startDaemon(t, "-config", f.config, "-user", "nobody")
	nobody := strconv.Itoa(nobodyUID(t))

	want := "hello from " + hello + ": user=[hello] verbose=0 argc=2 args=[fixed arg -x] uid=" + nobody + "\r\nclient=loopback\r\n"
	if r := query(t, p.addrs[0], "", "hello\r\n"); r != want {
		t.Errorf("program reply = %q, want %q", r, want)
	}
	if r := query(t, p.addrs[0], "", "/W hello\r\n"); !strings.Contains(r, "verbose=1") {
		t.Errorf("/W reply = %q, want verbose=1", r)
	}
	want = "hello from " + hello + ": user=[" + meta + "] verbose=0 argc=0 args=[] uid=" + nobody + "\r\nclient=loopback\r\n"
	if r := query(t, p.addrs[0], "", meta+"\r\n"); r != want {
		t.Errorf("metacharacter query reply = %q, want %q", r, want)
	}
	p.log.waitFor(t, `program: standard error.*to the operator log`, 10*time.Second)

	start := time.Now()
	r := query(t, p.addrs[0], "", "forever\r\n")
	took := time.Since(start)
	if !strings.HasSuffix(r, "\r\n"+program.NoticeTimeout+"\r\n") {
		t.Fatalf("reply of a program that never exits = %q, want it to end with the timeout notice", r)
	}
	if took < time.Second {
		t.Errorf("timed out after %v, before its 1s timeout", took)
	}
	var pgid int
	if _, err := fmt.Sscanf(r, "pgid=%d", &pgid); err != nil || pgid <= 1 {
		t.Fatalf("reply %q does not start with the program's process group", r)
	}
	// The group was killed before the reply ended; give the kernel a
	// moment to finish the deaths it has started.
	deadline := time.Now().Add(5 * time.Second)
	for {
		left := groupAlive(pgid)
		if len(left) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("processes %v of the program's group %d are still running", left, pgid)
		}
		time.Sleep(20 * time.Millisecond)
	}
	p.log.waitFor(t, `program: timed out; process group killed`, 10*time.Second)
	// The daemon still serves its host's users.
	wantAlice(t, query(t, p.addrs[0], "", aliceLine))
}

func nobodyUID(t *testing.T) int {
	t.Helper()
	b, err := os.ReadFile("/etc/passwd")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Split(line, ":")
		if len(f) > 2 && f[0] == "nobody" {
			n, err := strconv.Atoi(f[2])
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Fatal("no nobody in /etc/passwd")
	return 0
}

// TestProgramConfigErrors: a program that cannot be run is a
// configuration error naming its [[virtual]] entry.
func TestProgramConfigErrors(t *testing.T) {
	f := newFixture(t, "")
	writable := writeScript(t, f.dir, "writable", "echo hi\n")
	os.Chmod(writable, 0o777)
	for _, tc := range []struct{ path, want string }{
		{filepath.Join(f.dir, "missing"), "no such file"},
		{writable, "writable by group or others"},
		{f.dir, "not a regular file"},
	} {
		f.write(t, fmt.Sprintf("[programs]\nenabled = true\n[[virtual]]\nlogin = \"text\"\ntext = \"x\"\n[[virtual]]\nlogin = \"broken\"\nprogram = [%q]\n", tc.path))
		_, stderr, code := runFingerd(t, nil, "-config", f.config, "-check-config")
		if code != 1 || !strings.Contains(stderr, "virtual.1.program") || !strings.Contains(stderr, `"broken"`) ||
			!strings.Contains(stderr, tc.want) || !strings.Contains(stderr, "fingerd.toml:") {
			t.Errorf("program %s: exit %d, stderr %q; want 1 and an error naming virtual.1.program, \"broken\" and %q",
				tc.path, code, stderr, tc.want)
		}
	}
}
