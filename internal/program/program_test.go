package program

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/openfinger/finger/internal/fingertest"
	"github.com/openfinger/finger/internal/testenv"
)

// slack bounds how late a loaded machine (two cores, the race detector,
// other test binaries) may run a step. Every time limit below is the
// expected duration plus slack, and stays far under the duration it tells
// apart: programs that sleep 100 s, and 20 s timeouts.
const slack = 10 * time.Second

// testCreds returns the IDs programs run as in tests: nobody when the
// tests run as root (Run refuses root), none otherwise.
func testCreds() (uid, gid *uint32) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, g := uint32(65534), uint32(65534)
	return &u, &g
}

// testDir returns a fresh directory the program's user can read and
// enter; world-writable when writable is set.
func testDir(t *testing.T, writable bool) string {
	t.Helper()
	dir := t.TempDir()
	// t.TempDir's parent is private to the test's user.
	if err := os.Chmod(filepath.Dir(dir), 0o755); err != nil {
		t.Fatal(err)
	}
	mode := os.FileMode(0o755)
	if writable {
		mode = 0o777
	}
	if err := os.Chmod(dir, mode); err != nil {
		t.Fatal(err)
	}
	return dir
}

// script writes a /bin/sh script and returns its path.
func script(t *testing.T, dir, name, body string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte("#!/bin/sh\n"+body), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

// scripts writes one script per test case, named prefix0, prefix1...,
// before any of them runs. A script written while a parallel test starts
// a program could not be executed: the child forked meanwhile holds the
// file open for writing until its own exec, and exec then fails with
// "text file busy".
func scripts(t *testing.T, dir, prefix string, tests []struct{ name, body string }) []string {
	t.Helper()
	paths := make([]string, len(tests))
	for i, tt := range tests {
		paths[i] = script(t, dir, prefix+strconv.Itoa(i), tt.body)
	}
	return paths
}

func spec(path string, logs io.Writer) Spec {
	uid, gid := testCreds()
	if logs == nil {
		logs = io.Discard
	}
	return Spec{Path: path, UID: uid, GID: gid, Logger: slog.New(slog.NewTextHandler(logs, nil))}
}

type result struct {
	out string
	err error
	d   time.Duration
}

func run(t *testing.T, s Spec, in Input) result {
	t.Helper()
	var buf bytes.Buffer
	start := time.Now()
	err := Run(context.Background(), s, in, &buf)
	return result{buf.String(), err, time.Since(start)}
}

// firstLinePID parses the process ID a script printed on its first line.
func firstLinePID(t *testing.T, out string) int {
	t.Helper()
	line, _, _ := strings.Cut(out, "\n")
	pid, err := strconv.Atoi(line)
	if err != nil || pid <= 1 {
		t.Fatalf("output %.80q does not start with a process ID", out)
	}
	return pid
}

// groupGone waits until no process of group pgid is left. Killed
// processes reparented to init are reaped by it, so this polls; zombies
// that init has not reaped yet do not count as left running.
func groupGone(t *testing.T, pgid int) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		err := syscall.Kill(-pgid, 0)
		if errors.Is(err, syscall.ESRCH) {
			return
		}
		if time.Now().After(deadline) {
			if live := liveMembers(pgid); len(live) > 0 {
				t.Fatalf("process group %d still has running processes %v", pgid, live)
			}
			t.Logf("process group %d: only unreaped zombies left", pgid)
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// liveMembers lists the processes of group pgid that are not zombies.
func liveMembers(pgid int) []string {
	ents, _ := os.ReadDir("/proc")
	var live []string
	for _, e := range ents {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		// pid (comm) state ppid pgrp ...
		s := string(b)
		i := strings.LastIndexByte(s, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(s[i+1:])
		if len(f) >= 3 && f[2] == strconv.Itoa(pgid) && f[0] != "Z" {
			live = append(live, e.Name()+" "+s[:i+1])
		}
	}
	return live
}

// noLeak checks at the end of the test that no goroutine was left behind.
func noLeak(t *testing.T) {
	before := runtime.NumGoroutine()
	t.Cleanup(func() {
		deadline := time.Now().Add(5 * time.Second)
		for runtime.NumGoroutine() > before {
			if time.Now().After(deadline) {
				buf := make([]byte, 1<<20)
				t.Errorf("goroutines: %d, want <= %d\n%s", runtime.NumGoroutine(), before, buf[:runtime.Stack(buf, true)])
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
	})
}

// TestQueryReachesProgramOnlyAsValues hands hostile names to a program:
// each arrives verbatim in FINGER_USER, never on the command line and
// never interpreted.
func TestQueryReachesProgramOnlyAsValues(t *testing.T) {
	noLeak(t)
	dir := testDir(t, true)
	canary := filepath.Join(dir, "pwned")
	p := script(t, dir, "show", `printf 'argc=%s 1=[%s] 2=[%s]\n' "$#" "$1" "$2"
printf 'user=[%s]\n' "$FINGER_USER"
printf 'verbose=%s client=[%s]\n' "$FINGER_VERBOSE" "$FINGER_CLIENT"
`)
	names := []string{
		"alice",
		"",
		"$(id)",
		"$(touch " + canary + ")",
		"`touch " + canary + "`",
		";rm -rf " + dir,
		"; touch " + canary,
		"| touch " + canary,
		"&& touch " + canary,
		"%n%n%n%s%x",
		"a\nb",
		"line\r\nbreak",
		"-rf",
		"--help",
		"-",
		"' \" \\ * ? ~ $HOME ${PATH} > /dev/null < x",
		"  leading and trailing  ",
		"\u00fcnic\u00f6de \u4f60\u597d",
		"\x1b[31m",
		strings.Repeat("x", 4000),
	}
	for _, name := range names {
		for _, verbose := range []bool{false, true} {
			s := spec(p, nil)
			s.Args = []string{"fixed one", "--fixed"}
			r := run(t, s, Input{User: name, Verbose: verbose, ClientAddr: "192.0.2.1:4000"})
			v := "0"
			if verbose {
				v = "1"
			}
			want := "argc=2 1=[fixed one] 2=[--fixed]\nuser=[" + name + "]\nverbose=" + v + " client=[192.0.2.1:4000]\n"
			if r.err != nil || r.out != want {
				t.Errorf("Run(user %.40q) = %.200q, %v; want %.200q, nil", name, r.out, r.err, want)
			}
		}
	}
	if _, err := os.Stat(canary); err == nil {
		t.Errorf("a query name ran a command: %s exists", canary)
	}
	if _, err := os.Stat(p); err != nil {
		t.Errorf("the program is gone: %v", err)
	}
}

func TestNULInInputRefused(t *testing.T) {
	s := spec("/bin/true", nil)
	for _, in := range []Input{{User: "a\x00b"}, {ClientAddr: "\x00"}} {
		if err := Run(context.Background(), s, in, io.Discard); !errors.Is(err, ErrInvalidInput) {
			t.Errorf("Run(%+v) = %v, want ErrInvalidInput", in, err)
		}
	}
}

// TestCleanEnvironment runs env(1) directly: only the base entries, the
// configured ones and the query's.
func TestCleanEnvironment(t *testing.T) {
	noLeak(t)
	t.Setenv("FINGERD_SECRET", "do-not-pass")
	s := spec("/usr/bin/env", nil)
	s.Env = []string{"TZ=UTC", "LANG=en_US.UTF-8"}
	r := run(t, s, Input{User: "alice", Verbose: true, ClientAddr: "[2001:db8::1]:4000"})
	if r.err != nil {
		t.Fatal(r.err)
	}
	got := strings.Split(strings.TrimSuffix(r.out, "\n"), "\n")
	sort.Strings(got)
	want := []string{
		"FINGER_CLIENT=[2001:db8::1]:4000",
		"FINGER_USER=alice",
		"FINGER_VERBOSE=1",
		"LANG=en_US.UTF-8",
		"PATH=/usr/bin:/bin",
		"TZ=UTC",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("environment:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestNoInheritedDescriptors: the program sees /dev/null on 0, pipes on 1
// and 2, and nothing else, even a descriptor opened without close-on-exec.
func TestNoInheritedDescriptors(t *testing.T) {
	noLeak(t)
	fd, err := syscall.Open("/etc/hostname", syscall.O_RDONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Close(fd)
	s := spec("/bin/ls", nil)
	s.Args = []string{"-l", "/proc/self/fd/"}
	r := run(t, s, Input{User: "alice"})
	if r.err != nil {
		t.Fatal(r.err, r.out)
	}
	fds := map[string]string{}
	for _, line := range strings.Split(r.out, "\n") {
		before, target, ok := strings.Cut(line, " -> ")
		if !ok {
			continue
		}
		f := strings.Fields(before)
		fds[f[len(f)-1]] = target
	}
	if fds["0"] != "/dev/null" || !strings.HasPrefix(fds["1"], "pipe:") || !strings.HasPrefix(fds["2"], "pipe:") || fds["1"] == fds["2"] {
		t.Errorf("descriptors 0-2: %q", fds)
	}
	for n, target := range fds {
		if n != "0" && n != "1" && n != "2" && !strings.HasPrefix(target, "/proc/") {
			t.Errorf("inherited descriptor %s -> %s", n, target)
		}
	}
}

func TestRunsAsConfiguredUserInRoot(t *testing.T) {
	noLeak(t)
	s := spec("/usr/bin/id", nil)
	r := run(t, s, Input{})
	if r.err != nil {
		t.Fatal(r.err)
	}
	if os.Geteuid() == 0 && !strings.HasPrefix(r.out, "uid=65534(") {
		t.Errorf("id: %q, want uid 65534", r.out)
	}
	if os.Geteuid() == 0 && strings.Contains(r.out, "groups=0") {
		t.Errorf("id: %q: supplementary groups kept", r.out)
	}
	s = spec("/bin/pwd", nil)
	if r := run(t, s, Input{}); r.out != "/\n" {
		t.Errorf("working directory %q, want /", r.out)
	}
}

func TestRefusesRoot(t *testing.T) {
	testenv.Root(t, "since only a root caller can forget to give a UID")
	err := Run(context.Background(), Spec{Path: "/bin/true"}, Input{}, io.Discard)
	if !errors.Is(err, ErrRoot) {
		t.Errorf("Run as root without UID = %v, want ErrRoot", err)
	}
	zero := uint32(0)
	err = Run(context.Background(), Spec{Path: "/bin/true", UID: &zero, GID: &zero}, Input{}, io.Discard)
	if !errors.Is(err, ErrRoot) {
		t.Errorf("Run with UID 0 = %v, want ErrRoot", err)
	}
}

func TestValidate(t *testing.T) {
	dir := testDir(t, false)
	ok := script(t, dir, "ok", "true\n")
	noexec := filepath.Join(dir, "noexec")
	os.WriteFile(noexec, []byte("#!/bin/sh\n"), 0o644)
	writable := script(t, dir, "writable", "true\n")
	os.Chmod(writable, 0o777)
	one := uint32(1000)
	tests := []struct {
		name string
		s    Spec
		ok   bool
	}{
		{"absolute path", Spec{Path: ok}, true},
		{"with args and env", Spec{Path: ok, Args: []string{"-x", "$(id)"}, Env: []string{"TZ=UTC", "EMPTY="}}, true},
		{"relative path", Spec{Path: "bin/true"}, false},
		{"bare name", Spec{Path: "true"}, false},
		{"empty path", Spec{}, false},
		{"missing", Spec{Path: filepath.Join(dir, "missing")}, false},
		{"directory", Spec{Path: dir}, false},
		{"not executable", Spec{Path: noexec}, false},
		{"world-writable", Spec{Path: writable}, false},
		{"NUL in arg", Spec{Path: ok, Args: []string{"a\x00b"}}, false},
		{"env without =", Spec{Path: ok, Env: []string{"TZ"}}, false},
		{"env empty key", Spec{Path: ok, Env: []string{"=x"}}, false},
		{"env reserved key", Spec{Path: ok, Env: []string{"FINGER_USER=root"}}, false},
		{"UID without GID", Spec{Path: ok, UID: &one}, false},
	}
	for _, tt := range tests {
		err := tt.s.Validate()
		if (err == nil) != tt.ok {
			t.Errorf("%s: Validate() = %v, want ok=%v", tt.name, err, tt.ok)
		}
		if err != nil && !errors.Is(err, ErrInvalidSpec) {
			t.Errorf("%s: Validate() = %v, want it to wrap ErrInvalidSpec", tt.name, err)
		}
	}
}

// TestForkedDaemon: a program that leaves a background process holding
// its output open returns as soon as it exits, and the background
// process is killed.
func TestForkedDaemon(t *testing.T) {
	noLeak(t)
	dir := testDir(t, false)
	tests := []struct{ name, body string }{
		{"sleep in background", "echo $$\nsleep 100 &\necho started\n"},
		{"subshell in background", "echo $$\n( sleep 100; echo late ) &\necho started\n"},
		{"background without the pipe", "echo $$\nsleep 100 >/dev/null 2>&1 &\necho started\n"},
		{"nohup", "echo $$\nnohup sleep 100 2>/dev/null &\necho started\n"},
	}
	paths := scripts(t, dir, "daemon", tests)
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := spec(paths[i], nil)
			s.Timeout = 20 * time.Second
			r := run(t, s, Input{User: "alice"})
			pgid := firstLinePID(t, r.out)
			if r.err != nil {
				t.Errorf("Run: %v", r.err)
			}
			if !strings.HasSuffix(r.out, "\nstarted\n") {
				t.Errorf("output %q", r.out)
			}
			if r.d > slack {
				t.Errorf("took %v; the background process held Run", r.d)
			}
			groupGone(t, pgid)
		})
	}
}

// TestNeverExits: the timeout kills the whole group and the reply says so.
func TestNeverExits(t *testing.T) {
	noLeak(t)
	dir := testDir(t, false)
	tests := []struct{ name, body string }{
		{"sleeps", "echo $$\nexec sleep 100\n"},
		{"busy loop", "echo $$\nwhile :; do :; done\n"},
		{"ignores signals", "echo $$\ntrap '' TERM INT HUP\nsleep 100 & sleep 100\n"},
		{"partial line", "echo $$\nprintf 'no line end'\nsleep 100\n"},
	}
	paths := scripts(t, dir, "hang", tests)
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := spec(paths[i], nil)
			// Long enough for a loaded machine to print the process ID.
			s.Timeout = time.Second
			r := run(t, s, Input{User: "alice"})
			pgid := firstLinePID(t, r.out)
			if !errors.Is(r.err, ErrTimeout) {
				t.Errorf("Run = %v, want ErrTimeout", r.err)
			}
			if !strings.HasSuffix(r.out, "\n"+NoticeTimeout+"\n") || strings.Contains(r.out, "end"+NoticeTimeout) {
				t.Errorf("output %q, want the timeout notice on its own line", r.out)
			}
			if r.d < s.Timeout || r.d > s.Timeout+slack {
				t.Errorf("took %v with a %v timeout", r.d, s.Timeout)
			}
			groupGone(t, pgid)
		})
	}
}

// TestClosedOutputLingers: a program that closes its output and keeps
// running is killed at the timeout; its complete output gets no notice.
func TestClosedOutputLingers(t *testing.T) {
	noLeak(t)
	dir := testDir(t, false)
	s := spec(script(t, dir, "linger", "echo $$\necho done\nexec >&- 2>&-\nexec sleep 100\n"), nil)
	// Long enough for a loaded machine to run the script up to its sleep:
	// the output must be complete before the deadline.
	s.Timeout = 2 * time.Second
	r := run(t, s, Input{})
	pgid := firstLinePID(t, r.out)
	if !errors.Is(r.err, ErrTimeout) {
		t.Errorf("Run = %v, want ErrTimeout", r.err)
	}
	if want := strconv.Itoa(pgid) + "\ndone\n"; r.out != want {
		t.Errorf("output %q, want %q", r.out, want)
	}
	groupGone(t, pgid)
}

// TestOutputCap: a gigabyte of output is cut at the cap, fast, with a
// notice, and the writer is killed.
func TestOutputCap(t *testing.T) {
	noLeak(t)
	dir := testDir(t, false)
	tests := []struct{ name, body string }{
		{"1 GB", "echo $$\nexec head -c 1073741824 /dev/zero\n"},
		{"forever", "echo $$\nexec yes finger\n"},
		{"forever from a child", "echo $$\nyes finger &\nwait\n"},
	}
	paths := scripts(t, dir, "big", tests)
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := spec(paths[i], nil)
			s.MaxBytes = 64 << 10
			s.Timeout = 20 * time.Second
			var w countingWriter
			start := time.Now()
			err := Run(context.Background(), s, Input{}, &w)
			d := time.Since(start)
			if !errors.Is(err, ErrTruncated) {
				t.Errorf("Run = %v, want ErrTruncated", err)
			}
			notice := fmt.Sprintf(NoticeTruncated, 64<<10) + "\n"
			if w.n != 64<<10+int64(len(notice)) && w.n != 64<<10+1+int64(len(notice)) {
				t.Errorf("wrote %d bytes, want the 65536-byte cap and the notice", w.n)
			}
			if !strings.HasSuffix(w.tail.String(), notice) {
				t.Errorf("output ends %q, want the notice", w.tail.String())
			}
			if d > slack {
				t.Errorf("took %v", d)
			}
			groupGone(t, firstLinePID(t, w.head.String()))
		})
	}
}

// countingWriter keeps the first and last bytes written and the count.
type countingWriter struct {
	n    int64
	head bytes.Buffer
	tail bytes.Buffer
}

func (w *countingWriter) Write(p []byte) (int, error) {
	w.n += int64(len(p))
	if w.head.Len() < 64 {
		w.head.Write(p[:min(len(p), 64-w.head.Len())])
	}
	w.tail.Write(p)
	if w.tail.Len() > 256 {
		b := append([]byte(nil), w.tail.Bytes()[w.tail.Len()-128:]...)
		w.tail.Reset()
		w.tail.Write(b)
	}
	return len(p), nil
}

func TestCapBoundary(t *testing.T) {
	noLeak(t)
	dir := testDir(t, false)
	s := spec(script(t, dir, "ten", "printf 1234567890\n"), nil)
	s.MaxBytes = 10
	if r := run(t, s, Input{}); r.err != nil || r.out != "1234567890" {
		t.Errorf("exactly at the cap: %q, %v", r.out, r.err)
	}
	s = spec(script(t, dir, "eleven", "printf 12345678901\n"), nil)
	s.MaxBytes = 10
	want := "1234567890\n" + fmt.Sprintf(NoticeTruncated, 10) + "\n"
	if r := run(t, s, Input{}); !errors.Is(r.err, ErrTruncated) || r.out != want {
		t.Errorf("one over the cap: %q, %v; want %q, ErrTruncated", r.out, r.err, want)
	}
}

// TestEscapedDaemon: a process that leaves the group with setsid cannot be
// killed with it, but it cannot hold Run either.
func TestEscapedDaemon(t *testing.T) {
	noLeak(t)
	testenv.Program(t, "setsid", "util-linux")
	dir := testDir(t, true)
	pidFile := filepath.Join(dir, "escaped.pid")
	s := spec(script(t, dir, "escape", "echo $$\nsetsid sh -c 'echo $$ > "+pidFile+"; exec sleep 30' &\necho bye\n"), nil)
	s.Timeout = 20 * time.Second
	r := run(t, s, Input{})
	t.Cleanup(func() {
		deadline := time.Now().Add(5 * time.Second)
		for {
			b, err := os.ReadFile(pidFile)
			if pid, perr := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && perr == nil && pid > 1 {
				syscall.Kill(pid, syscall.SIGKILL)
				return
			}
			if time.Now().After(deadline) {
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
	})
	pgid := firstLinePID(t, r.out)
	if r.err != nil || !strings.HasSuffix(r.out, "\nbye\n") {
		t.Errorf("Run = %q, %v", r.out, r.err)
	}
	if r.d > exitGrace+slack {
		t.Errorf("took %v", r.d)
	}
	groupGone(t, pgid)
}

func TestExitStatusAndStderr(t *testing.T) {
	noLeak(t)
	dir := testDir(t, false)
	var logs fingertest.Buffer
	s := spec(script(t, dir, "fail", "echo out\necho 'oops \033[31m' >&2\nhead -c 100000 /dev/zero >&2\nexit 3\n"), &logs)
	r := run(t, s, Input{})
	var ee *exec.ExitError
	if !errors.As(r.err, &ee) || ee.ExitCode() != 3 {
		t.Errorf("Run = %v, want exit status 3", r.err)
	}
	if r.out != "out\n" {
		t.Errorf("output %q", r.out)
	}
	l := logs.String()
	if !strings.Contains(l, `oops \\x1b[31m`) || !strings.Contains(l, "dropped_bytes=") {
		t.Errorf("log %q: want the quoted, capped standard error", l)
	}
	if len(l) > stderrCap*6 {
		t.Errorf("log is %d bytes: standard error not capped", len(l))
	}
}

func TestStartFailure(t *testing.T) {
	dir := testDir(t, false)
	p := filepath.Join(dir, "badinterp")
	os.WriteFile(p, []byte("#!/nonexistent/interpreter\n"), 0o755)
	os.Chmod(p, 0o755)
	if err := Run(context.Background(), spec(p, nil), Input{}, io.Discard); err == nil {
		t.Error("Run of a program with a missing interpreter succeeded")
	}
}

func TestContextCanceled(t *testing.T) {
	noLeak(t)
	dir := testDir(t, false)
	s := spec(script(t, dir, "slow", "echo $$\nexec sleep 100\n"), nil)
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(200*time.Millisecond, cancel)
	var buf bytes.Buffer
	start := time.Now()
	err := Run(ctx, s, Input{}, &buf)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Run = %v, want context.Canceled", err)
	}
	if d := time.Since(start); d > slack {
		t.Errorf("took %v", d)
	}
	if !strings.HasSuffix(buf.String(), "\n"+NoticeTimeout+"\n") {
		t.Errorf("output %q, want the notice of the cut-off", buf.String())
	}
	groupGone(t, firstLinePID(t, buf.String()))
}

// failingWriter fails every write: the client went away.
type failingWriter struct{}

func (failingWriter) Write(p []byte) (int, error) { return 0, errors.New("connection reset") }

func TestWriterFails(t *testing.T) {
	noLeak(t)
	dir := testDir(t, true)
	pidFile := filepath.Join(dir, "pid")
	s := spec(script(t, dir, "yes", "echo $$ > "+pidFile+"\nexec yes\n"), nil)
	s.MaxBytes = -1
	s.Timeout = 20 * time.Second
	start := time.Now()
	err := Run(context.Background(), s, Input{}, failingWriter{})
	if err == nil || !strings.Contains(err.Error(), "connection reset") {
		t.Errorf("Run = %v, want the writer's error", err)
	}
	if d := time.Since(start); d > slack {
		t.Errorf("took %v", d)
	}
	b, _ := os.ReadFile(pidFile)
	groupGone(t, firstLinePID(t, string(b)))
}
