// Package pgtest runs a private PostgreSQL server for tests: Debian's
// postgresql binaries, a cluster made by initdb in a temporary directory,
// listening on a Unix socket in that directory only (no TCP port, so it
// cannot collide with anything else on the machine). One server serves a
// whole test binary; each test gets a database of its own.
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
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
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
}

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
	dir, err := os.MkdirTemp("", "ofc-pgtest-")
	if err != nil {
		return nil, err
	}
	pw := make([]byte, 12)
	rand.Read(pw)
	s := &Server{Dir: dir, Password: hex.EncodeToString(pw), bin: bin}
	if os.Geteuid() == 0 {
		// PostgreSQL refuses to run as root.
		if s.asUser, err = user.Lookup("postgres"); err != nil {
			os.RemoveAll(dir)
			return nil, fmt.Errorf("running as root and no postgres account: %v", err)
		}
		os.Chmod(dir, 0o755)
	}
	fail := func(err error) (*Server, error) {
		os.RemoveAll(dir)
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
	opts := fmt.Sprintf("-c listen_addresses= -k %s -c fsync=off -c max_connections=200", filepath.Join(dir, "sock"))
	if out, err := s.run("pg_ctl", "-D", filepath.Join(dir, "data"), "-l", filepath.Join(dir, "log"), "-w", "-t", "60",
		"-o", opts, "start"); err != nil {
		log, _ := os.ReadFile(filepath.Join(dir, "log"))
		return fail(fmt.Errorf("pg_ctl start: %v: %s %s", err, out, log))
	}
	return s, nil
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

// Stop stops the server at once (pg_ctl -m immediate) and starts it again
// with Resume: for tests of a store that loses its database.
func (s *Server) Stop() error {
	out, err := s.run("pg_ctl", "-D", filepath.Join(s.Dir, "data"), "-m", "immediate", "-w", "stop")
	if err != nil {
		return fmt.Errorf("pg_ctl stop: %v: %s", err, out)
	}
	return nil
}

// Resume starts a server stopped by Stop.
func (s *Server) Resume() error {
	opts := fmt.Sprintf("-c listen_addresses= -k %s -c fsync=off -c max_connections=200", filepath.Join(s.Dir, "sock"))
	out, err := s.run("pg_ctl", "-D", filepath.Join(s.Dir, "data"), "-l", filepath.Join(s.Dir, "log"), "-w", "-t", "60",
		"-o", opts, "start")
	if err != nil {
		return fmt.Errorf("pg_ctl start: %v: %s", err, out)
	}
	return nil
}

func (s *Server) stop() {
	s.run("pg_ctl", "-D", filepath.Join(s.Dir, "data"), "-m", "immediate", "-w", "stop")
	os.RemoveAll(s.Dir)
}
