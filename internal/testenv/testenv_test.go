package testenv

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestRequire runs a test with a missing prerequisite in a child process,
// with and without CI=true, and checks that it is skipped only without.
func TestRequire(t *testing.T) {
	if os.Getenv("TESTENV_CHILD") == "1" {
		Require(t, false, "the moon, %s", "for tides")
		t.Fatal("Require(false) returned")
	}
	for _, tt := range []struct {
		ci       string
		wantFail bool
	}{{"true", true}, {"", false}, {"false", false}} {
		cmd := exec.Command(os.Args[0], "-test.run=^TestRequire$", "-test.v")
		cmd.Env = append(os.Environ(), "TESTENV_CHILD=1", "CI="+tt.ci)
		out, err := cmd.CombinedOutput()
		failed := err != nil
		if failed != tt.wantFail {
			t.Errorf("CI=%q: child failed = %v, want %v:\n%s", tt.ci, failed, tt.wantFail, out)
		}
		if !strings.Contains(string(out), "missing prerequisite: the moon, for tides") {
			t.Errorf("CI=%q: output does not name the prerequisite:\n%s", tt.ci, out)
		}
		if !tt.wantFail && !strings.Contains(string(out), "--- SKIP") {
			t.Errorf("CI=%q: child not skipped:\n%s", tt.ci, out)
		}
	}
	Require(t, true, "nothing") // a met prerequisite neither skips nor fails
}
