package main

// A mutant is one deliberate bug: in File, each edit's From (which must
// occur exactly once) becomes To. Pkgs are the packages whose tests must
// catch it; Run, when set, restricts them to the tests that cover it (to
// keep the run short). Short mutants are the ones -short runs (in CI):
// the promises a past review found unguarded.
type mutant struct {
	Name  string
	Desc  string
	File  string
	Edits []edit
	Pkgs  string
	Run   string
	Short bool
}

type edit struct{ From, To string }

func one(from, to string) []edit { return []edit{{from, to}} }

const (
	pkgDaemon = "./cmd/fingerd/"
	pkgRoot   = "."
)

var mutants = []mutant{
	// Reading users' files.
	{
		Name: "user-file-follows-symlink", Short: true, Desc: "open user files without O_NOFOLLOW",
		File:  "internal/safefile/safefile.go",
		Edits: one("flags := syscall.O_RDONLY | syscall.O_NOFOLLOW | syscall.O_NONBLOCK", "flags := syscall.O_RDONLY | syscall.O_NONBLOCK"),
		Pkgs:  "./internal/safefile/ ./internal/userinfo/passwd/",
	},
	{
		Name: "user-file-no-recheck", Short: true, Desc: "drop the device/inode re-check after open",
		File:  "internal/safefile/safefile.go",
		Edits: one("if st.Dev != lst.Dev || st.Ino != lst.Ino {", "if false {"),
		Pkgs:  "./internal/safefile/ ./internal/userinfo/passwd/",
	},
	{
		Name: "file-blocking-any-type", Short: true, Desc: "virtual file: no O_NONBLOCK, no regular-file check",
		File: "internal/safefile/safefile.go",
		Edits: []edit{
			{"flags := syscall.O_RDONLY | syscall.O_NOFOLLOW | syscall.O_NONBLOCK", "flags := syscall.O_RDONLY | syscall.O_NOFOLLOW"},
			{"case st.Mode&syscall.S_IFMT != syscall.S_IFREG:", "case false:"},
		},
		Pkgs: "./internal/safefile/ ./cmd/fingerd/",
	},
	{
		Name: "user-file-size-cap", Desc: "a user file longer than max_file_bytes is served whole-plus-one, not truncated",
		File:  "internal/safefile/safefile.go",
		Edits: one("if int64(len(buf)) > limit {", "if false {"),
		Pkgs:  "./internal/safefile/ ./internal/userinfo/passwd/",
	},
	{
		Name: "nofinger-ignored", Desc: "~/.nofinger does not hide the user",
		File:  "internal/userinfo/passwd/files.go",
		Edits: one("		case nil:\n			return true, nil", "		case nil:\n			return false, nil"),
		Pkgs:  "./internal/userinfo/passwd/ ./internal/userinfo/",
	},

	// The daemon.
	{
		Name: "landlock-never-applied", Short: true, Desc: "never apply Landlock",
		File:  "cmd/fingerd/confine.go",
		Edits: one("if s.Landlock {", "if false && s.Landlock {"),
		Pkgs:  pkgDaemon,
	},
	{
		Name: "programs-share-daemon-domain", Desc: "programs run without the launcher's read-only layer",
		File:  "cmd/fingerd/handler.go",
		Edits: one("launcher: cfg.Server.Landlock,", "launcher: false,"),
		Pkgs:  pkgDaemon,
		Run:   "TestProgramCannotWriteStore",
	},
	{
		Name: "program-launcher-no-layer", Desc: "the launcher executes the program without adding its layer",
		File:  "cmd/fingerd/programexec.go",
		Edits: one("if err := privilege.RestrictThreadReadOnly(); err != nil {", "if err := privilege.ABI(); err < 0 {"),
		Pkgs:  pkgDaemon,
		Run:   "TestProgramCannotWriteStore",
	},
	{
		Name: "reload-failure-counted-ok", Short: true, Desc: "count a failed reload as a success",
		File:  "cmd/fingerd/daemon.go",
		Edits: one("\td.metrics.Reloaded(err)\n", "\td.metrics.Reloaded(nil)\n"),
		Pkgs:  pkgDaemon, Run: "TestReload",
	},
	{
		Name: "inetd-logs-to-client", Short: true, Desc: "inetd mode logs to the client socket",
		File:  "cmd/fingerd/run.go",
		Edits: one("if o.inetd && stderrIsStdin() {", "if false && o.inetd && stderrIsStdin() {"),
		Pkgs:  pkgDaemon, Run: "TestInetd",
	},
	{
		Name: "no-user-files-flag-ignored", Desc: "-no-user-files does not turn user files off",
		File:  "cmd/fingerd/run.go",
		Edits: one("cfg.Policy.UserFiles = false", "cfg.Policy.UserFiles = true"),
		Pkgs:  pkgDaemon, Run: "TestPrivacyPolicy|TestPolicyFlags",
	},
	{
		Name: "hide-home-shell-swapped", Short: true, Desc: "hide_home and hide_shell swapped",
		File: "internal/hostusers/hostusers.go",
		Edits: []edit{
			{"HideHome:           p.HideHome,", "HideHome:           p.HideShell,"},
			{"HideShell:          p.HideShell,", "HideShell:          p.HideHome,"},
		},
		Pkgs: "./internal/hostusers/ ./cmd/fingerd/", Run: "Test",
	},
	{
		Name: "hide-last-login-ignored", Desc: "policy.hide_last_login is not applied",
		File:  "internal/hostusers/hostusers.go",
		Edits: one("HideLastLogin:      p.HideLastLogin,", "HideLastLogin:      false,"),
		Pkgs:  "./internal/hostusers/ ./cmd/fingerd/", Run: "Test",
	},
	{
		Name: "hide-remote-host-ignored", Desc: "policy.hide_remote_host is not applied",
		File:  "internal/hostusers/hostusers.go",
		Edits: one("HideRemoteHost:     p.HideRemoteHost,", "HideRemoteHost:     false,"),
		Pkgs:  "./internal/hostusers/ ./cmd/fingerd/", Run: "Test",
	},
	{
		Name: "hide-mail-ignored", Desc: "policy.hide_mail is not applied",
		File:  "internal/hostusers/hostusers.go",
		Edits: one("HideMail:           p.HideMail,", "HideMail:           false,"),
		Pkgs:  "./internal/hostusers/ ./cmd/fingerd/", Run: "Test",
	},
	{
		Name: "allow-root-always", Desc: "root is shown without allow_root",
		File:  "internal/hostusers/hostusers.go",
		Edits: one("AllowRoot:          p.AllowRoot,", "AllowRoot:          true,"),
		Pkgs:  "./internal/hostusers/ ./cmd/fingerd/", Run: "Test",
	},
	{
		Name: "system-accounts-always", Desc: "system accounts shown without show_system_accounts",
		File:  "internal/hostusers/hostusers.go",
		Edits: one("ShowSystemAccounts: p.ShowSystemAccounts,", "ShowSystemAccounts: true,"),
		Pkgs:  "./internal/hostusers/ ./cmd/fingerd/", Run: "Test",
	},
	{
		Name: "user-files-key-ignored", Desc: "policy.user_files = false still shows .plan",
		File:  "internal/hostusers/hostusers.go",
		Edits: one("UserFiles:          p.UserFiles,", "UserFiles:          true,"),
		Pkgs:  "./internal/hostusers/ ./cmd/fingerd/", Run: "Test",
	},

	// Privileges and programs.
	{
		Name: "drop-keeps-groups", Desc: "the privilege drop keeps root's supplementary groups",
		File:  "internal/privilege/drop_linux.go",
		Edits: one("if err := syscall.Setgroups([]int{}); err != nil {", "if err := error(nil); err != nil {"),
		Pkgs:  "./internal/privilege/",
	},
	{
		Name: "drop-to-root-allowed", Desc: "Drop accepts root as the identity to serve as",
		File:  "internal/privilege/drop_linux.go",
		Edits: one("if id.UID == 0 || id.GID == 0 {", "if false {"),
		Pkgs:  "./internal/privilege/ ./cmd/fingerd/",
	},
	{
		Name: "program-runs-as-root", Desc: "a program started by root without a UID runs as root",
		File:  "internal/program/program.go",
		Edits: one("	if s.UID == nil {\n		return nil, ErrRoot\n	}", "	if s.UID == nil {\n		return nil, nil\n	}"),
		Pkgs:  "./internal/program/",
	},

	// Rate and connection limits.
	{
		Name: "ipv6-never-rate-limited", Short: true, Desc: "IPv6 clients never rate-limited",
		File:  "internal/limit/limit.go",
		Edits: one("\tk := Key(addr)\n", "\tif addr.Unmap().Is6() {\n\t\treturn true\n\t}\n\tk := Key(addr)\n"),
		Pkgs:  "./internal/limit/ ./cmd/fingerd/",
	},
	{
		Name: "ipv6-bucket-per-address", Desc: "an IPv6 client gets a bucket per address, not per /64",
		File:  "internal/limit/limit.go",
		Edits: one("p, _ := a.Prefix(64)", "p, _ := a.Prefix(128)"),
		Pkgs:  "./internal/limit/",
	},
	{
		Name: "conns-per-ip-off-by-one", Desc: "the per-client connection cap admits one more",
		File:  "server.go",
		Edits: one("s.perIP[cs.key] >= maxIP", "s.perIP[cs.key] > maxIP"),
		Pkgs:  pkgRoot + " ./test/adversarial/",
	},

	// The protocol.
	{
		Name: "query-cap-off-by-one", Desc: "the query byte cap does not count the line end",
		File:  "server.go",
		Edits: one("if end+1 > max {", "if end > max {"),
		Pkgs:  pkgRoot + " ./test/adversarial/",
	},
	{
		Name: "reply-bare-lf", Desc: "reply lines end in LF, not CRLF",
		File:  "server.go",
		Edits: one("			w.cr = false\n			w.buf = append(w.buf, '\\r', '\\n')\n			w.lastLF = true", "			w.cr = false\n			w.buf = append(w.buf, '\\n')\n			w.lastLF = true"),
		Pkgs:  pkgRoot,
	},
	{
		Name: "reply-lone-cr", Desc: "a lone CR from a handler reaches the wire",
		File:  "server.go",
		Edits: one("			if w.cr {\n				w.cr = false\n				w.buf = append(w.buf, '\\r', '\\n')", "			if w.cr {\n				w.cr = false\n				w.buf = append(w.buf, '\\r')"),
		Pkgs:  pkgRoot,
	},
	{
		Name: "error-answer-after-drain", Desc: "an error answer's end waits for the input to be drained",
		File:  "server.go",
		Edits: one("if !ok || cw.CloseWrite() != nil {", "if !ok || cw == nil {"),
		Pkgs:  pkgRoot,
	},
	{
		Name: "log-query-unescaped", Desc: "the logged query is not escaped",
		File:  "server.go",
		Edits: one("\tq := strconv.Quote(line)\n\treturn q[1 : len(q)-1]\n", "\t_ = strconv.Quote\n\treturn line\n"),
		Pkgs:  pkgRoot + " ./cmd/fingerd/", Run: "Log",
	},
	{
		Name: "filter-raw-controls", Desc: "the filter passes control characters raw",
		File:  "filter.go",
		Edits: one("				dst = append(dst, '^', c+0x40)", "				dst = append(dst, c)"),
		Pkgs:  pkgRoot,
	},
	{
		Name: "filter-passes-rlo", Desc: "the UTF-8 filter passes U+202E (right-to-left override)",
		File:  "filter.go",
		Edits: one("case r >= 0x2028 && r <= 0x202e:", "case r >= 0x2028 && r <= 0x202d:"),
		Pkgs:  pkgRoot,
	},
	{
		Name: "too-many-names-answered", Desc: "every name of a query is answered, past max_names",
		File:  "internal/userinfo/match.go",
		Edits: one("tooMany := len(names) > req.pol.MaxNames", "tooMany := len(names) > req.pol.MaxNames+1000"),
		Pkgs:  "./internal/userinfo/ ./test/adversarial/",
	},

	// Forwarding.
	{
		Name: "forward-hop-limit-plus-one", Desc: "a query with one hop over the cap is forwarded",
		File:  "forward.go",
		Edits: one("if len(q.Hosts) > f.maxHops() {", "if len(q.Hosts) > f.maxHops()+1 {"),
		Pkgs:  pkgRoot,
	},
	{
		Name: "forward-own-address", Desc: "the machine's own interface addresses are not refused",
		File:  "forward.go",
		Edits: one("own := ip.IsLoopback() || fwdIsOwn(ip)", "own := ip.IsLoopback()"),
		Pkgs:  pkgRoot,
	},
	{
		Name: "forward-private-allowed", Desc: "private addresses are forwarded to without allow_private",
		File:  "forward.go",
		Edits: one("if liftable && f.AllowPrivate {", "if liftable || f.AllowPrivate {"),
		Pkgs:  pkgRoot,
	},
	{
		Name: "forward-any-port", Desc: "ports other than 79 are forwarded to without allow_ports",
		File:  "forward.go",
		Edits: one("if port != fwdPort && !fwdContains(f.AllowPorts, port) {", "if false {"),
		Pkgs:  pkgRoot + " ./cmd/fingerd/",
	},

	// Settings from the configuration file and the command line.
	{
		Name: "group-flag-ignored", Desc: "-group does not change the group served as",
		File:  "cmd/fingerd/run.go",
		Edits: one("cfg.Server.Group = o.group", "_ = o.group"),
		Pkgs:  pkgDaemon, Run: "TestServeAsGroup|TestPrivilegeDrop",
	},
	{
		Name: "forward-max-bytes-ignored", Desc: "forward.max_bytes from the file is not applied",
		File:  "cmd/fingerd/handler.go",
		Edits: one("		MaxBytes:       f.MaxBytes,\n", ""),
		Pkgs:  pkgDaemon, Run: "TestForward",
	},
	{
		Name: "forward-max-hops-ignored", Desc: "forward.max_hops from the file is not applied",
		File:  "cmd/fingerd/handler.go",
		Edits: one("		MaxHops:        f.MaxHops,\n", ""),
		Pkgs:  pkgDaemon, Run: "TestForward",
	},
	{
		Name: "syslog-discarded", Desc: "logs meant for syslog are dropped",
		File:  "cmd/fingerd/sockets.go",
		Edits: one("	if err != nil {\n		return io.Discard\n	}\n	return w\n", "	_ = w\n	_ = err\n	return io.Discard\n"),
		Pkgs:  pkgDaemon, Run: "TestInetd",
	},
	{
		Name: "stop-waits-forever", Desc: "a stop waits for queries in progress without the 10 s bound",
		File:  "cmd/fingerd/daemon.go",
		Edits: one("const shutdownTimeout = 10 * time.Second", "const shutdownTimeout = 10 * time.Minute"),
		Pkgs:  pkgDaemon, Run: "TestStopBound|TestGracefulStop",
	},
}
