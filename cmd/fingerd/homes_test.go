package main

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/openfinger/finger/internal/privilege"
	"github.com/openfinger/finger/internal/testenv"
)

// children returns the PIDs of pid's child processes.
func children(pid int) []int {
	var out []int
	tasks, _ := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	for _, task := range tasks {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/children", pid, task.Name()))
		if err != nil {
			continue
		}
		for _, f := range strings.Fields(string(b)) {
			if n, err := strconv.Atoi(f); err == nil {
				out = append(out, n)
			}
		}
	}
	return out
}

// homeReaderPID returns the PID of p's home reader.
func homeReaderPID(t *testing.T, p *daemonProc) int {
	t.Helper()
	kids := children(p.cmd.Process.Pid)
	for _, k := range kids {
		if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", k)); err == nil && strings.HasPrefix(string(b), "fingerd (home reader)") {
			return k
		}
	}
	t.Fatalf("fingerd (pid %d) has no home reader among its children %v", p.cmd.Process.Pid, kids)
	return 0
}

// testUser is an account created with useradd for a test, with a home of
// mode 0700, removed (home included) at the end of the test.
type testUser struct {
	login string
	home  string
	uid   int
}

// privateHomeUsers creates n accounts with 0700 homes, named with a prefix
// unique to this test run.
func privateHomeUsers(t *testing.T, n int) []testUser {
	t.Helper()
	testenv.Program(t, "useradd", "passwd")
	var rnd [3]byte
	rand.Read(rnd[:])
	prefix := "fghm" + hex.EncodeToString(rnd[:])
	var users []testUser
	for i := range n {
		login := fmt.Sprintf("%s%c", prefix, 'a'+i)
		if out, err := accountTool("useradd", "-m", "-K", "HOME_MODE=0700", "-s", "/bin/sh", "-c", "Private Home "+string(rune('A'+i)), login); err != nil {
			t.Fatalf("useradd %s: %v\n%s", login, err, out)
		}
		t.Cleanup(func() { accountTool("userdel", "-r", login) })
		u := testUser{login: login, home: "/home/" + login}
		var st syscall.Stat_t
		if err := syscall.Stat(u.home, &st); err != nil {
			t.Fatal(err)
		}
		if st.Mode&0o777 != 0o700 {
			t.Fatalf("%s has mode %o, want 0700", u.home, st.Mode&0o777)
		}
		u.uid = int(st.Uid)
		users = append(users, u)
	}
	return users
}

// accountTool runs useradd or userdel, again while another process holds
// the lock on the account files (other tests may add accounts meanwhile).
func accountTool(name string, args ...string) ([]byte, error) {
	var out []byte
	var err error
	for try := 0; try < 50; try++ {
		out, err = exec.Command(name, args...).CombinedOutput()
		if err == nil || !bytes.Contains(out, []byte("lock")) {
			return out, err
		}
		time.Sleep(100 * time.Millisecond)
	}
	return out, err
}

// put writes a file in u's home, owned by u, with mode perm.
func (u testUser) put(t *testing.T, name, content string, perm os.FileMode) {
	t.Helper()
	p := filepath.Join(u.home, name)
	if err := os.WriteFile(p, []byte(content), perm); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, perm); err != nil {
		t.Fatal(err)
	}
	if err := os.Lchown(p, u.uid, u.uid); err != nil {
		t.Fatal(err)
	}
}

// privateHomes sets up the accounts of TestPrivateHomes: shown has a
// published .plan and .pgpkey, a .project that is a symbolic link to a
// world-readable file and a private file readable by others in its 0700
// home; hidden has a .plan and a .nofinger.
type privateHomes struct {
	shown, hidden testUser
	plan, secret  string
}

func newPrivateHomes(t *testing.T) *privateHomes {
	users := privateHomeUsers(t, 2)
	h := &privateHomes{shown: users[0], hidden: users[1], plan: "plan of " + users[0].login, secret: "not published " + users[0].login}
	h.shown.put(t, ".plan", h.plan+"\n", 0o644)
	h.shown.put(t, ".pgpkey", "key of "+users[0].login+"\n", 0o644)
	h.shown.put(t, "notes.txt", h.secret+"\n", 0o644)
	if err := os.Symlink("notes.txt", filepath.Join(h.shown.home, ".project")); err != nil {
		t.Fatal(err)
	}
	os.Lchown(filepath.Join(h.shown.home, ".project"), h.shown.uid, h.shown.uid)
	h.hidden.put(t, ".plan", "plan of "+users[1].login+"\n", 0o644)
	h.hidden.put(t, ".nofinger", "", 0o600)
	return h
}

// fixture returns a fixture whose passwd file holds root and the two
// users of h.
func (h *privateHomes) fixture(t *testing.T) *fixture {
	t.Helper()
	f := newFixture(t, "")
	passwd := "root:x:0:0:root:/root:/bin/bash\n"
	for _, u := range []testUser{h.shown, h.hidden} {
		passwd += fmt.Sprintf("%s:x:%d:%d:Private Home:%s:/bin/sh\n", u.login, u.uid, u.uid, u.home)
	}
	if err := os.WriteFile(filepath.Join(f.dir, "passwd"), []byte(passwd), 0o644); err != nil {
		t.Fatal(err)
	}
	return f
}

// check queries fingerd through ask and checks what a user of the shipped
// setup must see.
func (h *privateHomes) check(t *testing.T, ask func(line string) string) {
	t.Helper()
	r := ask(h.shown.login + "\r\n")
	for _, want := range []string{"Login: " + h.shown.login, "Plan:\r\n" + h.plan, "PGP key:\r\nkey of " + h.shown.login} {
		if !strings.Contains(r, want) {
			t.Errorf("reply for %s (0700 home, .plan mode 0644) = %q, want it to contain %q", h.shown.login, r, want)
		}
	}
	if strings.Contains(r, h.secret) {
		t.Errorf("reply for %s shows the file a .project symlink points to: %q", h.shown.login, r)
	}
	// A .nofinger in a 0700 home hides the user exactly like an unknown
	// login.
	unknown := h.hidden.login + "zz"
	got := ask(h.hidden.login + "\r\n")
	want := strings.ReplaceAll(ask(unknown+"\r\n"), unknown, h.hidden.login)
	if got != want {
		t.Errorf("reply for %s (.nofinger in a 0700 home) = %q, want the unknown-user reply %q", h.hidden.login, got, want)
	}
	if r := ask("Private\r\n"); strings.Contains(r, h.hidden.login) || !strings.Contains(r, h.shown.login) {
		t.Errorf("real-name query = %q, want %s and not %s", r, h.shown.login, h.hidden.login)
	}
}

// contribConfig is the shipped example configuration.
const contribConfig = "../../contrib/fingerd.toml"

// TestPrivateHomes starts fingerd as root with the shipped configuration,
// in each production mode, and checks that published files in homes of
// mode 0700 are shown and that .nofinger there hides the user, with the
// usual file rules.
func TestPrivateHomes(t *testing.T) {
	needRootForDrop(t)
	h := newPrivateHomes(t)
	cfg, err := filepath.Abs(contribConfig)
	if err != nil {
		t.Fatal(err)
	}
	nobody, err := privilege.Lookup("nobody", "")
	if err != nil {
		t.Fatal(err)
	}

	t.Run("standalone", func(t *testing.T) {
		p := startDaemon(t, "-config", cfg, "-listen", "127.0.0.1:0")
		h.check(t, func(line string) string { return query(t, p.addrs[0], "", line) })
		checkThreads(t, p.cmd.Process.Pid, nobody.UID, nobody.GID, 0)
		checkThreads(t, homeReaderPID(t, p), nobody.UID, nobody.GID, 1<<2)
		if p.log.count(`cannot be searched`) != 0 {
			t.Errorf("fingerd with the home reader warns about unsearchable homes:\n%s", p.log.String())
		}
	})

	t.Run("inetd", func(t *testing.T) {
		// The command of contrib/inetd.conf, on a connected socket.
		args := inetdArgs(t)
		h.check(t, func(line string) string {
			fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
			if err != nil {
				t.Fatal(err)
			}
			ours, theirs := os.NewFile(uintptr(fds[0]), "client"), os.NewFile(uintptr(fds[1]), "server")
			defer ours.Close()
			cmd := exec.Command(binary, append(args, "-config", cfg)...)
			cmd.Stdin, cmd.Stdout = theirs, theirs
			p := startCmd(t, cmd)
			theirs.Close()
			c, err := net.FileConn(ours)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			io.WriteString(c, line)
			r := readAll(t, c)
			if code := p.wait(t, 10*time.Second); code != 0 {
				t.Fatalf("fingerd -inetd exit %d\n%s", code, p.log.String())
			}
			return r
		})
	})

	// The systemd units: fingerd.service's ExecStart and capability
	// bounding set, behind systemd-socket-activate in the socket's mode
	// (Accept=no) and in the per-connection mode (Accept=yes).
	ssa := testenv.Program(t, "systemd-socket-activate", "systemd")
	setpriv := testenv.Program(t, "setpriv", "util-linux")
	unitArgs, bounding := serviceUnit(t)
	for _, mode := range []struct {
		name  string
		flags []string
	}{{"socket Accept=no", nil}, {"socket Accept=yes", []string{"--accept"}}} {
		t.Run(mode.name, func(t *testing.T) {
			command := append([]string{setpriv, "--bounding-set=-all," + bounding, "--no-new-privs", binary}, unitArgs...)
			_, addr := startSSA(t, ssa, mode.flags, append(command, "-config", cfg)...)
			h.check(t, func(line string) string {
				c := dialRetry(t, addr)
				defer c.Close()
				io.WriteString(c, line)
				return readAll(t, c)
			})
		})
	}
}

// inetdArgs returns the arguments of the IPv4 line of contrib/inetd.conf.
func inetdArgs(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile("../../contrib/inetd.conf")
	if err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(strings.NewReader(string(b)))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) >= 7 && f[0] == "finger" && f[2] == "tcp" {
			if f[4] != "root" || f[5] != "/usr/sbin/fingerd" {
				t.Fatalf("contrib/inetd.conf runs %s as %s, want /usr/sbin/fingerd as root", f[5], f[4])
			}
			return f[7:]
		}
	}
	t.Fatal("contrib/inetd.conf has no finger tcp line")
	return nil
}

// serviceUnit returns the arguments of fingerd.service's ExecStart (the
// configuration left out) and its capability bounding set in setpriv's
// form (+cap,+cap).
func serviceUnit(t *testing.T) (args []string, bounding string) {
	t.Helper()
	b, err := os.ReadFile("../../contrib/systemd/fingerd.service")
	if err != nil {
		t.Fatal(err)
	}
	var caps []string
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "ExecStart="); ok {
			f := strings.Fields(v)
			if f[0] != "/usr/sbin/fingerd" {
				t.Fatalf("fingerd.service runs %s, want /usr/sbin/fingerd", f[0])
			}
			for i := 1; i < len(f); i++ {
				if f[i] == "-config" {
					i++
					continue
				}
				args = append(args, f[i])
			}
		}
		if v, ok := strings.CutPrefix(line, "CapabilityBoundingSet="); ok {
			for _, c := range strings.Fields(v) {
				caps = append(caps, "+"+strings.ToLower(strings.TrimPrefix(c, "CAP_")))
			}
		}
		if v, ok := strings.CutPrefix(line, "User="); ok && v != "" && v != "root" {
			t.Fatalf("fingerd.service runs as %s; fingerd must start as root to keep the home reader", v)
		}
		if strings.HasPrefix(line, "DynamicUser=yes") {
			t.Fatal("fingerd.service uses DynamicUser; fingerd must start as root to keep the home reader")
		}
	}
	if len(caps) == 0 {
		t.Fatal("fingerd.service has no CapabilityBoundingSet")
	}
	return args, strings.Join(caps, ",")
}

// TestUnsearchableHomesUnprivileged starts fingerd as an ordinary user (the
// quick start): it warns once how many homes it cannot search, and
// policy.hide_unreadable_homes hides their users.
func TestUnsearchableHomesUnprivileged(t *testing.T) {
	needRootForDrop(t)
	h := newPrivateHomes(t)
	nobody, err := privilege.Lookup("nobody", "")
	if err != nil {
		t.Fatal(err)
	}
	f := h.fixture(t)
	start := func(t *testing.T) *daemonProc {
		cmd := exec.Command(binary, "-config", f.config)
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(nobody.UID), Gid: uint32(nobody.GID)}}
		p := startCmd(t, cmd)
		m := p.waitStarted(t)
		p.addrs = strings.Split(m[1], ",")
		return p
	}
	t.Run("shown", func(t *testing.T) {
		p := start(t)
		if n := p.log.count(`msg="fingerd: some home directories cannot be searched \(mode 0700\?\).*" homes=2 users=2`); n != 1 {
			t.Errorf("warning about unsearchable homes logged %d times, want once with homes=2:\n%s", n, p.log.String())
		}
		r := query(t, p.addrs[0], "", h.shown.login+"\r\n")
		if !strings.Contains(r, "Login: "+h.shown.login) || !strings.Contains(r, "No Plan.") {
			t.Errorf("reply = %q, want the user without a plan", r)
		}
		if n := p.log.count(`cannot be searched`); n != 1 {
			t.Errorf("the warning was logged %d times, want once", n)
		}
	})
	t.Run("hide_unreadable_homes", func(t *testing.T) {
		f.write(t, "[policy]\nhide_unreadable_homes = true\n")
		p := start(t)
		p.log.waitFor(t, `their users are hidden \(policy.hide_unreadable_homes\)" homes=2`, 10*time.Second)
		for _, u := range []testUser{h.shown, h.hidden} {
			if r := query(t, p.addrs[0], "", u.login+"\r\n"); !strings.Contains(r, "no such user") {
				t.Errorf("reply for %s = %q, want it hidden", u.login, r)
			}
		}
	})
}

// TestReaderWithoutCapability starts fingerd as root where
// CAP_DAC_READ_SEARCH is withheld from the bounding set (a container, a
// unit without it): it serves without a home reader, says why, and says
// how many homes it cannot search.
func TestReaderWithoutCapability(t *testing.T) {
	needRootForDrop(t)
	setpriv := testenv.Program(t, "setpriv", "util-linux")
	h := newPrivateHomes(t)
	f := h.fixture(t)
	p := startCmd(t, exec.Command(setpriv, "--bounding-set=-dac_read_search", binary, "-config", f.config))
	m := p.waitStarted(t)
	p.addrs = strings.Split(m[1], ",")
	for _, want := range []string{`CAP_DAC_READ_SEARCH is not in the capability bounding set; no home reader`, `cannot be searched \(mode 0700\?\).* homes=2 users=2`} {
		if p.log.count(want) != 1 {
			t.Errorf("log has no single line matching %q:\n%s", want, p.log.String())
		}
	}
	if kids := children(p.cmd.Process.Pid); len(kids) != 0 {
		t.Errorf("fingerd started child processes %v without the capability", kids)
	}
	if r := query(t, p.addrs[0], "", h.shown.login+"\r\n"); !strings.Contains(r, "Login: "+h.shown.login) || !strings.Contains(r, "No Plan.") {
		t.Errorf("reply = %q, want the user without a plan", r)
	}
}
