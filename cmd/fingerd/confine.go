package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/openfinger/finger/internal/config"
	"github.com/openfinger/finger/internal/hostusers"
	"github.com/openfinger/finger/internal/privilege"
	"github.com/openfinger/finger/internal/userinfo"
)

// confine gives up root (when started as root) and restricts the
// filesystem view. It runs after the sockets are bound and the home
// reader is started, and before any query is read; fingerd never serves
// as root. The serving process keeps no capability: when
// CAP_DAC_READ_SEARCH is kept, it is kept by the home reader alone.
func (d *daemon) confine(cfg *config.Config) error {
	s := cfg.Server
	// Resolve what Landlock needs while /etc is still fully visible.
	view := landlockView(cfg, d.homes == nil)
	if privilege.IsRoot() {
		id, err := privilege.Lookup(s.User, s.Group)
		if err != nil {
			return err
		}
		if err := giveStoreDir(cfg, id.UID, id.GID); err != nil {
			d.log.Warn("fingerd: cannot give the store's directory to the serving user", "err", err)
		}
		if err := privilege.Drop(id, privilege.Options{}); err != nil {
			return err
		}
		d.log.Info("fingerd: dropped privileges", "user", id.User, "uid", id.UID, "group", id.Group, "gid", id.GID,
			"home_reader", d.homes != nil)
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

// usesHomeReader reports whether fingerd, started now with cfg, reads the
// homes through a separate reader process that keeps CAP_DAC_READ_SEARCH.
func usesHomeReader(cfg *config.Config) bool {
	return privilege.IsRoot() && cfg.Server.KeepDACReadSearch
}

// landlockView lists what the serving process reads: the account and
// session sources, name-service and time-zone files, the D-Bus system bus,
// the mail spool, the configuration (for reloads), the virtual users'
// files, the homes of the accounts it serves (unless a home reader reads
// them) and, only when programs are enabled, what the programs need to
// run, and the directory of a SQLite store, the one place it writes.
// Everything else is read-only.
//
// Files that tools replace by renaming a new copy over them are granted
// through their directory: a rule on the file itself would cover only the
// old copy. That is the passwd file, login.defs and the configuration,
// and the name service's files (the fallback for logins not in the passwd
// file, and forwarding's host names), which are all in /etc:
// /etc/passwd and /etc/group (useradd, vipw), /etc/ld.so.cache
// (ldconfig), /etc/resolv.conf and /etc/hosts (network managers),
// /etc/localtime (timedatectl), /etc/nsswitch.conf (upgrades). /etc is
// in the view even when the passwd source is another file; the serving
// process holds no capability, so the files there that only root may read
// (/etc/shadow) stay closed by their modes. Files rewritten in place
// (utmp, lastlog) are granted alone.
func landlockView(cfg *config.Config, withHomes bool) privilege.View {
	src := cfg.Sources
	v := privilege.View{
		Files:   []string{src.Utmp, src.Lastlog},
		Dirs:    []string{"/etc", parentDir(src.Passwd), parentDir(src.LoginDefs), "/usr/share/zoneinfo"},
		Sockets: []string{"/run/dbus", "/var/run/dbus", "/run/systemd/userdb", "/run/nscd"},
	}
	v.Dirs = append(v.Dirs, nssLibDirs()...)
	if src.MailSpool != "" {
		v.Dirs = append(v.Dirs, src.MailSpool)
	}
	addLoginDBsView(&v, src)
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
	if withHomes {
		v.Dirs = append(v.Dirs, homeDirs(cfg)...)
	}
	for _, u := range cfg.Virtual {
		if u.File != "" {
			v.Files = append(v.Files, u.File)
		}
	}
	if cfg.Programs.Enabled {
		addProgramsView(&v, cfg.Virtual)
	}
	if dir := sqliteDir(cfg.Store.URL); dir != "" {
		// The store's file, its WAL and shared-memory files.
		v.WriteDirs = append(v.WriteDirs, dir)
	}
	return v
}

// readerView is the home reader's view: the homes, read-only, and nothing
// else.
func readerView(cfg *config.Config) privilege.View {
	return privilege.View{Dirs: homeDirs(cfg)}
}

// nssLibDirs returns the directories holding the name-service modules
// (libnss_*.so), which the C library loads on a lookup.
func nssLibDirs() []string {
	var dirs []string
	for _, pat := range []string{"/lib/*/libnss_*", "/usr/lib/*/libnss_*", "/lib64/libnss_*", "/usr/lib64/libnss_*", "/lib/libnss_*", "/usr/lib/libnss_*"} {
		m, _ := filepath.Glob(pat)
		for _, p := range m {
			dirs = append(dirs, filepath.Dir(p))
		}
	}
	return dirs
}

// sharedLogDir is the directory of the system's logs, where wtmpdb 0.75
// and later (and Debian 13) keep wtmp.db.
const sharedLogDir = "/var/log"

// addLoginDBsView adds the lastlog2 and wtmpdb databases to v: each file
// (after symbolic links, which Landlock rules follow) and its directory.
// The directory is needed because SQLite reads a database's -wal and -shm
// siblings while a writer has a WAL-mode database open, and those files
// come and go; a file rule would also miss a database replaced by a new
// file renamed over it. /var/log is not granted as a whole, since it holds
// the system's other logs: there only the database file itself is, which
// suffices for the rollback-journal databases wtmpdb writes in place.
func addLoginDBsView(v *privilege.View, src config.Sources) {
	for _, p := range append([]string{src.Lastlog2}, src.Wtmpdb...) {
		if p == "" || !filepath.IsAbs(p) {
			continue
		}
		if r, err := filepath.EvalSymlinks(p); err == nil {
			p = r
		}
		p = filepath.Clean(p)
		v.Files = append(v.Files, p)
		if dir := filepath.Dir(p); dir != sharedLogDir {
			v.Dirs = append(v.Dirs, dir)
		}
	}
}

// addProgramsView adds what the virtual users' programs need to v, read
// and execute only: the programs and their directories (for the files a
// script keeps beside itself), the system's programs and shared
// libraries, /dev/null (the programs' standard input) and fingerd's own
// executable, the programs' launcher (the dynamic linker's cache is in
// /etc, in every view).
// A program inherits the daemon's Landlock domain, and the launcher adds
// a layer in which it can write nowhere, not even in a SQLite store's
// directory, which the daemon writes.
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
	v.Files = append(v.Files, "/dev/null")
	if exe, err := selfExe(); err == nil {
		v.Files = append(v.Files, exe)
	}
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

// systemDirs are directories that are never granted because an account
// lives in them or below them: a system account's home (/, /usr/sbin,
// /var/lib/foo, /run/foo, /nonexistent's parent) must not open a system
// tree. /root is granted only as root's own home, when root is served.
var systemDirs = map[string]bool{
	"/": true, "/bin": true, "/boot": true, "/dev": true, "/etc": true, "/lib": true,
	"/lib32": true, "/lib64": true, "/libx32": true, "/media": true, "/mnt": true,
	"/opt": true, "/proc": true, "/root": true, "/run": true, "/sbin": true,
	"/srv": true, "/sys": true, "/tmp": true, "/usr": true, "/var": true,
	"/var/lib": true, "/var/run": true, "/var/spool": true, "/var/cache": true,
	"/var/log": true, "/var/tmp": true, "/var/mail": true, "/var/backups": true,
	"/usr/local": true,
}

// systemTrees are trees no home directory is granted in.
var systemTrees = []string{"/proc", "/sys", "/dev", "/etc", "/boot", "/run", "/usr", "/bin", "/sbin", "/lib", "/lib64", "/var/run", "/var/lib", "/var/spool", "/var/cache", "/var/log"}

// homeDirs returns the directories holding the homes of the accounts
// fingerd serves: the parent of each home (usually /home, so that users
// added later are covered too) or, when that parent is a system directory,
// the home itself; never /, never a system directory or a directory
// inside one, and /root only as the home of root when policy.allow_root
// serves it. /home is always included.
func homeDirs(cfg *config.Config) []string {
	out := []string{"/home"}
	accts, err := hostusers.Served(context.Background(), hostusers.FromConfig(cfg))
	if err != nil {
		return out
	}
	seen := map[string]bool{"/home": true}
	for _, a := range accts {
		d := homeDir(a)
		if d != "" && !seen[d] {
			seen[d] = true
			out = append(out, d)
		}
	}
	return out
}

// homeDir returns the directory granted for a's home, or "".
func homeDir(a *userinfo.Account) string {
	if !filepath.IsAbs(a.Home) {
		return ""
	}
	h := filepath.Clean(a.Home)
	if h == "/root" {
		if a.UID == 0 {
			return h // only served when policy.allow_root
		}
		return ""
	}
	d := filepath.Dir(h)
	if systemDirs[d] {
		d = h
	}
	if systemDirs[d] || beneath(d, "/root") {
		return ""
	}
	for _, t := range systemTrees {
		if beneath(d, t) {
			return ""
		}
	}
	return d
}

// beneath reports whether p is dir or inside it.
func beneath(p, dir string) bool {
	return p == dir || strings.HasPrefix(p, dir+"/")
}

// printView writes the Landlock rules of cfg as TOML comments, for
// -check-config.
func printView(w io.Writer, cfg *config.Config) {
	if !cfg.Server.Landlock {
		fmt.Fprintln(w, "\n# Landlock: off (server.landlock = false)")
		return
	}
	reader := usesHomeReader(cfg)
	fmt.Fprintln(w, "\n# Landlock view of the serving process (read-only but rw-dir; missing paths are skipped):")
	for _, r := range landlockView(cfg, !reader).Rules() {
		fmt.Fprintf(w, "#   %s\n", r)
	}
	if reader {
		fmt.Fprintln(w, "# Landlock view of the home reader (keeps CAP_DAC_READ_SEARCH alone):")
		for _, r := range readerView(cfg).Rules() {
			fmt.Fprintf(w, "#   %s\n", r)
		}
	}
}
