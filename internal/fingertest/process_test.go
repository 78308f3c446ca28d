package fingertest

import (
	"os/exec"
	"regexp"
	"testing"
	"time"
)

// TestProcess starts a program that reports where it listens and then
// waits: WaitFor returns the submatches of the report, and Stop ends the
// program with SIGTERM.
func TestProcess(t *testing.T) {
	p := StartProcess(t, exec.Command("sh", "-c", "echo 'started listen=127.0.0.1:7979'; exec sleep 60"))
	m := p.WaitFor(t, regexp.MustCompile(`listen=(\S+)`), time.Minute)
	if got, want := m[1], "127.0.0.1:7979"; got != want {
		t.Errorf("WaitFor(`listen=(\\S+)`) = %q, want %q", got, want)
	}
	p.Stop(t)
	select {
	case <-p.done:
	default:
		t.Fatal("the process is still running after Stop")
	}
	if ws, ok := p.Cmd.ProcessState.Sys().(interface{ Signaled() bool }); !ok || !ws.Signaled() {
		t.Errorf("the process ended with %v, want it killed by SIGTERM", p.Cmd.ProcessState)
	}
	if got, want := p.Output(), "started listen=127.0.0.1:7979\n"; got != want {
		t.Errorf("Output() = %q, want %q", got, want)
	}
}
