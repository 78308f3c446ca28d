package main

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/openfinger/finger"
)

// Defaults for the limits; the administrator's configuration file and the
// command line change them.
const (
	defaultConnectTimeout = 5 * time.Second
	defaultIdleTimeout    = 30 * time.Second
	defaultTotalTimeout   = 60 * time.Second
	defaultMaxBytes       = 4 << 20
)

// usageError is a bad command line. The command exits with status 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...)}
}

// options is a parsed command line.
type options struct {
	long    bool // -l: long format; sends /W to remote hosts
	short   bool // -s: short format for local answers
	noMatch bool // -m: no real-name matching in local answers
	noPlan  bool // -p: no .plan, .project, .pgpkey in local answers
	help    bool // -h
	version bool // -v, --version
	strict  bool // -a: the strict filter, whatever the defaults

	// The filter switches. filterSet is true when any of them was given;
	// the administrator's default applies otherwise.
	filter    finger.Filter
	filterSet bool

	// Limits; zero means "not given on the command line".
	connectTimeout time.Duration
	idleTimeout    time.Duration
	totalTimeout   time.Duration
	maxBytes       int64

	operands []string
}

// target is one question to answer: a remote query when Addr is set, a
// local one otherwise.
type target struct {
	Addr    string // "host:port"; "" for a local answer
	Query   finger.Query
	Operand string // the operand as typed, for messages
}

// valueOptions are the long options that take a value, with the short
// letter that is an alias, if any.
var valueOptions = map[string]bool{
	"connect-timeout": true,
	"idle-timeout":    true,
	"timeout":         true,
	"max-bytes":       true,
	"filter":          true,
}

// parseArgs parses the command line (without the program name). Options
// may appear anywhere before "--"; every word after "--", and every word
// that does not begin with '-', is an operand. Short options combine
// ("-lp", "-l8T10s"); long options take one or two dashes and their value
// either after '=' or as the next word.
func parseArgs(args []string) (*options, error) {
	o := &options{}
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			o.operands = append(o.operands, args[i+1:]...)
			break
		}
		if len(a) < 2 || a[0] != '-' {
			o.operands = append(o.operands, a)
			continue
		}
		name := strings.TrimPrefix(a[1:], "-")
		name, value, hasValue := strings.Cut(name, "=")
		if valueOptions[name] {
			if !hasValue {
				if i+1 >= len(args) {
					return nil, usagef("option -%s needs a value", name)
				}
				i++
				value = args[i]
			}
			if err := o.setLong(name, value); err != nil {
				return nil, err
			}
			continue
		}
		if name == "help" && !hasValue {
			o.help = true
			continue
		}
		if name == "version" && !hasValue {
			o.version = true
			continue
		}
		if strings.HasPrefix(a, "--") {
			return nil, usagef("unknown option %s", a)
		}
		// A cluster of short options.
		for j := 1; j < len(a); j++ {
			switch c := a[j]; c {
			case 'l':
				o.long = true
			case 's':
				o.short = true
			case 'm':
				o.noMatch = true
			case 'p':
				o.noPlan = true
			case 'h':
				o.help = true
			case 'v':
				o.version = true
			case 'a':
				o.strict = true
				o.filterSet = true
			case 'c':
				o.filter.AllowControl = true
				o.filterSet = true
			case '8':
				o.filter.AllowHigh = true
				o.filterSet = true
			case 'u':
				o.filter.UTF8 = true
				o.filterSet = true
			case 'T':
				value := a[j+1:]
				if value == "" {
					if i+1 >= len(args) {
						return nil, usagef("option -T needs a duration")
					}
					i++
					value = args[i]
				}
				if err := o.setLong("timeout", value); err != nil {
					return nil, err
				}
				j = len(a)
			default:
				return nil, usagef("unknown option -%s", quoteByte(c))
			}
		}
	}
	if o.filter.UTF8 && (o.filter.AllowControl || o.filter.AllowHigh) {
		return nil, usagef("-u cannot be combined with -c or -8")
	}
	if o.strict && o.filter != (finger.Filter{}) {
		return nil, usagef("-a cannot be combined with -c, -8, -u or a -filter other than strict")
	}
	return o, nil
}

func (o *options) setLong(name, value string) error {
	var err error
	switch name {
	case "connect-timeout":
		o.connectTimeout, err = parseDuration(value)
	case "idle-timeout":
		o.idleTimeout, err = parseDuration(value)
	case "timeout":
		o.totalTimeout, err = parseDuration(value)
	case "max-bytes":
		o.maxBytes, err = parseSize(value)
	case "filter":
		o.filter, err = parseFilterMode(value)
		o.filterSet = true
	}
	if err != nil {
		return usagef("-%s: %v", name, err)
	}
	return nil
}

func quoteByte(c byte) string {
	if c >= 0x21 && c < 0x7f {
		return string(c)
	}
	return fmt.Sprintf("\\x%02x", c)
}

// parseDuration accepts Go durations ("1m30s", "500ms") and plain numbers
// of seconds ("10", "2.5"). The duration must be positive.
func parseDuration(s string) (time.Duration, error) {
	d, err := time.ParseDuration(s)
	if err != nil {
		f, ferr := strconv.ParseFloat(s, 64)
		if ferr != nil || f != f {
			return 0, fmt.Errorf("invalid duration %q", s)
		}
		if f > float64(24*time.Hour/time.Second) {
			return 0, fmt.Errorf("duration %q too long", s)
		}
		d = time.Duration(f * float64(time.Second))
	}
	if d <= 0 {
		return 0, fmt.Errorf("duration %q must be positive", s)
	}
	return d, nil
}

// parseSize accepts a byte count with an optional binary suffix: K, M, G
// (also KiB, MiB, GiB, k). The size must be positive.
func parseSize(s string) (int64, error) {
	num, mult := s, int64(1)
	for _, u := range []struct {
		suffix string
		mult   int64
	}{
		{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30},
		{"K", 1 << 10}, {"k", 1 << 10}, {"M", 1 << 20}, {"G", 1 << 30},
	} {
		if strings.HasSuffix(s, u.suffix) {
			num, mult = strings.TrimSuffix(s, u.suffix), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n <= 0 || n > (1<<62)/mult {
		return 0, fmt.Errorf("invalid size %q", s)
	}
	return n * mult, nil
}

// parseFilterMode parses a filter mode name: strict, utf8, control, high,
// raw (control and high), or a comma-separated combination of control and
// high.
func parseFilterMode(s string) (finger.Filter, error) {
	var f finger.Filter
	for _, w := range strings.Split(strings.ToLower(strings.TrimSpace(s)), ",") {
		switch strings.TrimSpace(w) {
		case "strict", "ascii", "":
		case "utf8", "utf-8":
			f.UTF8 = true
		case "control":
			f.AllowControl = true
		case "high", "8bit":
			f.AllowHigh = true
		case "raw", "none":
			f.AllowControl, f.AllowHigh = true, true
		default:
			return finger.Filter{}, fmt.Errorf("unknown filter mode %q (want strict, utf8, control, high or raw)", w)
		}
	}
	if f.UTF8 && (f.AllowControl || f.AllowHigh) {
		return finger.Filter{}, fmt.Errorf("filter mode %q: utf8 cannot be combined with control or high", s)
	}
	return f, nil
}

// targets turns the operands into the questions to ask, in order.
// Consecutive local names form one local query, as BSD finger looks them
// up together; without operands there is one local query for the list of
// logged-in users.
func (o *options) targets() ([]target, error) {
	var ts []target
	local := -1 // index in ts of the local query being gathered
	for _, op := range o.operands {
		if err := checkOperand(op); err != nil {
			return nil, err
		}
		if isURL(op) {
			addr, q, err := finger.ParseURL(op)
			if err != nil {
				return nil, usagef("%s: %v", op, trimPrefix(err))
			}
			q.Verbose = q.Verbose || o.long
			ts = append(ts, target{Addr: addr, Query: q, Operand: op})
			local = -1
			continue
		}
		at := strings.LastIndexByte(op, '@')
		if at < 0 {
			if local >= 0 {
				ts[local].Query.User += " " + op
				ts[local].Operand += " " + op
				continue
			}
			ts = append(ts, target{Query: finger.Query{Verbose: o.long && !o.short, User: op}, Operand: op})
			local = len(ts) - 1
			continue
		}
		local = -1
		host := op[at+1:]
		if host == "" {
			return nil, usagef("%s: empty host name", op)
		}
		addr, err := finger.NormalizeAddr(host)
		if err != nil {
			return nil, usagef("%s: %v", op, trimPrefix(err))
		}
		q := finger.Query{Verbose: o.long}
		rest := op[:at]
		user, hops, hasHops := strings.Cut(rest, "@")
		q.User = user
		if hasHops {
			q.Hosts = strings.Split(hops, "@")
			for _, h := range q.Hosts {
				if h == "" {
					return nil, usagef("%s: empty host name", op)
				}
			}
		}
		if _, err := finger.ParseQuery(q.String()); err != nil {
			return nil, usagef("%s: %v", op, trimPrefix(err))
		}
		ts = append(ts, target{Addr: addr, Query: q, Operand: op})
	}
	if len(o.operands) == 0 {
		ts = append(ts, target{Query: finger.Query{Verbose: o.long && !o.short}})
	}
	return ts, nil
}

// checkOperand refuses operands that cannot be sent as one query line:
// control bytes (a CR or LF would smuggle a second line to the server).
func checkOperand(op string) error {
	for i := 0; i < len(op); i++ {
		if c := op[i]; c < 0x20 || c == 0x7f {
			return usagef("%s: control character in operand", finger.Filter{}.String(op))
		}
	}
	return nil
}

func isURL(s string) bool {
	return len(s) >= 9 && strings.EqualFold(s[:9], "finger://")
}

// trimPrefix removes the "finger: " prefix of library errors, which the
// command adds itself.
func trimPrefix(err error) string {
	s := err.Error()
	for strings.HasPrefix(s, "finger: ") {
		s = strings.TrimPrefix(s, "finger: ")
	}
	return s
}
