// Package install tests `make install`: where it puts fingerd, finger, the
// man pages, the systemd units, the inetd line and the configuration, and
// that systemd-analyze verify accepts the installed units.
package install

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/openfinger/finger/internal/testenv"
)

// makeInstall runs make install from the repository root with vars and
// returns its output.
func makeInstall(t *testing.T, vars ...string) {
	t.Helper()
	makeBin := testenv.Program(t, "make", "make")
	build := filepath.Join(t.TempDir(), "build")
	cmd := exec.Command(makeBin, append([]string{"-s", "install", "BUILDDIR=" + build}, vars...)...)
	cmd.Dir = "../.."
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("make install %v: %v\n%s", vars, err, out)
	}
}

func read(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestInstallDestdir installs with PREFIX=/usr into a DESTDIR, the layout
// of a package: the binaries land where the units and the inetd line name
// them.
func TestInstallDestdir(t *testing.T) {
	d := t.TempDir()
	makeInstall(t, "PREFIX=/usr", "DESTDIR="+d)
	for p, mode := range map[string]os.FileMode{
		"usr/sbin/fingerd":                       0o755,
		"usr/bin/finger":                         0o755,
		"usr/share/man/man1/finger.1":            0o644,
		"usr/share/man/man5/fingerd.toml.5":      0o644,
		"usr/share/man/man8/fingerd.8":           0o644,
		"usr/lib/systemd/system/fingerd.service": 0o644,
		"usr/lib/systemd/system/fingerd.socket":  0o644,
		"usr/share/doc/openfinger/inetd.conf":    0o644,
		"usr/share/doc/openfinger/fingerd.toml":  0o644,
		"etc/fingerd.toml":                       0o644,
	} {
		fi, err := os.Stat(filepath.Join(d, p))
		if err != nil {
			t.Errorf("make install PREFIX=/usr: %v", err)
			continue
		}
		if fi.Mode().Perm() != mode {
			t.Errorf("%s has mode %o, want %o", p, fi.Mode().Perm(), mode)
		}
	}
	unit := read(t, filepath.Join(d, "usr/lib/systemd/system/fingerd.service"))
	if !strings.Contains(unit, "\nExecStart=/usr/sbin/fingerd -config /etc/fingerd.toml\n") {
		t.Errorf("installed fingerd.service does not start /usr/sbin/fingerd -config /etc/fingerd.toml:\n%s", unit)
	}
	inetd := read(t, filepath.Join(d, "usr/share/doc/openfinger/inetd.conf"))
	if !strings.Contains(inetd, "\troot\t/usr/sbin/fingerd\tfingerd -inetd\n") {
		t.Errorf("installed inetd.conf does not run /usr/sbin/fingerd:\n%s", inetd)
	}
	if got, want := read(t, filepath.Join(d, "etc/fingerd.toml")), read(t, "../../contrib/fingerd.toml"); got != want {
		t.Errorf("installed /etc/fingerd.toml differs from contrib/fingerd.toml")
	}
	// A second install keeps the administrator's configuration.
	mine := "# mine\n[server]\nlisten = [\"127.0.0.1:7979\"]\n"
	if err := os.WriteFile(filepath.Join(d, "etc/fingerd.toml"), []byte(mine), 0o644); err != nil {
		t.Fatal(err)
	}
	makeInstall(t, "PREFIX=/usr", "DESTDIR="+d)
	if got := read(t, filepath.Join(d, "etc/fingerd.toml")); got != mine {
		t.Errorf("make install overwrote an existing /etc/fingerd.toml")
	}
	for _, c := range [][]string{{"usr/sbin/fingerd", "-version"}, {"usr/bin/finger", "--version"}} {
		out, err := exec.Command(filepath.Join(d, c[0]), c[1]).Output()
		if err != nil || !bytes.HasPrefix(out, []byte(filepath.Base(c[0])+" ")) {
			t.Errorf("%s %s = %q, %v; want its version", c[0], c[1], out, err)
		}
	}
}

// TestInstalledUnitsVerify installs under a prefix of the test's own (the
// units then name that prefix's fingerd) and runs systemd-analyze verify
// on the installed units, man pages included: it checks their syntax,
// that ExecStart is executable and that Documentation= names man pages
// that exist.
func TestInstalledUnitsVerify(t *testing.T) {
	sa := testenv.Program(t, "systemd-analyze", "systemd")
	testenv.Program(t, "man", "man-db")
	d := t.TempDir()
	if err := os.Chmod(d, 0o755); err != nil {
		t.Fatal(err)
	}
	makeInstall(t, "PREFIX="+d+"/usr", "SYSCONFDIR="+d+"/etc")
	units := []string{filepath.Join(d, "usr/lib/systemd/system/fingerd.socket"), filepath.Join(d, "usr/lib/systemd/system/fingerd.service")}
	verify := func(manpath string) (string, error) {
		cmd := exec.Command(sa, append([]string{"verify"}, units...)...)
		cmd.Env = append(os.Environ(), "MANPATH="+manpath)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	if out, err := verify(filepath.Join(d, "usr/share/man")); err != nil || out != "" {
		t.Errorf("systemd-analyze verify of the installed units: %v\n%s", err, out)
	}
	// The check is real: without the installed man pages it fails.
	if out, err := verify(t.TempDir()); err == nil || !strings.Contains(out, "man fingerd(8)") {
		t.Errorf("systemd-analyze verify without the man pages = %v, %q; want it to fail on man fingerd(8)", err, out)
	}
}
