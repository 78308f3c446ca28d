package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/openfinger/finger/internal/testenv"
)

// procThreads returns the number of OS threads of process pid.
func procThreads(t *testing.T, pid int) int {
	t.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "Threads:"); ok {
			n, err := strconv.Atoi(strings.TrimSpace(v))
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Fatalf("no Threads line in /proc/%d/status", pid)
	return 0
}

// TestHungNameService runs fingerd against a real name service that never
// answers: an NSS module (testdata/nss_fgtesthang.c) whose getpwnam_r
// blocks forever, configured in an nsswitch.conf that only this test's
// mount namespace sees. Every unknown login is answered as unknown, the
// daemon's OS threads stay bounded by name_service_max_lookups, the
// operator gets one warning, and the metric counts every lookup cut short.
func TestHungNameService(t *testing.T) {
	testenv.Root(t, "to mount an nsswitch.conf in a mount namespace of the test's own")
	gcc := testenv.Program(t, "gcc", "gcc")
	unshare := testenv.Program(t, "unshare", "util-linux")
	// The daemon loads the module after dropping privileges: the
	// directory must be reachable by nobody (t.TempDir's parent is not).
	lib, err := os.MkdirTemp("", "fingerd-nss-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(lib) })
	os.Chmod(lib, 0o755)
	build := exec.Command(gcc, "-shared", "-fPIC", "-Wall", "-Werror", "-o", filepath.Join(lib, "libnss_fgtesthang.so.2"), "testdata/nss_fgtesthang.c")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building the NSS module: %v\n%s", err, out)
	}
	nsswitch := filepath.Join(lib, "nsswitch.conf")
	if err := os.WriteFile(nsswitch, []byte("passwd: files fgtesthang\ngroup: files\nshadow: files\nhosts: files\n"), 0o644); err != nil {
		t.Fatal(err)
	}

	f := newFixture(t, "")
	// Landlock is off: its view holds the system's library directories,
	// not the test's. Rate limits are off: the test sends its queries
	// from one address.
	conf := fmt.Sprintf(`[server]
listen = ["127.0.0.1:0"]
user = "nobody"
landlock = false
rate = 0.0
conn_timeout = "5s"

[sources]
passwd = %q
sessions = "none"
lastlog = ""
mail_spool = ""
login_defs = ""
name_service_timeout = "100ms"
name_service_max_lookups = 4
`, filepath.Join(f.dir, "passwd"))
	if err := os.WriteFile(f.config, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	script := fmt.Sprintf("mount --bind %s /etc/nsswitch.conf && exec \"$0\" \"$@\"", nsswitch)
	cmd := exec.Command(unshare, "--mount", "--propagation", "private", "sh", "-c", script,
		binary, "-config", f.config, "-metrics", "127.0.0.1:0")
	cmd.Env = append(os.Environ(), "LD_LIBRARY_PATH="+lib)
	p := startCmd(t, cmd)
	m := p.waitStarted(t)
	addr, mAddr := m[1], m[2]
	pid := p.cmd.Process.Pid

	wantAlice(t, query(t, addr, "", aliceLine))
	before := procThreads(t, pid)

	const workers, each = 8, 25
	var wg sync.WaitGroup
	var mu sync.Mutex
	var bad []string
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				name := fmt.Sprintf("fgtest_ghost%d_%d", w, i)
				r, err := tryQuery(addr, "", name+"\r\n")
				if want := "finger: " + name + ": no such user.\r\n"; err != nil || r != want {
					mu.Lock()
					bad = append(bad, fmt.Sprintf("%s: %q, %v; want %q", name, r, err, want))
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	if len(bad) > 0 {
		t.Errorf("%d of %d unknown logins not answered as unknown, e.g. %s", len(bad), workers*each, bad[0])
	}
	after := procThreads(t, pid)
	// Four threads are held by the hung lookups; the runtime may start a
	// few of its own, never one per query.
	if after > before+4+8 {
		t.Errorf("fingerd OS threads: %d before, %d after %d queries with a hung name service; want at most %d",
			before, after, workers*each, before+12)
	}
	waitMetric(t, mAddr, fmt.Sprintf("fingerd_name_service_limited_total %d", workers*each))
	// The first lookup cut short may be one that timed out or, with eight
	// clients at once, one beyond the bound.
	const warning = `level=WARN msg="passwd: the name service does not answer in time; logins it would have to look up are answered as unknown until it does" reason="(no answer within 100ms|4 lookups outstanding)" timeout=100ms max_lookups=4\n`
	if n, all := p.log.count(warning), p.log.count(`level=WARN`); n != 1 || all != 1 {
		t.Errorf("%d warnings logged, %d of them matching %s; want exactly that one", all, n, warning)
	}
	t.Logf("fingerd OS threads: %d before, %d after %d unknown logins", before, after, workers*each)
}
