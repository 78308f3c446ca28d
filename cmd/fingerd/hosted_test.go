package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/openfinger/finger/internal/testenv"
)

// hostedFixture is a fixture with a SQLite store in a directory the
// serving user owns, and the web server on a free port.
type hostedFixture struct {
	*fixture
	state string
}

func newHostedFixture(t *testing.T, stateDir string) *hostedFixture {
	t.Helper()
	f := newFixture(t, "")
	if stateDir == "" {
		stateDir = filepath.Join(f.dir, "state")
		if err := os.Mkdir(stateDir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if os.Geteuid() == 0 {
		// The daemon and the user commands act as nobody.
		if err := os.Chown(stateDir, 65534, 65534); err != nil {
			t.Fatal(err)
		}
	}
	// rate = 0: the tests poll for changes from one address.
	f.write(t, fmt.Sprintf("rate = 0\n[store]\nurl = %q\npoll_interval = \"50ms\"\n\n[web]\nlisten = \"127.0.0.1:0\"\n",
		"sqlite:"+filepath.Join(stateDir, "fingerd.db")))
	return &hostedFixture{fixture: f, state: stateDir}
}

// admin runs a fingerd user/store command and fails the test unless it
// exits with want.
func (f *hostedFixture) admin(t *testing.T, want int, args ...string) (stdout, stderr string) {
	t.Helper()
	stdout, stderr, code := runFingerd(t, nil, append(args, "-config", f.config)...)
	if code != want {
		t.Fatalf("fingerd %s: exit %d, want %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, want, stdout, stderr)
	}
	return stdout, stderr
}

// webAddr returns the web server's address from the daemon's log.
func webAddr(t *testing.T, p *daemonProc) string {
	t.Helper()
	return p.log.waitFor(t, `msg="fingerd: web server started" listen=(\S+)`, 10*time.Second)[1]
}

func httpDo(t *testing.T, method, url, user, token, body string) (int, string) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.SetBasicAuth(user, token)
	}
	c := &http.Client{Timeout: 10 * time.Second}
	res, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

// waitQuery asks addr until the reply satisfies ok (within 10 s).
func waitQuery(t *testing.T, addr, line string, ok func(string) bool) string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		r := query(t, addr, "", line)
		if ok(r) {
			return r
		}
		if time.Now().After(deadline) {
			t.Fatalf("query %q: no expected answer within 10 s; last:\n%s", line, r)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// The newcomer's path: user add, publish with curl's request, finger,
// page and feed; and the other user commands against a running daemon.
func TestHostedUsers(t *testing.T) {
	f := newHostedFixture(t, "")
	token, msg := f.admin(t, 0, "user", "add", "alice", "-name", "Alice Liddell", "-listed")
	token = strings.TrimSpace(token)
	if len(token) != 43 || !strings.Contains(msg, "curl -u alice:TOKEN") {
		t.Fatalf("user add printed %q (stderr %q), want a 43-character token", token, msg)
	}
	if os.Geteuid() == 0 {
		// Run as root, the command acted as the serving user.
		fi, err := os.Stat(filepath.Join(f.state, "fingerd.db"))
		if err != nil || fi.Sys().(*syscall.Stat_t).Uid != 65534 {
			t.Errorf("the store made by user add as root: %v, want it owned by nobody", err)
		}
	}
	// Names the host already has, or that are no finger name, are refused.
	if _, e := f.admin(t, 1, "user", "add", "fgtest_bob"); !strings.Contains(e, "account on this host") {
		t.Errorf("user add of a system account: %q", e)
	}
	f.admin(t, 1, "user", "add", "Bad/Name")
	f.admin(t, 1, "user", "add", "alice")
	f.admin(t, 2, "user", "frobnicate", "x")

	p := startDaemon(t, "-config", f.config)
	addr, web := p.addrs[0], "http://"+webAddr(t, p)
	code, body := httpDo(t, "PUT", web+"/~alice/plan", "alice", token, "Down the rabbit hole.\n")
	if code != 204 {
		t.Fatalf("PUT plan = %d %q", code, body)
	}
	if r := query(t, addr, "", "alice\r\n"); !strings.Contains(r, "Plan:\r\nDown the rabbit hole.\r\n") || !strings.Contains(r, "Name: Alice Liddell") {
		t.Errorf("finger alice = %q", r)
	}
	if code, body := httpDo(t, "GET", web+"/~alice", "", "", ""); code != 200 || !strings.Contains(body, "Down the rabbit hole.") {
		t.Errorf("GET /~alice = %d %q", code, body)
	}
	if code, body := httpDo(t, "GET", web+"/~alice/feed", "", "", ""); code != 200 || !strings.Contains(body, "Down the rabbit hole.") {
		t.Errorf("GET /~alice/feed = %d %q", code, body)
	}
	if code, body := httpDo(t, "GET", web+"/", "", "", ""); code != 200 || !strings.Contains(body, "/~alice") {
		t.Errorf("GET / = %d %q", code, body)
	}
	p.log.waitFor(t, `msg="web: published" user=alice kind=plan op=put`, 10*time.Second)

	// Changes by the commands show in the running daemon.
	f.admin(t, 0, "user", "add", "dave", "-name", "Dave Hosted", "-listed")
	waitQuery(t, addr, "\r\n", func(r string) bool { return strings.Contains(r, "Dave Hosted") })
	f.admin(t, 0, "user", "set", "dave", "-listed=false")
	waitQuery(t, addr, "\r\n", func(r string) bool { return !strings.Contains(r, "Dave Hosted") })
	f.admin(t, 0, "user", "del", "dave")
	waitQuery(t, addr, "dave\r\n", func(r string) bool { return strings.Contains(r, "no such user") })
	f.admin(t, 1, "user", "del", "dave")

	newToken, _ := f.admin(t, 0, "user", "token", "alice")
	newToken = strings.TrimSpace(newToken)
	if code, _ := httpDo(t, "PUT", web+"/~alice/plan", "alice", token, "old token"); code != 401 {
		t.Errorf("PUT with the replaced token = %d, want 401", code)
	}
	if code, _ := httpDo(t, "PUT", web+"/~alice/plan", "alice", newToken, "new token\n"); code != 204 {
		t.Errorf("PUT with the new token = %d, want 204", code)
	}
	f.admin(t, 0, "user", "add", "eve", "-name", "Eve \u202eevil\u202c")
	list, _ := f.admin(t, 0, "user", "list")
	if !strings.Contains(list, "alice") || !strings.Contains(list, "Alice Liddell") || strings.Contains(list, "dave") {
		t.Errorf("user list = %q", list)
	}
	if !strings.Contains(list, `Eve \u202eevil\u202c`) || strings.Contains(list, "\u202e") {
		t.Errorf("user list = %q, want eve's bidirectional override escaped", list)
	}
	out, _ := f.admin(t, 0, "store", "migrate")
	if !strings.HasPrefix(out, "schema version ") {
		t.Errorf("store migrate printed %q", out)
	}
	backup := filepath.Join(t.TempDir(), "backup.db")
	f.admin(t, 0, "store", "backup", backup)
	f.admin(t, 1, "store", "backup", backup) // exists already
	// The copy is a store: a daemon on it answers alice.
	g := newHostedFixture(t, "")
	data, err := os.ReadFile(backup)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(g.state, "fingerd.db"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	if os.Geteuid() == 0 {
		os.Chown(filepath.Join(g.state, "fingerd.db"), 65534, 65534)
	}
	q := startDaemon(t, "-config", g.config)
	if r := query(t, q.addrs[0], "", "alice\r\n"); !strings.Contains(r, "new token") {
		t.Errorf("finger alice on the restored copy = %q", r)
	}
}

// A full disk stops publishing with 503 and a reason; finger answers go
// on from what the daemon holds, and publishing resumes when the disk has
// room again.
func TestHostedDiskFaults(t *testing.T) {
	testenv.Root(t, "to mount a small tmpfs for the store")
	dir := t.TempDir()
	os.Chmod(filepath.Dir(dir), 0o755) // the serving user reaches the store
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=1m,mode=0755", "fgtest-hosted", dir).CombinedOutput(); err != nil {
		testenv.Require(t, false, "mount -t tmpfs: %v %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", "-l", dir).Run() })
	f := newHostedFixture(t, dir)
	token, _ := f.admin(t, 0, "user", "add", "alice")
	token = strings.TrimSpace(token)
	p := startDaemon(t, "-config", f.config)
	addr, web := p.addrs[0], "http://"+webAddr(t, p)
	if code, body := httpDo(t, "PUT", web+"/~alice/plan", "alice", token, "before the fault\n"); code != 204 {
		t.Fatalf("PUT = %d %q", code, body)
	}

	// Fill the disk.
	filler := filepath.Join(dir, "filler")
	fh, err := os.Create(filler)
	if err != nil {
		t.Fatal(err)
	}
	chunk := make([]byte, 64<<10)
	for {
		if _, err := fh.Write(chunk); err != nil {
			break
		}
	}
	fh.Close()
	big := strings.Repeat("a plan to fill the disk\n", 2000)
	code, body := httpDo(t, "PUT", web+"/~alice/plan", "alice", token, big)
	if code != 503 || !strings.Contains(body, "disk full") {
		t.Errorf("PUT on a full disk = %d %q, want 503 saying disk full", code, body)
	}
	if r := query(t, addr, "", "alice\r\n"); !strings.Contains(r, "before the fault") {
		t.Errorf("finger alice with a full disk = %q", r)
	}
	os.Remove(filler)
	if code, body := httpDo(t, "PUT", web+"/~alice/plan", "alice", token, "after the fault\n"); code != 204 {
		t.Errorf("PUT after freeing the disk = %d %q", code, body)
	}
}

// A disk that turns read-only under the running daemon (as ext4 does with
// errors=remount-ro when the disk fails) stops publishing with 503 and a
// reason; finger answers go on from what the daemon holds.
func TestHostedReadOnlyDisk(t *testing.T) {
	testenv.Root(t, "to mount an ext4 image on a loop device for the store")
	for _, tool := range []string{"mkfs.ext4", "losetup", "findmnt"} {
		_, err := exec.LookPath(tool)
		testenv.Require(t, err == nil, "%s: %v", tool, err)
	}
	img := filepath.Join(t.TempDir(), "store.img")
	if err := os.WriteFile(img, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(img, 16<<20); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mkfs.ext4", "-q", img).CombinedOutput(); err != nil {
		t.Fatalf("mkfs.ext4: %v %s", err, out)
	}
	dir := t.TempDir()
	os.Chmod(filepath.Dir(dir), 0o755) // the serving user reaches the store
	if out, err := exec.Command("mount", "-o", "loop,errors=remount-ro", img, dir).CombinedOutput(); err != nil {
		testenv.Require(t, false, "mount -o loop: %v %s", err, out)
	}
	out, err := exec.Command("findmnt", "-no", "SOURCE", dir).Output()
	if err != nil {
		t.Fatalf("findmnt %s: %v", dir, err)
	}
	dev := strings.TrimSpace(string(out))
	t.Cleanup(func() {
		exec.Command("umount", dir).Run()
		exec.Command("losetup", "-d", dev).Run()
	})
	f := newHostedFixture(t, dir)
	token, _ := f.admin(t, 0, "user", "add", "alice")
	token = strings.TrimSpace(token)
	p := startDaemon(t, "-config", f.config)
	addr, web := p.addrs[0], "http://"+webAddr(t, p)
	if code, body := httpDo(t, "PUT", web+"/~alice/plan", "alice", token, "before the fault\n"); code != 204 {
		t.Fatalf("PUT = %d %q", code, body)
	}

	// What ext4 does on a disk error: the file system turns read-only at
	// once, the database's open descriptors included.
	trigger := "/sys/fs/ext4/" + filepath.Base(dev) + "/trigger_fs_error"
	if err := os.WriteFile(trigger, []byte("1"), 0o200); err != nil {
		testenv.Require(t, false, "%s: %v", trigger, err)
	}
	if err := os.WriteFile(filepath.Join(dir, "probe"), nil, 0o644); !errors.Is(err, syscall.EROFS) {
		t.Fatalf("after the error the file system is not read-only: creating a file gave %v", err)
	}
	for i, plan := range []string{"during the fault\n", "still during the fault\n"} {
		code, body := httpDo(t, "PUT", web+"/~alice/plan", "alice", token, plan)
		if code != 503 || !strings.Contains(body, "read-only") {
			t.Errorf("PUT %d on a read-only disk = %d %q, want 503 saying read-only", i+1, code, body)
		}
	}
	if r := query(t, addr, "", "alice\r\n"); !strings.Contains(r, "before the fault") {
		t.Errorf("finger alice with a read-only disk = %q", r)
	}
	if code, body := httpDo(t, "GET", web+"/~alice", "", "", ""); code != 200 || !strings.Contains(body, "before the fault") {
		t.Errorf("GET /~alice with a read-only disk = %d %q", code, body)
	}
}

// Started as root with a store directory that root owns (as systemd's
// StateDirectory= makes it), fingerd gives it to the serving user and
// serves the hosted users.
func TestHostedStateDirGiven(t *testing.T) {
	testenv.Root(t, "to start fingerd as root with a directory root owns")
	f := newFixture(t, "")
	state := filepath.Join(f.dir, "state")
	if err := os.Mkdir(state, 0o755); err != nil {
		t.Fatal(err)
	}
	f.write(t, fmt.Sprintf("\n[store]\nurl = %q\n", "sqlite:"+filepath.Join(state, "fingerd.db")))
	p := startDaemon(t, "-config", f.config)
	fi, err := os.Stat(state)
	if err != nil || fi.Sys().(*syscall.Stat_t).Uid != 65534 {
		t.Errorf("the store directory after start: %v, owner %d; want nobody's", err, fi.Sys().(*syscall.Stat_t).Uid)
	}
	h := &hostedFixture{fixture: f, state: state}
	h.admin(t, 0, "user", "add", "zoe", "-listed")
	waitQuery(t, p.addrs[0], "zoe\r\n", func(r string) bool { return strings.Contains(r, "Login: zoe") })
}

// With [web] cert and key the web server speaks HTTPS, and publishing
// works over it; on loopback no clear-text warning is logged.
func TestHostedHTTPS(t *testing.T) {
	f := newHostedFixture(t, "")
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "fgtest-hosted"},
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile := filepath.Join(f.dir, "cert.pem"), filepath.Join(f.dir, "key.pem")
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600)
	cfg, err := os.ReadFile(f.config)
	if err != nil {
		t.Fatal(err)
	}
	cfg = append(cfg, fmt.Sprintf("cert = %q\nkey = %q\n", certFile, keyFile)...)
	if err := os.WriteFile(f.config, cfg, 0o644); err != nil {
		t.Fatal(err)
	}
	token, _ := f.admin(t, 0, "user", "add", "alice")
	p := startDaemon(t, "-config", f.config)
	addr := p.log.waitFor(t, `msg="fingerd: web server started" listen=(\S+) scheme=https`, 10*time.Second)[1]
	pool := x509.NewCertPool()
	pool.AddCert(must(x509.ParseCertificate(der)))
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	req, _ := http.NewRequest("PUT", "https://"+addr+"/~alice/plan", strings.NewReader("over TLS\n"))
	req.SetBasicAuth("alice", strings.TrimSpace(token))
	res, err := client.Do(req)
	if err != nil {
		t.Fatalf("PUT over HTTPS: %v", err)
	}
	res.Body.Close()
	if res.StatusCode != 204 {
		t.Errorf("PUT over HTTPS = %d, want 204", res.StatusCode)
	}
	if r := query(t, p.addrs[0], "", "alice\r\n"); !strings.Contains(r, "over TLS") {
		t.Errorf("finger alice = %q", r)
	}
	// A plain HTTP request to the TLS port gets no page.
	if res, err := (&http.Client{Timeout: 10 * time.Second}).Get("http://" + addr + "/"); err == nil {
		res.Body.Close()
		if res.StatusCode == 200 {
			t.Errorf("plain HTTP on the HTTPS port answered 200")
		}
	}
	if strings.Contains(p.log.String(), "clear text") {
		t.Errorf("a loopback HTTPS server warned about clear text:\n%s", p.log.String())
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func TestSQLitePath(t *testing.T) {
	tests := []struct {
		url, path, dir string
	}{
		{"sqlite:/var/lib/fingerd/fingerd.db", "/var/lib/fingerd/fingerd.db", "/var/lib/fingerd"},
		{"sqlite:///var/lib/fingerd/./fingerd.db", "/var/lib/fingerd/fingerd.db", "/var/lib/fingerd"},
		{"sqlite:fingerd.db", "fingerd.db", ""}, // relative: no directory to confine or give
		{"sqlite://host/x.db", "", ""},
		{"sqlite:", "", ""},
		{"postgres://db.example.org/fingerd", "", ""},
		{"", "", ""},
	}
	for _, tt := range tests {
		if got := sqlitePath(tt.url); got != tt.path {
			t.Errorf("sqlitePath(%q) = %q, want %q", tt.url, got, tt.path)
		}
		if got := sqliteDir(tt.url); got != tt.dir {
			t.Errorf("sqliteDir(%q) = %q, want %q", tt.url, got, tt.dir)
		}
	}
}
