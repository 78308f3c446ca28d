package main

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/openfinger/finger/internal/privilege"
	"github.com/openfinger/finger/internal/testenv"
	"github.com/openfinger/finger/internal/userinfo"
)

func TestHomeDir(t *testing.T) {
	tests := []struct {
		a    userinfo.Account
		want string
	}{
		{userinfo.Account{Login: "alice", UID: 1000, Home: "/home/alice"}, "/home"},
		{userinfo.Account{Login: "bob", UID: 1001, Home: "/home/bob/"}, "/home"},
		{userinfo.Account{Login: "carol", UID: 1002, Home: "/var/home/carol"}, "/var/home"},
		{userinfo.Account{Login: "dave", UID: 1003, Home: "/srv/dave"}, "/srv/dave"},
		{userinfo.Account{Login: "erin", UID: 1004, Home: "/u"}, "/u"},
		{userinfo.Account{Login: "systemd-network", UID: 998, Home: "/"}, ""},
		{userinfo.Account{Login: "slash", UID: 1005, Home: "/"}, ""},
		{userinfo.Account{Login: "root", UID: 0, Home: "/root"}, "/root"},
		{userinfo.Account{Login: "toor", UID: 1006, Home: "/root"}, ""},
		{userinfo.Account{Login: "sub", UID: 1007, Home: "/root/sub"}, ""},
		{userinfo.Account{Login: "sbin", UID: 1008, Home: "/usr/sbin"}, ""},
		{userinfo.Account{Login: "deep", UID: 1009, Home: "/usr/local/deep"}, ""},
		{userinfo.Account{Login: "daemon", UID: 1010, Home: "/var/lib/daemon"}, ""},
		{userinfo.Account{Login: "run", UID: 1011, Home: "/run/run"}, ""},
		{userinfo.Account{Login: "var", UID: 1012, Home: "/var"}, ""},
		{userinfo.Account{Login: "proc", UID: 1013, Home: "/proc/1"}, ""},
		{userinfo.Account{Login: "etc", UID: 1014, Home: "/etc/x"}, ""},
		{userinfo.Account{Login: "opt", UID: 1015, Home: "/opt"}, ""},
		{userinfo.Account{Login: "rel", UID: 1016, Home: "home/rel"}, ""},
		{userinfo.Account{Login: "none", UID: 1017, Home: "/nonexistent"}, "/nonexistent"},
	}
	for _, tt := range tests {
		if got := homeDir(&tt.a); got != tt.want {
			t.Errorf("homeDir(%q) = %q, want %q", tt.a.Home, got, tt.want)
		}
	}
}

// viewPasswd is a passwd file like a stock Debian 12's, with system
// accounts whose home is / or a system directory, and ordinary accounts
// in /home and in a home of / too.
const viewPasswd = "root:x:0:0:root:/root:/bin/bash\n" +
	"daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n" +
	"www-data:x:33:33:www-data:/var/www:/usr/sbin/nologin\n" +
	"systemd-network:x:998:998:systemd Network Management:/:/usr/sbin/nologin\n" +
	"systemd-timesync:x:997:997:systemd Time Synchronization:/:/usr/sbin/nologin\n" +
	"messagebus:x:100:107::/nonexistent:/usr/sbin/nologin\n" +
	"fgview_alice:x:1001:1001:Alice:/home/fgview_alice:/bin/sh\n" +
	"fgview_slash:x:1002:1002:Slash:/:/bin/sh\n" +
	"fgview_sbin:x:1003:1003:Sbin:/usr/sbin:/bin/sh\n" +
	"fgview_srv:x:1004:1004:Srv:/srv/fgview_srv:/bin/sh\n" +
	"nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n"

// viewRules runs fingerd -check-config and returns the Landlock rules it
// prints for the serving process and for the home reader.
func viewRules(t *testing.T, config string) (serving, reader []string) {
	t.Helper()
	out, stderr, code := runFingerd(t, nil, "-config", config, "-check-config")
	if code != 0 {
		t.Fatalf("-check-config: exit %d, stderr %q", code, stderr)
	}
	var cur *[]string
	for _, line := range strings.Split(out, "\n") {
		switch {
		case strings.HasPrefix(line, "# Landlock view of the serving process"):
			cur = &serving
		case strings.HasPrefix(line, "# Landlock view of the home reader"):
			cur = &reader
		case strings.HasPrefix(line, "#   ") && cur != nil:
			*cur = append(*cur, strings.TrimPrefix(line, "#   "))
		}
	}
	if len(serving) == 0 {
		t.Fatalf("-check-config prints no Landlock view:\n%s", out)
	}
	return serving, reader
}

// TestLandlockView lists the view fingerd derives from a passwd file with
// accounts whose home is / or a system directory, then proves with a real
// daemon that a virtual user's program (which inherits the daemon's
// Landlock domain) can read none of /opt, /srv, /boot, /root, /etc/shadow
// and can write nothing.
func TestLandlockView(t *testing.T) {
	needRootForDrop(t)
	testenv.Require(t, privilege.ABI() > 0, "a kernel with Landlock")
	f := newFixture(t, "")
	if err := os.WriteFile(filepath.Join(f.dir, "passwd"), []byte(viewPasswd), 0o644); err != nil {
		t.Fatal(err)
	}
	var rnd [3]byte
	rand.Read(rnd[:])
	tag := "fgview" + hex.EncodeToString(rnd[:])
	// World-readable files in the trees that must stay out of view, so
	// that only Landlock can refuse them (/root and /etc/shadow are
	// refused by their modes too).
	probes := map[string]string{}
	for _, dir := range []string{"/opt", "/srv", "/boot"} {
		d := filepath.Join(dir, tag)
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.RemoveAll(d) })
		p := filepath.Join(d, "probe")
		if err := os.WriteFile(p, []byte("readable\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		probes[dir] = p
	}
	// The script's checks write nowhere (not even /dev/null, which the
	// view does not let it open for writing): a failure is a refusal.
	script := writeScript(t, f.dir, "probe", fmt.Sprintf(`for d in /opt /srv /boot /root /srv/fgview_srv/.. /; do
	if out=$(ls "$d" 2>&1); then echo "list $d: allowed"; else echo "list $d: denied"; fi
done
for p in %s %s %s /etc/shadow /root/.bashrc /etc/passwd; do
	if out=$(cat "$p" 2>&1); then echo "read $p: allowed"; else echo "read $p: denied"; fi
done
if out=$( (echo x >/tmp/%s) 2>&1); then echo "write /tmp: allowed"; else echo "write /tmp: denied"; fi
`, probes["/opt"], probes["/srv"], probes["/boot"], tag))
	t.Cleanup(func() { os.Remove("/tmp/" + tag) })
	f.write(t, fmt.Sprintf("[programs]\nenabled = true\n[[virtual]]\nlogin = \"probe\"\nprogram = [%q]\n", script))

	serving, reader := viewRules(t, f.config)
	all := append(append([]string{}, serving...), reader...)
	for _, bad := range []string{"dir /", "dir /root", "dir /srv", "dir /opt", "dir /boot", "dir /var", "dir /run", "dir /proc", "dir /usr/sbin", "dir /var/www", "dir /nonexistent"} {
		if slices.Contains(all, bad) {
			t.Errorf("Landlock view has %q:\nserving: %q\nreader: %q", bad, serving, reader)
		}
	}
	// Root starts a home reader: the homes are in its view, not in the
	// serving process's.
	for _, want := range []string{"dir /home", "dir /srv/fgview_srv"} {
		if !slices.Contains(reader, want) {
			t.Errorf("home reader's view %q lacks %q", reader, want)
		}
		if slices.Contains(serving, want) {
			t.Errorf("serving view %q has %q; the home reader reads the homes", serving, want)
		}
	}
	if len(reader) != 2 {
		t.Errorf("home reader's view = %q, want the two home directories only", reader)
	}
	if !slices.Contains(serving, "dir "+f.dir) {
		t.Errorf("serving view %q lacks the passwd file's directory %s", serving, f.dir)
	}

	p := startDaemon(t, "-config", f.config)
	r := query(t, p.addrs[0], "", "probe\r\n")
	want := []string{
		"list /opt: denied", "list /srv: denied", "list /boot: denied", "list /root: denied",
		"list /srv/fgview_srv/..: denied", "list /: denied",
		"read " + probes["/opt"] + ": denied", "read " + probes["/srv"] + ": denied", "read " + probes["/boot"] + ": denied",
		"read /etc/shadow: denied", "read /root/.bashrc: denied",
		"read /etc/passwd: allowed", // the name service needs it; the program's own check that it runs at all
		"write /tmp: denied",
	}
	for _, w := range want {
		if !strings.Contains(r, w+"\r\n") {
			t.Errorf("program under fingerd's Landlock domain: want %q in\n%s", w, r)
		}
	}
	if _, err := os.Stat("/tmp/" + tag); err == nil {
		t.Errorf("the program wrote /tmp/%s", tag)
	}

	// allow_root serves root and opens its home, /root, to the home
	// reader, and to nothing else.
	f.write(t, fmt.Sprintf("[policy]\nallow_root = true\n[programs]\nenabled = true\n[[virtual]]\nlogin = \"probe\"\nprogram = [%q]\n", script))
	serving, reader = viewRules(t, f.config)
	if !slices.Contains(reader, "dir /root") || slices.Contains(serving, "dir /root") {
		t.Errorf("with allow_root: serving %q, reader %q; want /root in the reader's view only", serving, reader)
	}
}

// TestHomeReaderConfined checks that the home reader, which keeps
// CAP_DAC_READ_SEARCH, reads nothing outside the home directories fingerd
// derives: a user whose home lies in a system tree (here /usr/local) has a
// world-readable .plan there, which the reader may not open under Landlock
// and opens without it.
func TestHomeReaderConfined(t *testing.T) {
	needRootForDrop(t)
	testenv.Require(t, privilege.ABI() > 0, "a kernel with Landlock")
	var rnd [3]byte
	rand.Read(rnd[:])
	login := "fgrd" + hex.EncodeToString(rnd[:])
	home := filepath.Join("/usr/local", login)
	if err := os.Mkdir(home, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(home) })
	const uid = 4711
	plan := filepath.Join(home, ".plan")
	if err := os.WriteFile(plan, []byte("plan outside the homes\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(plan, uid, uid); err != nil {
		t.Fatal(err)
	}
	f := newFixture(t, "")
	line := fmt.Sprintf("%s:x:%d:%d:Reader Probe:%s:/bin/sh\n", login, uid, uid, home)
	if err := os.WriteFile(filepath.Join(f.dir, "passwd"), []byte(testPasswd+line), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		landlock bool
		want     string
	}{
		{true, "No Plan."},
		{false, "plan outside the homes"},
	} {
		f.write(t, fmt.Sprintf("keep_dac_read_search = true\nlandlock = %v\n", tt.landlock))
		p := startDaemon(t, "-config", f.config)
		homeReaderPID(t, p)
		if r := query(t, p.addrs[0], "", login+"\r\n"); !strings.Contains(r, "Login: "+login) || !strings.Contains(r, tt.want) {
			t.Errorf("landlock = %v: reply %q, want the user with %q", tt.landlock, r, tt.want)
		}
	}
}

// TestLandlockViewStore: with a SQLite store, -check-config shows the one
// directory the serving process may write, the store's, and the home
// reader may not.
func TestLandlockViewStore(t *testing.T) {
	f := newFixture(t, "")
	state := filepath.Join(f.dir, "state")
	f.write(t, fmt.Sprintf("\n[store]\nurl = %q\n", "sqlite:"+filepath.Join(state, "fingerd.db")))
	serving, reader := viewRules(t, f.config)
	var writable []string
	for _, r := range append(append([]string{}, serving...), reader...) {
		if strings.HasPrefix(r, "rw-dir ") {
			writable = append(writable, r)
		}
	}
	if want := []string{"rw-dir " + state}; !slices.Equal(writable, want) || !slices.Contains(serving, want[0]) {
		t.Errorf("writable rules %q (serving %q, reader %q), want %q in the serving view only", writable, serving, reader, want)
	}
}

// TestProgramCannotWriteStore: with a SQLite store the daemon writes the
// store's directory; a virtual user's program, which runs as the same
// user, can neither create a file there nor change or remove the
// database.
func TestProgramCannotWriteStore(t *testing.T) {
	needRootForDrop(t)
	testenv.Require(t, privilege.ABI() > 0, "a kernel with Landlock")
	f := newFixture(t, "")
	state := filepath.Join(f.dir, "state")
	if err := os.Mkdir(state, 0o755); err != nil {
		t.Fatal(err)
	}
	db := filepath.Join(state, "fingerd.db")
	// No check writes anywhere, not even /dev/null: a failure is a refusal.
	script := writeScript(t, f.dir, "probe", fmt.Sprintf(`check() { if out=$( (eval "$2") 2>&1); then echo "$1: allowed"; else echo "$1: denied"; fi; }
check "create in the store" 'echo x >%[1]s/planted'
check "append to the database" 'echo x >>%[2]s'
check "remove the database" 'rm %[2]s'
check "read the passwd file" 'cat /etc/passwd'
check "signal fingerd" 'kill -0 $PPID'
`, state, db))
	f.write(t, fmt.Sprintf("\n[programs]\nenabled = true\n[[virtual]]\nlogin = \"probe\"\nprogram = [%q]\n[store]\nurl = %q\n", script, "sqlite:"+db))
	p := startDaemon(t, "-config", f.config)
	p.log.waitFor(t, `fingerd: hosted users loaded`, 10*time.Second)
	r := query(t, p.addrs[0], "", "probe\r\n")
	want := []string{
		"create in the store: denied", "append to the database: denied", "remove the database: denied",
		"read the passwd file: allowed", // the program ran
	}
	if privilege.ABI() >= 6 { // Landlock scopes signals from ABI 6 on
		want = append(want, "signal fingerd: denied")
	}
	for _, w := range want {
		if !strings.Contains(r, w+"\r\n") {
			t.Errorf("program with a SQLite store: want %q in\n%s", w, r)
		}
	}
	if _, err := os.Stat(filepath.Join(state, "planted")); err == nil {
		t.Errorf("the program created a file in the store's directory")
	}
	if fi, err := os.Stat(db); err != nil || fi.Size() == 0 {
		t.Errorf("the database after the program ran: %v", err)
	}
}

// TestLandlockEtcReplaced: tools replace /etc/passwd, /etc/group,
// /etc/resolv.conf and the like by renaming a new copy over them, and a
// Landlock rule on a file covers only the copy it was made on. fingerd
// serving from a passwd file of its own still reads /etc for the name
// service: after /etc/passwd is replaced (as useradd does, under the
// passwd lock), its domain can still read it.
func TestLandlockEtcReplaced(t *testing.T) {
	needRootForDrop(t)
	testenv.Require(t, privilege.ABI() > 0, "a kernel with Landlock")
	f := newFixture(t, "")
	script := writeScript(t, f.dir, "probe", `if out=$(cat /etc/passwd 2>&1); then echo "read /etc/passwd: allowed"; else echo "read /etc/passwd: denied: $out"; fi
`)
	f.write(t, fmt.Sprintf("[programs]\nenabled = true\n[[virtual]]\nlogin = \"probe\"\nprogram = [%q]\n", script))
	p := startDaemon(t, "-config", f.config)
	const want = "read /etc/passwd: allowed\r\n"
	if r := query(t, p.addrs[0], "", "probe\r\n"); !strings.Contains(r, want) {
		t.Fatalf("before /etc/passwd is replaced: want %q in\n%s", want, r)
	}
	replaceEtcPasswd(t)
	if r := query(t, p.addrs[0], "", "probe\r\n"); !strings.Contains(r, want) {
		t.Errorf("after /etc/passwd was replaced by rename: want %q in\n%s", want, r)
	}
}

// replaceEtcPasswd renames a copy of /etc/passwd over it, the way useradd
// and vipw do, holding the lock those tools take (lckpwdf(3):
// /etc/.pwd.lock), so that no account tool or other test runs meanwhile.
func replaceEtcPasswd(t *testing.T) {
	t.Helper()
	lock, err := os.OpenFile("/etc/.pwd.lock", os.O_WRONLY|os.O_CREATE, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Close()
	lk := syscall.Flock_t{Type: syscall.F_WRLCK, Whence: 0}
	if err := syscall.FcntlFlock(lock.Fd(), syscall.F_SETLKW, &lk); err != nil {
		t.Fatalf("lock /etc/.pwd.lock: %v", err)
	}
	b, err := os.ReadFile("/etc/passwd")
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat("/etc/passwd")
	if err != nil {
		t.Fatal(err)
	}
	tmp := "/etc/passwd.fgtest"
	if err := os.WriteFile(tmp, b, fi.Mode().Perm()); err != nil {
		t.Fatal(err)
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		os.Chown(tmp, int(st.Uid), int(st.Gid))
	}
	if err := os.Rename(tmp, "/etc/passwd"); err != nil {
		os.Remove(tmp)
		t.Fatal(err)
	}
}
