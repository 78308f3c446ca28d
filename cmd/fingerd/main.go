// Command fingerd is the openfinger finger daemon (RFC 1288). It answers
// for the users of the host it runs on, standalone on one or more
// addresses, from inetd (-inetd), or under systemd socket activation.
// See fingerd(8) and fingerd.toml(5).
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"
)

func main() {
	if os.Getenv(homeReaderEnv) != "" {
		os.Exit(homeReaderMain())
	}
	if os.Getenv(programExecEnv) != "" {
		os.Exit(programExecMain())
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	if err == nil {
		return
	}
	var ue usageError
	if errors.As(err, &ue) {
		if ue.msg != "" {
			fmt.Fprintf(os.Stderr, "fingerd: %s\n", ue.msg)
		}
		os.Exit(2)
	}
	fmt.Fprintf(os.Stderr, "fingerd: %v\n", err)
	os.Exit(1)
}

// usageError is a bad command line: exit status 2.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

// options are the command-line flags.
type options struct {
	configPath  string
	configGiven bool
	listen      []string
	inetd       bool
	checkConfig bool
	version     bool
	user        string
	group       string
	noList      bool
	noUserFiles bool
	noRealNames bool
	metrics     string
	web         string
	logFormat   string
	logLevel    string
}

// listFlag collects a repeatable, comma-separable flag.
type listFlag struct{ list *[]string }

func (l listFlag) String() string {
	if l.list == nil {
		return ""
	}
	return strings.Join(*l.list, ",")
}

func (l listFlag) Set(s string) error {
	for _, a := range strings.Split(s, ",") {
		a = strings.TrimSpace(a)
		if a == "" {
			return errors.New("empty address")
		}
		*l.list = append(*l.list, a)
	}
	return nil
}

// errHelp is returned by parseFlags when -h or -help was given: the usage
// is on standard output and fingerd exits 0.
var errHelp = errors.New("help requested")

func parseFlags(args []string, stdout, stderr io.Writer) (*options, error) {
	o := &options{}
	fs := flag.NewFlagSet("fingerd", flag.ContinueOnError)
	// The flag package writes the usage, and the problem with a bad flag,
	// here; they go to standard output for -h and to standard error
	// otherwise.
	var msgs bytes.Buffer
	fs.SetOutput(&msgs)
	fs.StringVar(&o.configPath, "config", "", "configuration `file` (default /etc/fingerd.toml if it exists)")
	fs.Var(listFlag{&o.listen}, "listen", "listen on `addr` (host:port; repeatable or comma-separated; overrides server.listen)")
	fs.BoolVar(&o.inetd, "inetd", false, "answer one query on standard input and output, as run by inetd")
	fs.BoolVar(&o.checkConfig, "check-config", false, "validate the configuration, print it as TOML and exit")
	fs.BoolVar(&o.version, "version", false, "print the version and exit")
	fs.StringVar(&o.user, "user", "", "serve as `user` when started as root (overrides server.user)")
	fs.StringVar(&o.group, "group", "", "serve as `group` when started as root (overrides server.group)")
	fs.BoolVar(&o.noList, "no-list", false, "refuse the list of logged-in users (policy.list = false)")
	fs.BoolVar(&o.noUserFiles, "no-user-files", false, "do not show .plan, .project, .pgpkey (policy.user_files = false)")
	fs.BoolVar(&o.noRealNames, "no-real-names", false, "match login names only (policy.match_real_names = false)")
	fs.StringVar(&o.metrics, "metrics", "", "serve Prometheus /metrics and /healthz on `addr` (overrides metrics.listen)")
	fs.StringVar(&o.web, "web", "", "serve hosted users' pages and publishing over HTTP on `addr` (overrides web.listen; needs [store] url)")
	fs.StringVar(&o.logFormat, "log-format", "", "log `format`: text or json (overrides log.format)")
	fs.StringVar(&o.logLevel, "log-level", "", "log `level`: debug, info, warn, error (overrides log.level)")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: fingerd [flags]\n       fingerd user add|token|set|del|list ...   (hosted users; fingerd user -h)\n       fingerd store backup|migrate ...\n\nflags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			stdout.Write(msgs.Bytes())
			return nil, errHelp
		}
		// The flag package has written the problem and the usage.
		stderr.Write(msgs.Bytes())
		return nil, usageError{}
	}
	if fs.NArg() > 0 {
		return nil, usageError{fmt.Sprintf("unexpected argument %q (see fingerd -h)", fs.Arg(0))}
	}
	fs.Visit(func(f *flag.Flag) {
		if f.Name == "config" {
			o.configGiven = true
		}
	})
	for _, a := range o.listen {
		if err := checkListenFlag(a); err != nil {
			return nil, usageError{fmt.Sprintf("-listen: %v", err)}
		}
	}
	if o.web != "" {
		if err := checkListenFlag(o.web); err != nil {
			return nil, usageError{fmt.Sprintf("-web: %v", err)}
		}
	}
	if o.metrics != "" {
		if err := checkListenFlag(o.metrics); err != nil {
			return nil, usageError{fmt.Sprintf("-metrics: %v", err)}
		}
	}
	switch o.logFormat {
	case "", "text", "json":
	default:
		return nil, usageError{fmt.Sprintf("-log-format: must be text or json, not %q", o.logFormat)}
	}
	switch strings.ToLower(o.logLevel) {
	case "", "debug", "info", "warn", "warning", "error":
	default:
		return nil, usageError{fmt.Sprintf("-log-level: must be debug, info, warn or error, not %q", o.logLevel)}
	}
	if o.inetd && len(o.listen) > 0 {
		return nil, usageError{"-inetd and -listen cannot be used together"}
	}
	return o, nil
}

func version() string {
	v := "(devel)"
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		v = bi.Main.Version
	}
	return "fingerd " + v
}
