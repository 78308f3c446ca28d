package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"

	"github.com/openfinger/finger/internal/config"
	"github.com/openfinger/finger/internal/homereader"
	"github.com/openfinger/finger/internal/hostusers"
	"github.com/openfinger/finger/internal/privilege"
)

// homeReaderEnv marks the process started as the home reader; its value is
// the descriptor of its end of the socket pair.
const homeReaderEnv = "FINGERD_HOME_READER"

// readerSetup is what the daemon tells the reader before it serves.
type readerSetup struct {
	UID      int      `json:"uid"`
	GID      int      `json:"gid"`
	Landlock bool     `json:"landlock"`
	Dirs     []string `json:"dirs"`
}

// homeReader is the running reader process, seen from the daemon.
type homeReader struct {
	client *homereader.Client
	cmd    *exec.Cmd
	exited chan error // receives the process's exit once
}

// startHomeReader starts the home reader: this program again, as root,
// on one end of a socket pair. It drops to the serving identity keeping
// CAP_DAC_READ_SEARCH alone, restricts itself with Landlock to the homes
// (when server.landlock is set), and then answers requests for published
// files and ~/.nofinger. The reader exits when the daemon closes its end.
func startHomeReader(cfg *config.Config, stderr io.Writer) (*homeReader, error) {
	id, err := privilege.Lookup(cfg.Server.User, cfg.Server.Group)
	if err != nil {
		return nil, err
	}
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("home reader: socketpair: %w", err)
	}
	mine := os.NewFile(uintptr(fds[0]), "home-reader")
	theirs := os.NewFile(uintptr(fds[1]), "home-reader")
	defer theirs.Close()
	conn, err := net.FileConn(mine)
	mine.Close()
	if err != nil {
		return nil, fmt.Errorf("home reader: %w", err)
	}
	exe, err := os.Executable()
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("home reader: %w", err)
	}
	cmd := exec.Command(exe)
	cmd.Args = []string{"fingerd (home reader)"}
	cmd.Env = []string{homeReaderEnv + "=3"}
	cmd.ExtraFiles = []*os.File{theirs}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		conn.Close()
		return nil, fmt.Errorf("home reader: %w", err)
	}
	r := &homeReader{cmd: cmd, exited: make(chan error, 1)}
	go func() { r.exited <- cmd.Wait() }()
	fail := func(err error) (*homeReader, error) {
		conn.Close()
		cmd.Process.Kill()
		<-r.exited
		return nil, fmt.Errorf("home reader: %w", err)
	}
	setup, _ := json.Marshal(readerSetup{UID: id.UID, GID: id.GID, Landlock: cfg.Server.Landlock, Dirs: readerView(cfg).Dirs})
	conn.SetDeadline(time.Now().Add(15 * time.Second))
	if _, err := conn.Write(append(setup, '\n')); err != nil {
		return fail(err)
	}
	line, err := readLine(conn)
	if err != nil {
		return fail(err)
	}
	if msg, ok := strings.CutPrefix(line, "error: "); ok {
		return fail(errors.New(msg))
	}
	if line != "ok" {
		return fail(fmt.Errorf("unexpected answer %q", line))
	}
	conn.SetDeadline(time.Time{})
	r.client = homereader.NewClient(conn)
	return r, nil
}

// close stops the reader and waits for it.
func (r *homeReader) close() {
	r.client.Close()
	select {
	case <-r.exited:
	case <-time.After(5 * time.Second):
		r.cmd.Process.Kill()
		<-r.exited
	}
}

// readLine reads one line, byte by byte: nothing after it is consumed.
func readLine(r io.Reader) (string, error) {
	var b []byte
	one := make([]byte, 1)
	for len(b) < 64<<10 {
		if _, err := io.ReadFull(r, one); err != nil {
			return "", err
		}
		if one[0] == '\n' {
			return string(b), nil
		}
		b = append(b, one[0])
	}
	return "", errors.New("line too long")
}

// homeReaderMain is the home reader process (see startHomeReader).
func homeReaderMain() int {
	f := os.NewFile(3, "home-reader")
	conn, err := net.FileConn(f)
	f.Close()
	if err != nil {
		fmt.Fprintf(os.Stderr, "fingerd: home reader: %v\n", err)
		return 1
	}
	defer conn.Close()
	reply := func(err error) int {
		if err != nil {
			fmt.Fprintf(conn, "error: %v\n", err)
			return 1
		}
		io.WriteString(conn, "ok\n")
		return 0
	}
	line, err := readLine(conn)
	if err != nil {
		return 1
	}
	var s readerSetup
	if err := json.Unmarshal([]byte(line), &s); err != nil {
		return reply(err)
	}
	if !privilege.IsRoot() {
		return reply(errors.New("the home reader must be started as root"))
	}
	id := privilege.Identity{UID: s.UID, GID: s.GID}
	if err := privilege.Drop(id, privilege.Options{KeepDACReadSearch: true}); err != nil {
		return reply(err)
	}
	if s.Landlock {
		if _, err := privilege.Restrict(privilege.View{Dirs: s.Dirs}); err != nil {
			return reply(err)
		}
	}
	if reply(nil) != 0 {
		return 1
	}
	homereader.Serve(conn)
	return 0
}

// warnUnsearchable logs, once, how many of the served users' homes this
// process cannot search: their published files are not shown, and their
// ~/.nofinger is not seen.
func (d *daemon) warnUnsearchable(cfg *config.Config) {
	accts, err := hostusers.Served(context.Background(), hostusers.FromConfig(cfg))
	if err != nil {
		return
	}
	n := 0
	for _, a := range accts {
		if a.Home == "" || a.Home[0] != '/' {
			continue
		}
		var st syscall.Stat_t
		if err := syscall.Lstat(strings.TrimSuffix(a.Home, "/")+"/.nofinger", &st); err == syscall.EACCES {
			n++
		}
	}
	if n == 0 {
		return
	}
	if cfg.Policy.HideUnreadableHomes {
		d.log.Warn("fingerd: some home directories cannot be searched; their users are hidden (policy.hide_unreadable_homes)",
			"homes", n, "users", len(accts))
		return
	}
	d.log.Warn("fingerd: some home directories cannot be searched (mode 0700?): their .plan is not shown and their .nofinger is not honoured; start fingerd as root with server.keep_dac_read_search = true (the default; the shipped units do), or set policy.hide_unreadable_homes = true to hide those users",
		"homes", n, "users", len(accts))
}
