package main

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/openfinger/finger/internal/config"
	"github.com/openfinger/finger/internal/privilege"
)

// TestLoginDBsView checks what the Landlock view grants for the last-login
// databases: each database file after symbolic links and its directory,
// but never all of /var/log.
func TestLoginDBsView(t *testing.T) {
	dir := t.TempDir()
	real := filepath.Join(dir, "log", "wtmp.db")
	link := filepath.Join(dir, "lib", "wtmpdb", "wtmp.db")
	for _, d := range []string{filepath.Dir(real), filepath.Dir(link)} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(real, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("../../log/wtmp.db", link); err != nil {
		t.Fatal(err)
	}
	l2 := filepath.Join(dir, "lastlog", "lastlog2.db") // not created yet
	var v privilege.View
	addLoginDBsView(&v, config.Sources{Lastlog2: l2, Wtmpdb: []string{real, link}})
	wantFiles := []string{l2, real, real}
	wantDirs := []string{filepath.Dir(l2), filepath.Dir(real), filepath.Dir(real)}
	if !slices.Equal(v.Files, wantFiles) || !slices.Equal(v.Dirs, wantDirs) {
		t.Errorf("addLoginDBsView = files %q, dirs %q; want %q, %q", v.Files, v.Dirs, wantFiles, wantDirs)
	}

	v = privilege.View{}
	addLoginDBsView(&v, config.Default().Sources)
	if slices.Contains(v.Dirs, "/var/log") {
		t.Errorf("addLoginDBsView(defaults) grants all of /var/log: %q", v.Dirs)
	}
	if !slices.Contains(v.Dirs, "/var/lib/lastlog") {
		t.Errorf("addLoginDBsView(defaults) = dirs %q, want /var/lib/lastlog among them", v.Dirs)
	}
	v = privilege.View{}
	addLoginDBsView(&v, config.Sources{})
	if len(v.Files)+len(v.Dirs) != 0 {
		t.Errorf("addLoginDBsView with the sources off = %+v, want nothing", v)
	}
}
