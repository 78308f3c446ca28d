package fingertest

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"regexp"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Build builds the package pkg, an import path such as
// "github.com/openfinger/finger/cmd/fingerd", into dir and returns the
// executable's path (dir and the path's last element). It is meant for
// TestMain, which has no testing.TB: the error holds the compiler's
// output.
func Build(dir, pkg string) (string, error) {
	bin := filepath.Join(dir, filepath.Base(pkg))
	if out, err := exec.Command("go", "build", "-o", bin, pkg).CombinedOutput(); err != nil {
		return "", fmt.Errorf("fingertest: building %s: %v\n%s", pkg, err, out)
	}
	return bin, nil
}

// A Process is a program started by StartProcess, its standard output and
// standard error collected together.
type Process struct {
	Cmd *exec.Cmd

	out  Buffer        // standard output and standard error
	done chan struct{} // closed once the process has exited
	stop sync.Once
}

// stopWait bounds how long Stop waits for the process after SIGTERM.
const stopWait = 15 * time.Second

// StartProcess starts cmd with its standard output and standard error
// collected (see Output). When the test ends the process is stopped (see
// Stop) and, if the test failed, its output is logged.
func StartProcess(t testing.TB, cmd *exec.Cmd) *Process {
	t.Helper()
	p := &Process{Cmd: cmd, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = &p.out, &p.out
	if err := cmd.Start(); err != nil {
		t.Fatalf("fingertest: starting %s: %v", cmd.Path, err)
	}
	go func() {
		cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.Stop(t)
		if t.Failed() {
			t.Logf("%s output:\n%s", filepath.Base(cmd.Path), clip(p.Output(), 8000))
		}
	})
	return p
}

// Output returns what the process has written so far.
func (p *Process) Output() string { return p.out.String() }

// Stop sends the process SIGTERM, unless it has exited, and waits for it.
// A process still running stopWait later is killed, and the test fails.
// Later calls do nothing.
func (p *Process) Stop(t testing.TB) {
	t.Helper()
	p.stop.Do(func() {
		select {
		case <-p.done:
			return
		default:
		}
		p.Cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(stopWait):
			p.Cmd.Process.Kill()
			<-p.done
			t.Errorf("fingertest: %s did not stop within %v of SIGTERM", filepath.Base(p.Cmd.Path), stopWait)
		}
	})
}

// WaitFor waits until the process's output matches re and returns the
// submatches. It fails the test if the process exits first, or after
// timeout (which is there against a hang only).
func (p *Process) WaitFor(t testing.TB, re *regexp.Regexp, timeout time.Duration) []string {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		if m := re.FindStringSubmatch(p.Output()); m != nil {
			return m
		}
		select {
		case <-tick.C:
		case <-p.done:
			if m := re.FindStringSubmatch(p.Output()); m != nil {
				return m
			}
			t.Fatalf("fingertest: %s exited (%v) before its output matched %q:\n%s", filepath.Base(p.Cmd.Path), p.Cmd.ProcessState, re, clip(p.Output(), 8000))
		case <-deadline.C:
			t.Fatalf("fingertest: the output of %s did not match %q within %v:\n%s", filepath.Base(p.Cmd.Path), re, timeout, clip(p.Output(), 8000))
		}
	}
}

// clip shortens s to its first and last n/2 bytes.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n/2] + "\n...\n" + s[len(s)-n/2:]
}
