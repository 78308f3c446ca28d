package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"

	"github.com/openfinger/finger/internal/config"
	"github.com/openfinger/finger/internal/privilege"
	"github.com/openfinger/finger/internal/userinfo/passwd"
)

// confine gives up root (when started as root) and restricts the
// filesystem view. It runs after the sockets are bound and before any
// query is read; fingerd never serves as root.
func (d *daemon) confine(cfg *config.Config) error {
	s := cfg.Server
	// Resolve what Landlock needs while /etc is still fully visible.
	view := landlockView(cfg)
	if privilege.IsRoot() {
		id, err := privilege.Lookup(s.User, s.Group)
		if err != nil {
			return err
		}
		if err := privilege.Drop(id, privilege.Options{KeepDACReadSearch: s.KeepDACReadSearch}); err != nil {
			return err
		}
		d.log.Info("fingerd: dropped privileges", "user", id.User, "uid", id.UID, "group", id.Group, "gid", id.GID,
			"keep_dac_read_search", s.KeepDACReadSearch)
	} else if err := privilege.Drop(privilege.Identity{UID: os.Getuid(), GID: os.Getgid()}, privilege.Options{}); err != nil {
		return err
	}
	if privilege.IsRoot() {
		return privilege.ErrRoot
	}
	if s.Landlock {
		abi, err := privilege.Restrict(view)
		if err != nil {
			return err
		}
		if abi == 0 {
			d.log.Warn("fingerd: Landlock not available (kernel, or a system call filter); filesystem view not restricted")
		} else {
			d.log.Debug("fingerd: Landlock applied", "abi", abi)
		}
	}
	return nil
}

// landlockView lists what fingerd reads: the account and session files,
// the homes (for .plan and friends), /dev (tty idle times), the D-Bus
// system bus, name-service and time-zone files, the virtual users' files,
// the configuration itself (for reloads) and, only when programs are
// enabled, what the programs need to run.
func landlockView(cfg *config.Config) privilege.View {
	src := cfg.Sources
	// Files that tools replace by renaming a new copy over them (passwd,
	// group, login.defs, the configuration) are granted through their
	// directory: a rule on the file itself would cover only the old copy.
	// Files rewritten in place (utmp, lastlog) are granted alone.
	v := privilege.View{
		Files: []string{src.Utmp, src.Lastlog},
		Dirs: []string{
			"/etc", parentDir(src.Passwd), parentDir(src.LoginDefs),
			"/dev", "/usr/share/zoneinfo", "/etc/ssl", "/etc/pki", "/usr/lib/ssl",
			// Shared libraries, for NSS modules loaded on lookup.
			"/usr/lib", "/lib", "/lib64", "/usr/lib64",
		},
		Sockets: []string{"/run/dbus", "/var/run/dbus", "/run/systemd/userdb"},
	}
	if src.MailSpool != "" {
		v.Dirs = append(v.Dirs, src.MailSpool)
	}
	if cfg.Path != "" {
		if p, err := filepath.Abs(cfg.Path); err == nil {
			v.Dirs = append(v.Dirs, filepath.Dir(p))
		}
	}
	if dir := os.Getenv("TZDIR"); dir != "" {
		v.Dirs = append(v.Dirs, dir)
	}
	if p := busSocketDir(os.Getenv("DBUS_SYSTEM_BUS_ADDRESS")); p != "" {
		v.Sockets = append(v.Sockets, p)
	}
	v.Dirs = append(v.Dirs, homeDirs(src.Passwd)...)
	for _, u := range cfg.Virtual {
		if u.File != "" {
			v.Files = append(v.Files, u.File)
		}
	}
	if cfg.Programs.Enabled {
		addProgramsView(&v, cfg.Virtual)
	}
	return v
}

// addProgramsView adds what the virtual users' programs need to v, read
// and execute only: the programs and their directories (for the files a
// script keeps beside itself), the system's programs and shared
// libraries, the dynamic linker's cache and /dev/null (the programs'
// standard input). A program inherits the daemon's Landlock domain, so it
// can write nowhere either.
func addProgramsView(v *privilege.View, users []config.Virtual) {
	for _, u := range users {
		if len(u.Program) == 0 {
			continue
		}
		v.Files = append(v.Files, u.Program[0])
		v.Dirs = append(v.Dirs, parentDir(u.Program[0]))
	}
	v.Dirs = append(v.Dirs, "/usr", "/bin", "/sbin")
	if libs, err := filepath.Glob("/lib*"); err == nil {
		v.Dirs = append(v.Dirs, libs...)
	}
	v.Files = append(v.Files, "/etc/ld.so.cache", "/dev/null")
}

// parentDir returns the directory of an absolute path, or "".
func parentDir(p string) string {
	if p == "" || !filepath.IsAbs(p) {
		return ""
	}
	return filepath.Dir(filepath.Clean(p))
}

// busSocketDir returns the directory of a unix:path= D-Bus address.
func busSocketDir(addr string) string {
	for _, part := range strings.Split(addr, ";") {
		rest, ok := strings.CutPrefix(part, "unix:")
		if !ok {
			continue
		}
		for _, kv := range strings.Split(rest, ",") {
			if p, ok := strings.CutPrefix(kv, "path="); ok && filepath.IsAbs(p) {
				return filepath.Dir(p)
			}
		}
	}
	return ""
}

// homeDirs returns the parents of the home directories in the passwd
// file (usually just /home), so that users added later are covered too.
func homeDirs(path string) []string {
	accts, err := (&passwd.Accounts{Path: path, NoNSS: true}).All(context.Background())
	if err != nil {
		return []string{"/home"}
	}
	seen := map[string]bool{}
	out := []string{"/home"}
	for _, a := range accts {
		if a.Home == "" || !filepath.IsAbs(a.Home) {
			continue
		}
		parent := filepath.Dir(filepath.Clean(a.Home))
		if parent == "/" {
			// A home directly under / (/root, /nonexistent): the home
			// itself, not the whole filesystem.
			parent = filepath.Clean(a.Home)
		}
		if !seen[parent] {
			seen[parent] = true
			out = append(out, parent)
		}
	}
	return out
}
