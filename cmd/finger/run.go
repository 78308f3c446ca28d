package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"runtime/debug"
	"syscall"
	"time"

	"github.com/openfinger/finger"
)

// Exit statuses. When several targets fail, the status is that of the
// first failure; the remaining targets are still asked.
const (
	exitOK          = 0
	exitFailure     = 1 // any other failure: local lookup, I/O, reset connection
	exitUsage       = 2 // bad command line
	exitUnknownHost = 3 // the host name does not resolve
	exitRefused     = 4 // the host refused the connection
	exitTimeout     = 5 // connect, idle or total timeout
	exitTruncated   = 6 // the reply reached the byte cap and was cut
	exitInterrupted = 130
)

// exitError carries the exit status of a run whose messages were already
// written to stderr.
type exitError struct{ code int }

func (e *exitError) Error() string { return fmt.Sprintf("exit status %d", e.code) }

// exitStatus maps run's error to the process exit status.
func exitStatus(err error) int {
	var ee *exitError
	var ue *usageError
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &ue):
		return exitUsage
	case errors.As(err, &ee):
		return ee.code
	}
	return exitFailure
}

// env is what a run needs from the outside world; tests replace parts.
type env struct {
	getenv     func(string) string
	configPath string
	// dial connects to a finger server; nil means a net.Dialer.
	dial func(ctx context.Context, network, addr string) (net.Conn, error)
	// local answers a query about this host's users.
	local func(ctx context.Context, q finger.Query, o *options, w io.Writer) error
}

func defaultEnv() *env {
	return &env{getenv: os.Getenv, configPath: defaultConfigPath, local: answerLocal}
}

// run is the finger command: it parses args, asks every target in order
// and writes the filtered replies to stdout and messages to stderr. The
// returned error selects the exit status (see exitStatus); its message has
// already been written to stderr.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return defaultEnv().run(ctx, args, stdout, stderr)
}

func (e *env) run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	o, err := parseArgs(args)
	var ts []target
	if err == nil && !o.help && !o.version {
		ts, err = o.targets()
	}
	if err != nil {
		fmt.Fprintf(stderr, "finger: %s\n", finger.Filter{}.String(err.Error()))
		fmt.Fprint(stderr, shortUsage)
		return err
	}
	if o.help {
		_, err := io.WriteString(stdout, usageText)
		return err
	}
	if o.version {
		_, err := fmt.Fprintln(stdout, version())
		return err
	}

	warn := func(msg string) { fmt.Fprintf(stderr, "finger: %s\n", finger.Filter{}.String(msg)) }
	s := loadSettings(e.configPath, e.getenv, warn)
	// The command line, then FINGER_FILTER, then /etc/finger.conf, then
	// the locale choose the filter.
	filter := localeFilter(e.getenv)
	switch {
	case o.filterSet:
		filter = o.filter
	case s.filterSet:
		filter = s.filter
	}
	lim := limits{
		connect: pick(o.connectTimeout, s.connectTimeout, defaultConnectTimeout),
		idle:    pick(o.idleTimeout, s.idleTimeout, defaultIdleTimeout),
		total:   pick(o.totalTimeout, s.totalTimeout, defaultTotalTimeout),
		max:     pick(o.maxBytes, s.maxBytes, defaultMaxBytes),
	}

	bw := bufio.NewWriterSize(stdout, 32<<10)
	status := exitOK
	for i, t := range ts {
		if ctx.Err() != nil {
			return &exitError{code: exitInterrupted}
		}
		if i > 0 {
			bw.WriteByte('\n')
		}
		code, msg := e.ask(ctx, t, o, lim, filter, bw)
		if err := bw.Flush(); err != nil {
			fmt.Fprintf(stderr, "finger: %v\n", err)
			return &exitError{code: exitFailure}
		}
		if msg != "" {
			warn(msg)
		}
		if ctx.Err() != nil {
			return &exitError{code: exitInterrupted}
		}
		if status == exitOK {
			status = code
		}
	}
	if status != exitOK {
		return &exitError{code: status}
	}
	return nil
}

// limits bound one exchange.
type limits struct {
	connect, idle, total time.Duration
	max                  int64
}

func pick[T comparable](vals ...T) T {
	var zero T
	for _, v := range vals {
		if v != zero {
			return v
		}
	}
	return zero
}

// ask answers one target into w, through the filter and the line-end
// translation, and returns its exit status and a message for stderr.
func (e *env) ask(ctx context.Context, t target, o *options, lim limits, filter finger.Filter, w io.Writer) (int, string) {
	ctx, cancel := context.WithTimeout(ctx, lim.total)
	defer cancel()
	lw := &lineWriter{w: w}
	fw := filter.NewWriter(lw)
	defer func() {
		fw.Close()
		lw.finish()
	}()
	if t.Addr == "" {
		if err := e.local(ctx, t.Query, o, fw); err != nil {
			if ctx.Err() != nil {
				return exitTimeout, fmt.Sprintf("local lookup: timed out after %v", lim.total)
			}
			return exitFailure, fmt.Sprintf("local lookup: %v", trimPrefix(err))
		}
		return exitOK, ""
	}
	dial, connectTimedOut := e.dialer(lim.connect)
	c := &finger.Client{
		DialContext:      dial,
		MaxResponseBytes: lim.max,
		IdleTimeout:      lim.idle,
	}
	n, err := c.Query(ctx, t.Addr, t.Query, fw)
	if err == nil {
		return exitOK, ""
	}
	return classify(ctx, err, t, lim, n, *connectTimedOut)
}

// dialer returns the dial function with the connect timeout applied, and
// a flag it sets when that timeout (not the caller's context) ended the
// dial.
func (e *env) dialer(timeout time.Duration) (func(ctx context.Context, network, addr string) (net.Conn, error), *bool) {
	dial := e.dial
	if dial == nil {
		dial = (&net.Dialer{}).DialContext
	}
	timedOut := new(bool)
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		dctx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		c, err := dial(dctx, network, addr)
		if err != nil && ctx.Err() == nil && dctx.Err() == context.DeadlineExceeded {
			*timedOut = true
		}
		return c, err
	}, timedOut
}

// classify turns a failed exchange into an exit status and a message.
func classify(ctx context.Context, err error, t target, lim limits, n int64, connectTimedOut bool) (int, string) {
	var dnsErr *net.DNSError
	var netErr net.Error
	switch {
	case errors.Is(err, finger.ErrResponseTooLarge):
		return exitTruncated, fmt.Sprintf("reply truncated at %d bytes", lim.max)
	case connectTimedOut:
		return exitTimeout, fmt.Sprintf("%s: connect timed out after %v", t.Addr, lim.connect)
	case errors.As(err, &dnsErr):
		name := dnsErr.Name
		if name == "" {
			name = t.Addr
		}
		return exitUnknownHost, fmt.Sprintf("unknown host: %s", name)
	case errors.Is(err, syscall.ECONNREFUSED):
		return exitRefused, fmt.Sprintf("%s: connection refused", t.Addr)
	case errors.Is(err, context.DeadlineExceeded) || ctx.Err() == context.DeadlineExceeded:
		return exitTimeout, fmt.Sprintf("%s: timed out after %v (total timeout), %d bytes received", t.Addr, lim.total, n)
	case ctx.Err() != nil || errors.Is(err, context.Canceled):
		return exitInterrupted, fmt.Sprintf("%s: interrupted", t.Addr)
	case errors.Is(err, os.ErrDeadlineExceeded) || errors.As(err, &netErr) && netErr.Timeout():
		return exitTimeout, fmt.Sprintf("%s: no data for %v (idle timeout), %d bytes received", t.Addr, lim.idle, n)
	}
	return exitFailure, fmt.Sprintf("%s: %s", t.Addr, trimPrefix(err))
}

// version returns the command's name and module version, from the build
// information ("(devel)" for a build from a source tree).
func version() string {
	v := "(devel)"
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		v = bi.Main.Version
	}
	return "finger " + v
}
