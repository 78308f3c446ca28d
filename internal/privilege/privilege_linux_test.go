package privilege

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/openfinger/finger/internal/testenv"
)

const childEnv = "PRIVILEGE_TEST_CHILD"

// TestMain lets the test binary act as a child process that drops its
// privileges and reports what /proc says, so the test process itself
// keeps root.
func TestMain(m *testing.M) {
	if mode := os.Getenv(childEnv); mode != "" {
		os.Exit(child(mode))
	}
	os.Exit(m.Run())
}

func child(mode string) int {
	// Start some threads first, so the drop must reach threads that
	// already exist.
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
					time.Sleep(time.Millisecond)
				}
			}
		}()
	}
	id, err := Lookup("nobody", "")
	if err == nil {
		err = Drop(id, Options{KeepDACReadSearch: mode == "keep"})
	}
	if err == nil && mode == "landlock" {
		_, err = Restrict(View{Dirs: []string{"/proc"}})
	}
	close(stop)
	wg.Wait()
	res := map[string]any{}
	if err != nil {
		res["err"] = err.Error()
	}
	th, terr := Threads(0)
	if terr != nil {
		res["err"] = terr.Error()
	}
	res["threads"] = th
	if mode == "landlock" {
		_, rerr := os.ReadFile("/etc/passwd")
		res["passwd_err"] = fmt.Sprint(rerr)
	}
	json.NewEncoder(os.Stdout).Encode(res)
	return 0
}

func runChild(t *testing.T, mode string) (threads []ThreadStatus, extra map[string]any) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+mode)
	if os.Geteuid() == 0 {
		// Start the child with supplementary groups (root, adm, sudo on
		// Debian), as a daemon started from a root shell has: the drop
		// must clear them.
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 0, Gid: 0, Groups: []uint32{0, 4, 27}}}
	}
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	var res struct {
		Err       string         `json:"err"`
		Threads   []ThreadStatus `json:"threads"`
		PasswdErr string         `json:"passwd_err"`
	}
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("child output %q: %v", out, err)
	}
	if res.Err != "" {
		t.Fatalf("child: %s", res.Err)
	}
	return res.Threads, map[string]any{"passwd_err": res.PasswdErr}
}

func needRoot(t *testing.T) Identity {
	t.Helper()
	testenv.Root(t, "to drop privileges to nobody")
	id, err := Lookup("nobody", "")
	if err != nil {
		t.Fatalf("Lookup(nobody) = %v", err)
	}
	return id
}

func TestDropAllThreads(t *testing.T) {
	id := needRoot(t)
	threads, _ := runChild(t, "plain")
	if len(threads) < 2 {
		t.Fatalf("child reported %d threads, want several", len(threads))
	}
	for _, th := range threads {
		for i := range 4 {
			if th.UID[i] != id.UID || th.GID[i] != id.GID {
				t.Errorf("thread %s: Uid %v Gid %v, want all %d/%d", th.TID, th.UID, th.GID, id.UID, id.GID)
			}
		}
		if th.CapEff != 0 || th.CapPrm != 0 || th.CapBnd != 0 {
			t.Errorf("thread %s: CapEff %x CapPrm %x CapBnd %x, want 0", th.TID, th.CapEff, th.CapPrm, th.CapBnd)
		}
		if !th.NoNew {
			t.Errorf("thread %s: no_new_privs not set", th.TID)
		}
		if len(th.Groups) != 0 {
			t.Errorf("thread %s: groups %v, want none", th.TID, th.Groups)
		}
	}
}

func TestDropKeepDACReadSearch(t *testing.T) {
	id := needRoot(t)
	threads, _ := runChild(t, "keep")
	want := uint64(1) << unix.CAP_DAC_READ_SEARCH
	for _, th := range threads {
		if th.UID[1] != id.UID {
			t.Errorf("thread %s: euid %d, want %d", th.TID, th.UID[1], id.UID)
		}
		if th.CapEff != want || th.CapPrm != want || th.CapBnd != want {
			t.Errorf("thread %s: CapEff %x CapPrm %x CapBnd %x, want %x each", th.TID, th.CapEff, th.CapPrm, th.CapBnd, want)
		}
	}
}

func TestRestrictLandlock(t *testing.T) {
	needRoot(t)
	_, extra := runChild(t, "landlock")
	v, err := abiVersionForTest()
	testenv.Require(t, err == nil && v > 0, "Landlock in the kernel (%v)", err)
	if pe := extra["passwd_err"].(string); !strings.Contains(pe, "permission denied") {
		t.Fatalf("reading /etc/passwd under Landlock: %s, want permission denied", pe)
	}
}

func abiVersionForTest() (int, error) {
	v := abiVersion()
	if v == 0 {
		return 0, errors.New("no Landlock ABI")
	}
	return v, nil
}

func TestLookupRefusesRoot(t *testing.T) {
	if _, err := Lookup("root", ""); !errors.Is(err, ErrRoot) {
		t.Fatalf("Lookup(root) = %v, want ErrRoot", err)
	}
	if _, err := Lookup("nobody", "root"); !errors.Is(err, ErrRoot) {
		t.Fatalf("Lookup(nobody, root) = %v, want ErrRoot", err)
	}
	if _, err := Lookup("no-such-user-fingerd", ""); err == nil {
		t.Fatal("Lookup(no such user) = nil error")
	}
	if _, err := Lookup("", ""); err == nil {
		t.Fatal("Lookup(\"\") = nil error")
	}
}

func TestDropRefusesRootTarget(t *testing.T) {
	if err := Drop(Identity{UID: 0, GID: 0}, Options{}); !errors.Is(err, ErrRoot) {
		t.Fatalf("Drop(root) = %v, want ErrRoot", err)
	}
}

func TestReadStatus(t *testing.T) {
	p := filepath.Join(t.TempDir(), "status")
	os.WriteFile(p, []byte("Name:\tx\nUid:\t65534\t65534\t65534\t65534\nGid:\t1\t2\t3\t4\nGroups:\t\nCapPrm:\t0000000000000004\nCapEff:\t0000000000000004\nCapBnd:\t0000000000000004\nNoNewPrivs:\t1\n"), 0o644)
	st, err := readStatus(p)
	if err != nil {
		t.Fatal(err)
	}
	if st.UID != [4]int{65534, 65534, 65534, 65534} || st.GID != [4]int{1, 2, 3, 4} || st.CapEff != 4 || st.CapBnd != 4 || !st.NoNew || len(st.Groups) != 0 {
		t.Fatalf("readStatus = %+v", st)
	}
	os.WriteFile(p, []byte("Uid:\tx\n"), 0o644)
	if _, err := readStatus(p); err == nil {
		t.Fatal("readStatus(bad) = nil error")
	}
}
