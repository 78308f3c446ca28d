// Package testenv lets tests state what they need from the machine (root,
// a program, IPv6 on loopback, Landlock). A test whose prerequisite is
// missing is skipped on a developer's machine and fails under CI (the
// environment variable CI set to "true"), where every prerequisite is
// installed: a CI run can never pass with parts of the suite untested.
//
// It depends on the standard library only, so that any package's tests,
// the root package's included, can use it.
package testenv

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"testing"
)

// CI reports whether the tests run under CI (CI=true), where a missing
// prerequisite is a failure.
func CI() bool { return os.Getenv("CI") == "true" }

// Require skips the test, or fails it under CI, unless ok. The message
// names the missing prerequisite: reason, formatted with args, says what
// is needed and why, e.g. "root, to create files owned by other users".
func Require(t testing.TB, ok bool, reason string, args ...any) {
	t.Helper()
	if ok {
		return
	}
	msg := "missing prerequisite: " + fmt.Sprintf(reason, args...)
	if CI() {
		t.Fatalf("%s (CI=true: a missing prerequisite fails the test; .ci/run provides it)", msg)
	}
	t.Skip(msg)
}

// Root requires the test to run as root; why says what root is for.
func Root(t testing.TB, why string) {
	t.Helper()
	Require(t, os.Geteuid() == 0, "root, %s", why)
}

// Program requires an executable on PATH and returns its path; pkg names
// the Debian package that provides it.
func Program(t testing.TB, name, pkg string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	Require(t, err == nil, "the program %s (Debian package %s): %v", name, pkg, err)
	return p
}

// IPv6Loopback requires a usable [::1].
func IPv6Loopback(t testing.TB) {
	t.Helper()
	l, err := net.Listen("tcp", "[::1]:0")
	if err == nil {
		l.Close()
	}
	Require(t, err == nil, "IPv6 on loopback (listen on [::1]:0: %v)", err)
}
