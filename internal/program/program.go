// Package program runs the programs an administrator configures to answer
// finger queries (RFC 1288 allows a server to run a program; requirement
// P1).
//
// Only programs named in the daemon's configuration are run: a Spec is an
// absolute path plus fixed arguments, executed directly, never through a
// shell. The query never reaches the command line: the user part, the /W
// switch and the client address are passed in the environment variables
// FINGER_USER, FINGER_VERBOSE and FINGER_CLIENT, so a name such as "-rf",
// "$(id)" or "%n" is only ever a value. The environment is otherwise
// clean (PATH=/usr/bin:/bin and LANG=C.UTF-8, plus the fixed entries of
// Spec.Env); standard input is /dev/null, standard output a pipe read by
// Run, standard error a pipe whose first bytes go to the operator log, and
// no other descriptor is inherited. The program runs in a new process
// group, in the directory "/", as the configured user when the daemon is
// root (never as root), with a wall-clock timeout and an output cap.
//
// When the program exits, times out, or passes the output cap, Run kills
// its whole process group, so background processes it started (a forked
// daemon holding the output pipe open) cannot outlive the query. A process
// that leaves the group on purpose (setsid) escapes that kill; Run then
// stops reading a second after the program exits and returns. Confining
// such processes needs the service manager's control group (systemd's
// KillMode=control-group) or a separate user for programs.
//
// The caller filters what Run writes: program output is untrusted text.
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
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
	"unsafe"
)

// Defaults used when the corresponding Spec field is zero.
const (
	DefaultTimeout  = 5 * time.Second
	DefaultMaxBytes = 64 << 10
)

// BasePath and BaseLang are the PATH and LANG every program gets unless
// Spec.Env sets others.
const (
	BasePath = "/usr/bin:/bin"
	BaseLang = "C.UTF-8"
)

// Environment variables that carry the query to the program.
const (
	EnvUser    = "FINGER_USER"    // the user part of the query, verbatim ("" for the list)
	EnvVerbose = "FINGER_VERBOSE" // "1" when the query had /W, "0" otherwise
	EnvClient  = "FINGER_CLIENT"  // the client's address, "ip:port" ("" when unknown)
)

// Notices Run writes to the reply, each on a line of its own.
const (
	NoticeTimeout   = "finger: program timed out"
	NoticeTruncated = "finger: program output truncated at %d bytes"
)

// stderrCap bounds the standard error kept for the log.
const stderrCap = 4096

// exitGrace is how long Run keeps reading after the program's process
// group is gone, for output from a process that escaped the group.
const exitGrace = time.Second

// Errors returned by Run and Spec.Validate.
var (
	ErrInvalidSpec  = errors.New("program: invalid program specification")
	ErrInvalidInput = errors.New("program: invalid input")
	ErrRoot         = errors.New("program: refusing to run a program as root")
	ErrTimeout      = errors.New("program: timed out")
	ErrTruncated    = errors.New("program: output truncated")
)

// Spec is a program configured by the administrator.
type Spec struct {
	// Path is the program's absolute path. It is executed directly, with
	// Path itself as argv[0].
	Path string
	// Args are fixed arguments, passed after argv[0] exactly as given.
	Args []string
	// Timeout bounds the program's run, wall clock: 0 means
	// DefaultTimeout, negative means no bound other than Run's context.
	Timeout time.Duration
	// MaxBytes caps the output relayed from the program; past it the
	// program is killed and the reply ends with a notice line. 0 means
	// DefaultMaxBytes, negative means no cap.
	MaxBytes int64
	// Env lists extra "KEY=value" entries for the environment, after
	// PATH and LANG (which they may replace). Keys starting with
	// "FINGER_" are reserved for the query.
	Env []string
	// UID and GID are the user and group the program runs as when the
	// daemon runs as root; supplementary groups are cleared. Both must be
	// set together, and neither may be 0. When the daemon is not root
	// they must be nil or equal to its own IDs: the program then runs as
	// the daemon's user.
	UID, GID *uint32
	// Logger receives the program's standard error (at most 4 KiB) and
	// the reason it was stopped. nil means slog.Default().
	Logger *slog.Logger
}

// Input is the query a program answers.
type Input struct {
	User       string // the query's user part, verbatim
	Verbose    bool   // the query had /W
	ClientAddr string // the client's address, for the program's own use
}

// Validate checks s: an absolute path to an executable regular file that
// is not writable by group or others, well-formed Env entries, no NUL
// byte anywhere, and a consistent UID/GID pair.
func (s Spec) Validate() error {
	if s.Path == "" || !filepath.IsAbs(s.Path) {
		return fmt.Errorf("%w: path %q is not absolute", ErrInvalidSpec, s.Path)
	}
	if strings.IndexByte(s.Path, 0) >= 0 {
		return fmt.Errorf("%w: NUL byte in path", ErrInvalidSpec)
	}
	for _, a := range s.Args {
		if strings.IndexByte(a, 0) >= 0 {
			return fmt.Errorf("%w: NUL byte in argument %q", ErrInvalidSpec, a)
		}
	}
	for _, e := range s.Env {
		k, _, ok := strings.Cut(e, "=")
		switch {
		case !ok || k == "":
			return fmt.Errorf("%w: environment entry %q is not KEY=value", ErrInvalidSpec, e)
		case strings.IndexByte(e, 0) >= 0:
			return fmt.Errorf("%w: NUL byte in environment entry", ErrInvalidSpec)
		case strings.HasPrefix(k, "FINGER_"):
			return fmt.Errorf("%w: environment key %q is reserved", ErrInvalidSpec, k)
		}
	}
	if (s.UID == nil) != (s.GID == nil) {
		return fmt.Errorf("%w: UID and GID must be set together", ErrInvalidSpec)
	}
	if s.UID != nil && (*s.UID == 0 || *s.GID == 0) {
		return fmt.Errorf("%w: %w", ErrInvalidSpec, ErrRoot)
	}
	fi, err := os.Stat(s.Path)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidSpec, err)
	}
	switch {
	case !fi.Mode().IsRegular():
		return fmt.Errorf("%w: %s is not a regular file", ErrInvalidSpec, s.Path)
	case fi.Mode().Perm()&0o111 == 0:
		return fmt.Errorf("%w: %s is not executable", ErrInvalidSpec, s.Path)
	case fi.Mode().Perm()&0o022 != 0:
		return fmt.Errorf("%w: %s is writable by group or others", ErrInvalidSpec, s.Path)
	}
	return nil
}

func (s Spec) credential() (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		if s.UID != nil && (int(*s.UID) != os.Geteuid() || int(*s.GID) != os.Getegid()) {
			return nil, fmt.Errorf("%w: changing to uid %d needs root", ErrInvalidSpec, *s.UID)
		}
		return nil, nil
	}
	if s.UID == nil {
		return nil, ErrRoot
	}
	return &syscall.Credential{Uid: *s.UID, Gid: *s.GID}, nil
}

func (s Spec) logger() *slog.Logger {
	if s.Logger != nil {
		return s.Logger
	}
	return slog.Default()
}

// Run runs the program described by spec for one query and writes its
// standard output to w, up to the cap. On timeout or when the cap is
// passed it kills the program's process group and ends the output with a
// notice line (NoticeTimeout, NoticeTruncated). It returns when the
// program has been reaped and its process group killed.
//
// The error is for the operator's log, not for the remote user: it wraps
// ErrTimeout, ErrTruncated, an *exec.ExitError for a non-zero exit, the
// context's error when ctx ended, or the writer's error.
func Run(ctx context.Context, spec Spec, in Input, w io.Writer) error {
	if err := spec.Validate(); err != nil {
		return err
	}
	if strings.IndexByte(in.User, 0) >= 0 || strings.IndexByte(in.ClientAddr, 0) >= 0 {
		return fmt.Errorf("%w: NUL byte", ErrInvalidInput)
	}
	cred, err := spec.credential()
	if err != nil {
		return err
	}
	timeout := spec.Timeout
	if timeout == 0 {
		timeout = DefaultTimeout
	}
	limit := spec.MaxBytes
	if limit == 0 {
		limit = DefaultMaxBytes
	}
	var (
		runCtx context.Context
		cancel context.CancelFunc
	)
	if timeout > 0 {
		runCtx, cancel = context.WithTimeout(ctx, timeout)
	} else {
		runCtx, cancel = context.WithCancel(ctx)
	}
	defer cancel()

	verbose := "0"
	if in.Verbose {
		verbose = "1"
	}
	env := make([]string, 0, 5+len(spec.Env))
	env = append(env, "PATH="+BasePath, "LANG="+BaseLang)
	env = append(env, spec.Env...)
	env = append(env, EnvUser+"="+in.User, EnvVerbose+"="+verbose, EnvClient+"="+in.ClientAddr)

	closeOnExecAll()
	outR, outW, err := os.Pipe()
	if err != nil {
		return fmt.Errorf("program: %w", err)
	}
	errR, errW, err := os.Pipe()
	if err != nil {
		outR.Close()
		outW.Close()
		return fmt.Errorf("program: %w", err)
	}
	cmd := &exec.Cmd{
		Path:   spec.Path,
		Args:   append([]string{spec.Path}, spec.Args...),
		Env:    env,
		Dir:    "/",
		Stdout: outW,
		Stderr: errW,
		SysProcAttr: &syscall.SysProcAttr{
			Setpgid:    true,
			Credential: cred,
		},
	}
	err = cmd.Start()
	outW.Close()
	errW.Close()
	if err != nil {
		outR.Close()
		errR.Close()
		return fmt.Errorf("program: starting %s: %w", spec.Path, err)
	}
	defer outR.Close()
	defer errR.Close()
	pgid := cmd.Process.Pid
	killGroup := func() { syscall.Kill(-pgid, syscall.SIGKILL) }

	// The leader is reaped only after its group has been killed, so the
	// group ID cannot be reused by an unrelated process meanwhile.
	exited := make(chan struct{})
	go func() {
		defer close(exited)
		waitExited(pgid)
		killGroup()
		if runCtx.Err() == nil {
			outR.SetReadDeadline(time.Now().Add(exitGrace))
		}
	}()
	stopped := make(chan struct{})
	stop := context.AfterFunc(runCtx, func() {
		defer close(stopped)
		killGroup()
		outR.SetReadDeadline(time.Now())
	})

	var stderr bytes.Buffer
	var stderrDropped int64
	var stderrDone sync.WaitGroup
	stderrDone.Add(1)
	go func() {
		defer stderrDone.Done()
		buf := make([]byte, 1024)
		for {
			n, err := errR.Read(buf)
			if keep := min(n, stderrCap-stderr.Len()); keep > 0 {
				stderr.Write(buf[:keep])
				stderrDropped += int64(n - keep)
			} else {
				stderrDropped += int64(n)
			}
			if err != nil {
				return
			}
		}
	}()

	out := &tailWriter{w: w}
	var (
		n         int64
		truncated bool
		eof       bool
		writeErr  error
		readErr   error
	)
	buf := make([]byte, 32<<10)
	for {
		p := buf
		if limit >= 0 {
			if left := limit - n; left == 0 {
				p = buf[:1] // one more byte tells "exactly at the cap" from "over"
			} else if left < int64(len(p)) {
				p = buf[:left]
			}
		}
		k, err := outR.Read(p)
		if k > 0 {
			if limit >= 0 && n == limit {
				truncated = true
				break
			}
			n += int64(k)
			if _, werr := out.Write(p[:k]); werr != nil {
				writeErr = werr
				break
			}
		}
		if err != nil {
			switch {
			case !errors.Is(err, io.EOF):
				readErr = err
			case runCtx.Err() == nil:
				eof = true
			}
			// An end of output seen once the run is over may be the
			// kill's doing rather than the program's: the output is
			// complete only when it ended before the deadline.
			break
		}
	}

	timedOut := false
	if eof {
		// The output is complete; give the program until the deadline
		// to exit.
		select {
		case <-exited:
		case <-runCtx.Done():
			timedOut = true
		}
	} else if runCtx.Err() != nil {
		timedOut = true
	}
	killGroup()
	<-exited
	if !stop() {
		<-stopped // it must not signal the group once the leader is reaped
	}
	waitErr := cmd.Wait()
	errR.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
	stderrDone.Wait()

	log := spec.logger()
	if stderr.Len() > 0 || stderrDropped > 0 {
		log.Warn("program: standard error", "path", spec.Path,
			"stderr", strconv.Quote(stderr.String()), "dropped_bytes", stderrDropped)
	}

	notice := func(msg string) {
		if out.err != nil {
			return
		}
		if out.n > 0 && out.last != '\n' {
			io.WriteString(out, "\n")
		}
		io.WriteString(out, msg+"\n")
	}
	switch {
	case writeErr != nil:
		return fmt.Errorf("program: writing the reply: %w", writeErr)
	case truncated:
		notice(fmt.Sprintf(NoticeTruncated, limit))
		log.Warn("program: output cap reached; process group killed", "path", spec.Path, "max_bytes", limit)
		return fmt.Errorf("%w at %d bytes: %s", ErrTruncated, limit, spec.Path)
	case timedOut:
		if !eof {
			notice(NoticeTimeout)
		}
		if ctx.Err() != nil {
			return fmt.Errorf("program: %s: %w", spec.Path, ctx.Err())
		}
		log.Warn("program: timed out; process group killed", "path", spec.Path, "timeout", timeout)
		return fmt.Errorf("%w after %v: %s", ErrTimeout, timeout, spec.Path)
	case readErr != nil && !errors.Is(readErr, os.ErrDeadlineExceeded):
		return fmt.Errorf("program: reading output of %s: %w", spec.Path, readErr)
	}
	if readErr != nil {
		// A process that left the group kept the output open after the
		// program exited.
		log.Warn("program: output still open after exit; stopped reading", "path", spec.Path)
	}
	if waitErr != nil {
		return fmt.Errorf("program: %s: %w", spec.Path, waitErr)
	}
	return nil
}

// closeOnExecAll marks every descriptor above 2 close-on-exec, so that
// descriptors the daemon inherited without that flag (socket-activation
// listeners, a parent's leftovers, raw system calls) never reach a
// program. Descriptors Go opens have the flag already.
func closeOnExecAll() {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return
	}
	for _, e := range ents {
		if fd, err := strconv.Atoi(e.Name()); err == nil && fd > 2 {
			syscall.CloseOnExec(fd)
		}
	}
}

// waitExited blocks until process pid has exited, without reaping it.
func waitExited(pid int) {
	const pPID = 1
	var info [128]byte // siginfo_t
	for {
		_, _, errno := syscall.Syscall6(syscall.SYS_WAITID, pPID, uintptr(pid),
			uintptr(unsafe.Pointer(&info)), syscall.WEXITED|syscall.WNOWAIT, 0, 0)
		if errno != syscall.EINTR {
			return
		}
	}
}

// tailWriter remembers the count, the last byte written and the first
// error.
type tailWriter struct {
	w    io.Writer
	n    int64
	last byte
	err  error
}

func (t *tailWriter) Write(p []byte) (int, error) {
	if t.err != nil {
		return 0, t.err
	}
	n, err := t.w.Write(p)
	if n > 0 {
		t.n += int64(n)
		t.last = p[n-1]
	}
	if err != nil {
		t.err = err
	}
	return n, err
}
