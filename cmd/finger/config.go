package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/openfinger/finger"
)

// defaultConfigPath is the administrator's configuration file.
const defaultConfigPath = "/etc/finger.conf"

// maxConfigBytes bounds how much of the configuration file is read.
const maxConfigBytes = 64 << 10

// settings are the administrator's defaults from the configuration file
// and the environment. A zero field means "not set".
type settings struct {
	filter    finger.Filter
	filterSet bool

	connectTimeout time.Duration
	idleTimeout    time.Duration
	totalTimeout   time.Duration
	maxBytes       int64
}

// readConfig parses the configuration file: one "key = value" per line,
// '#' starts a comment, values may be quoted ("utf8" or 'utf8'), so the
// file is also valid TOML. Keys: filter, connect_timeout, idle_timeout,
// timeout, max_bytes. An unknown key or a bad value is an error naming the
// line.
func readConfig(r io.Reader, name string) (settings, error) {
	var s settings
	sc := bufio.NewScanner(io.LimitReader(r, maxConfigBytes))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		key, value, ok := strings.Cut(line, "=")
		if !ok {
			return settings{}, fmt.Errorf("%s:%d: want key = value", name, n)
		}
		key = strings.TrimSpace(key)
		value = unquote(stripComment(strings.TrimSpace(value)))
		if err := s.set(key, value); err != nil {
			return settings{}, fmt.Errorf("%s:%d: %v", name, n, err)
		}
	}
	if err := sc.Err(); err != nil {
		return settings{}, fmt.Errorf("%s: %v", name, err)
	}
	return s, nil
}

func (s *settings) set(key, value string) error {
	var err error
	switch strings.ReplaceAll(strings.ToLower(key), "-", "_") {
	case "filter":
		s.filter, err = parseFilterMode(value)
		s.filterSet = err == nil
	case "connect_timeout":
		s.connectTimeout, err = parseDuration(value)
	case "idle_timeout":
		s.idleTimeout, err = parseDuration(value)
	case "timeout", "total_timeout":
		s.totalTimeout, err = parseDuration(value)
	case "max_bytes":
		s.maxBytes, err = parseSize(value)
	default:
		return fmt.Errorf("unknown key %q", key)
	}
	return err
}

// stripComment removes a '#' comment after an unquoted value.
func stripComment(v string) string {
	if v == "" || v[0] == '"' || v[0] == '\'' {
		if len(v) > 0 {
			if end := strings.IndexByte(v[1:], v[0]); end >= 0 {
				return v[:end+2]
			}
		}
		return v
	}
	if i := strings.IndexByte(v, '#'); i >= 0 {
		v = strings.TrimSpace(v[:i])
	}
	return v
}

func unquote(v string) string {
	if len(v) >= 2 && (v[0] == '"' || v[0] == '\'') && v[len(v)-1] == v[0] {
		if v[0] == '"' {
			if u, err := strconv.Unquote(v); err == nil {
				return u
			}
		}
		return v[1 : len(v)-1]
	}
	return v
}

// loadSettings reads the configuration file (a missing file is no error)
// and then FINGER_FILTER, which overrides the file's filter. Problems are
// reported as warnings: the command goes on with the safe defaults.
func loadSettings(path string, getenv func(string) string, warn func(string)) settings {
	var s settings
	f, err := os.Open(path)
	switch {
	case err == nil:
		s, err = readConfig(f, path)
		f.Close()
		if err != nil {
			warn(err.Error() + "; ignoring the file")
			s = settings{}
		}
	case !errors.Is(err, fs.ErrNotExist):
		warn(err.Error())
	}
	if v := getenv("FINGER_FILTER"); v != "" {
		f, err := parseFilterMode(v)
		if err != nil {
			warn("FINGER_FILTER: " + err.Error() + "; using strict")
			s.filter, s.filterSet = finger.Filter{}, true
		} else {
			s.filter, s.filterSet = f, true
		}
	}
	return s
}
