package utmp

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/openfinger/finger/internal/userinfo/userinfotest"
)

func TestConformanceSessions(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "utmp")
	if err := os.WriteFile(path, encode(t, fixture...), 0o644); err != nil {
		t.Fatal(err)
	}
	userinfotest.TestSessions(t, &Sessions{Path: path, Dev: filepath.Join(dir, "dev")},
		[]string{"fgtest_alice", "fgtest_bob", "fgtest_carol"})
	userinfotest.TestSessions(t, &Sessions{Path: filepath.Join(dir, "missing")}, nil)
}
