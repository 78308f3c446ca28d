// Package pgtest runs a private PostgreSQL server for tests: Debian's
// postgresql binaries, a cluster made by initdb in a temporary directory,
// listening on a Unix socket in that directory only (no TCP port, so it
// cannot collide with anything else on the machine). One server serves a
// whole test binary; each test gets a database of its own.
//
// The server is a child of the test binary and dies with it, even when
// the binary is killed: it runs with a parent-death signal. A cluster
// left behind by a binary that died anyway (its directory still holds
// the lock the binary held) is stopped and removed by the next Start.
//
//	func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }
//
//	func TestX(t *testing.T) {
//		url := pgtest.NewDatabase(t) // postgres://...
//	}
//
// Without PostgreSQL a test is skipped, and fails under CI=true (see
// internal/testenv).
package pgtest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/openfinger/finger/internal/testenv"
)

// Server is a running private PostgreSQL.
type Server struct {
	Dir      string // the cluster's directory; its socket is in Dir/sock
	Password string // of the superuser "postgres"
	bin      string
	asUser   *user.User // the server runs as this user when the test runs as root
	dbs      atomic.Int64
	lock     *os.File // Dir/owner, locked while this binary lives

	mu   sync.Mutex
	proc *os.Process   // the running postmaster; nil when stopped
	done chan struct{} // closed when proc has exited
}

// prefix starts the name of every cluster directory, in os.TempDir().
const prefix = "ofc-pgtest-"

var (
	once    sync.Once
	running *Server
	failure string
)

// Main runs the tests and stops the server, if one was started, before
// returning m.Run's code.
func Main(m *testing.M) int {
	code := m.Run()
	if running != nil {
		running.stop()
	}
	return code
}

// Start returns the binary's server, starting it at the first call. It
// skips the test (fails it under CI=true) when PostgreSQL cannot run here.
func Start(t testing.TB) *Server {
	t.Helper()
	once.Do(func() {
		s, err := start()
		if err != nil {
			failure = err.Error()
			return
		}
		running = s
	})
	testenv.Require(t, running != nil, "a private PostgreSQL (Debian package postgresql): %s", failure)
	return running
}

// NewDatabase creates an empty database for the test and returns its URL.
// The database is dropped when the test ends.
func NewDatabase(t testing.TB) string {
	t.Helper()
	s := Start(t)
	name := fmt.Sprintf("t%d_%d", os.Getpid(), s.dbs.Add(1))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := s.Exec(ctx, "postgres", "CREATE DATABASE "+name); err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := s.Exec(ctx, "postgres", "DROP DATABASE "+name+" WITH (FORCE)"); err != nil {
			t.Errorf("pgtest: %v", err)
		}
	})
	return s.URL(name)
}

// URL returns the URL of database db, as the superuser, over the socket.
func (s *Server) URL(db string) string {
	q := url.Values{"host": {filepath.Join(s.Dir, "sock")}, "sslmode": {"disable"}}
	return (&url.URL{Scheme: "postgres", User: url.UserPassword("postgres", s.Password), Path: "/" + db, RawQuery: q.Encode()}).String()
}

// Exec runs sql (statements without parameters) in database db as the
// superuser.
func (s *Server) Exec(ctx context.Context, db, sql string) error {
	c, err := pgx.Connect(ctx, s.URL(db))
	if err != nil {
		return fmt.Errorf("connect to %s: %w", db, err)
	}
	defer c.Close(ctx)
	if _, err := c.Exec(ctx, sql); err != nil {
		return fmt.Errorf("%s: %w", sql, err)
	}
	return nil
}

// binDir finds the newest of Debian's PostgreSQL installations.
func binDir() (string, error) {
	ds, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(ds, func(i, j int) bool {
		vi, _ := strconv.Atoi(filepath.Base(filepath.Dir(ds[i])))
		vj, _ := strconv.Atoi(filepath.Base(filepath.Dir(ds[j])))
		return vi < vj
	})
	for i := len(ds) - 1; i >= 0; i-- {
		if _, err := os.Stat(filepath.Join(ds[i], "initdb")); err == nil {
			return ds[i], nil
		}
	}
	return "", fmt.Errorf("no /usr/lib/postgresql/*/bin/initdb")
}

func start() (*Server, error) {
	bin, err := binDir()
	if err != nil {
		return nil, err
	}
	reap()
	dir, err := os.MkdirTemp("", prefix)
	if err != nil {
		return nil, err
	}
	lock, err := lockOwner(dir)
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	pw := make([]byte, 12)
	rand.Read(pw)
	s := &Server{Dir: dir, Password: hex.EncodeToString(pw), bin: bin, lock: lock}
	if os.Geteuid() == 0 {
		// PostgreSQL refuses to run as root.
		if s.asUser, err = user.Lookup("postgres"); err != nil {
			os.RemoveAll(dir)
			lock.Close()
			return nil, fmt.Errorf("running as root and no postgres account: %v", err)
		}
		os.Chmod(dir, 0o755)
	}
	fail := func(err error) (*Server, error) {
		os.RemoveAll(dir)
		lock.Close()
		return nil, err
	}
	if err := os.Mkdir(filepath.Join(dir, "sock"), 0o755); err != nil {
		return fail(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "pw"), []byte(s.Password+"\n"), 0o600); err != nil {
		return fail(err)
	}
	if s.asUser != nil {
		uid, _ := strconv.Atoi(s.asUser.Uid)
		gid, _ := strconv.Atoi(s.asUser.Gid)
		for _, p := range []string{dir, filepath.Join(dir, "sock"), filepath.Join(dir, "pw")} {
			if err := os.Chown(p, uid, gid); err != nil {
				return fail(err)
			}
		}
	}
	if out, err := s.run("initdb", "-D", filepath.Join(dir, "data"), "-A", "scram-sha-256", "-U", "postgres",
		"--pwfile="+filepath.Join(dir, "pw"), "--no-sync"); err != nil {
		return fail(fmt.Errorf("initdb: %v: %s", err, out))
	}
	if err := s.Resume(); err != nil {
		return fail(err)
	}
	return s, nil
}

// lockOwner creates dir/owner, locks it for as long as this process lives,
// and writes the process ID in it. A lock that can be taken on a file
// holding a process ID is one whose owner is gone.
func lockOwner(dir string) (*os.File, error) {
	f, err := os.OpenFile(filepath.Join(dir, "owner"), os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, err
	}
	// Waits, if need be, for another binary's reap, which may hold the
	// lock for a moment before it finds the file empty and leaves it.
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("lock %s: %v", f.Name(), err)
	}
	if _, err := fmt.Fprintf(f, "%d\n", os.Getpid()); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// reap stops and removes the clusters of test binaries that died without
// stopping them: directories named by prefix whose owner file holds a
// process ID and is no longer locked. Other clusters, those of binaries
// still running included, are left alone.
func reap() {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), prefix+"*"))
	for _, dir := range dirs {
		f, err := os.OpenFile(filepath.Join(dir, "owner"), os.O_RDWR, 0)
		if err != nil {
			continue
		}
		if syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB) != nil {
			f.Close() // its binary runs
			continue
		}
		owner, _ := io.ReadAll(f)
		if len(bytes.TrimSpace(owner)) > 0 {
			killPostmaster(dir)
			os.RemoveAll(dir)
		}
		f.Close()
	}
}

// killPostmaster kills the postmaster of the cluster in dir, if it still
// runs; its backends end when they see it gone.
func killPostmaster(dir string) {
	b, err := os.ReadFile(filepath.Join(dir, "data", "postmaster.pid"))
	if err != nil {
		return
	}
	line, _, _ := strings.Cut(string(b), "\n")
	pid, err := strconv.Atoi(strings.TrimSpace(line))
	if err != nil || pid <= 1 {
		return
	}
	// Only a process that is the postmaster of this very cluster: the PID
	// may have been reused since.
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil || !bytes.Contains(cmdline, []byte(filepath.Join(dir, "data")+"\x00")) {
		return
	}
	syscall.Kill(pid, syscall.SIGKILL)
}

// run runs a PostgreSQL program, as the postgres account when we are root.
func (s *Server) run(prog string, args ...string) ([]byte, error) {
	cmd := exec.Command(filepath.Join(s.bin, prog), args...)
	if s.asUser != nil {
		cmd = exec.Command("setpriv", append([]string{"--reuid=postgres", "--regid=postgres", "--init-groups", "--",
			filepath.Join(s.bin, prog)}, args...)...)
	}
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.Bytes(), err
}

// Stop stops the server at once (as pg_ctl -m immediate does) and starts
// it again with Resume: for tests of a store that loses its database.
func (s *Server) Stop() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc == nil {
		return fmt.Errorf("pgtest: stop: the server is not running")
	}
	// SIGQUIT is PostgreSQL's immediate shutdown.
	if err := s.proc.Signal(syscall.SIGQUIT); err != nil {
		return fmt.Errorf("pgtest: stop: %v", err)
	}
	select {
	case <-s.done:
	case <-time.After(60 * time.Second):
		s.proc.Kill()
		<-s.done
	}
	s.proc = nil
	return nil
}

// Resume starts the server, stopped by Stop, and waits until it accepts
// connections. The postmaster is a child of this process, started with a
// parent-death signal: it is killed when the test binary dies.
func (s *Server) Resume() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc != nil {
		return fmt.Errorf("pgtest: resume: the server is running")
	}
	log, err := os.OpenFile(filepath.Join(s.Dir, "log"), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer log.Close()
	cmd := exec.Command(filepath.Join(s.bin, "postgres"), "-D", filepath.Join(s.Dir, "data"),
		"-c", "listen_addresses=", "-k", filepath.Join(s.Dir, "sock"), "-c", "fsync=off", "-c", "max_connections=200")
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if s.asUser != nil {
		uid, _ := strconv.Atoi(s.asUser.Uid)
		gid, _ := strconv.Atoi(s.asUser.Gid)
		cmd.SysProcAttr.Credential = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
	}
	// The parent-death signal is sent when the thread that started the
	// child ends: start it from a thread that lives as long as the child.
	started := make(chan error)
	done := make(chan struct{})
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		err := cmd.Start()
		started <- err
		if err == nil {
			cmd.Wait()
			close(done)
		}
	}()
	if err := <-started; err != nil {
		return fmt.Errorf("pgtest: start postgres: %v", err)
	}
	s.proc, s.done = cmd.Process, done
	// Wait until it accepts connections, as pg_ctl -w does.
	deadline := time.Now().Add(60 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		c, err := pgx.Connect(ctx, s.URL("postgres"))
		if err == nil {
			c.Close(ctx)
			cancel()
			return nil
		}
		cancel()
		select {
		case <-done:
			s.proc = nil
			out, _ := os.ReadFile(filepath.Join(s.Dir, "log"))
			return fmt.Errorf("pgtest: postgres exited at start: %s", out)
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			<-done
			s.proc = nil
			out, _ := os.ReadFile(filepath.Join(s.Dir, "log"))
			return fmt.Errorf("pgtest: postgres does not accept connections after 60 s: %v: %s", err, out)
		}
	}
}

func (s *Server) stop() {
	s.Stop()
	os.RemoveAll(s.Dir)
	s.lock.Close()
}
