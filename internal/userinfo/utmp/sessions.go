package utmp

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/openfinger/finger/internal/userinfo"
)

// Default paths.
const (
	DefaultPath = "/var/run/utmp"
	DefaultDev  = "/dev"
)

var _ userinfo.Sessions = (*Sessions)(nil)

// Sessions is a userinfo.Sessions reading a utmp file. Only USER_PROCESS
// records with a user name become sessions. Idle time is the time since
// the terminal's last access (atime of Dev/Line); a terminal that is not
// group-writable has messages off (the rule of BSD finger and mesg(1)).
// When the terminal cannot be stat'ed (no tty line, an X display ":0",
// a stale entry) Idle is -1 and MessagesOff is false.
//
// Entries are reported as recorded: a stale USER_PROCESS entry left by a
// crashed login program is shown like a live one.
//
// A Sessions is safe for concurrent use; its fields must not be changed
// after first use.
type Sessions struct {
	Path string // utmp file; DefaultPath when empty
	Dev  string // directory of terminal devices; DefaultDev when empty

	now func() time.Time // time.Now in tests
}

func (s *Sessions) path() string {
	if s.Path == "" {
		return DefaultPath
	}
	return s.Path
}

func (s *Sessions) dev() string {
	if s.Dev == "" {
		return DefaultDev
	}
	return s.Dev
}

// Sessions returns the current login sessions. A missing utmp file is not
// an error: the result is an empty list.
func (s *Sessions) Sessions(ctx context.Context) ([]userinfo.Session, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	f, err := os.Open(s.path())
	if errors.Is(err, fs.ErrNotExist) {
		return []userinfo.Session{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("utmp: %w", err)
	}
	defer f.Close()
	recs, err := Parse(f)
	if err != nil {
		return nil, fmt.Errorf("utmp: %s: %w", s.path(), err)
	}
	now := time.Now
	if s.now != nil {
		now = s.now
	}
	t := now()
	out := []userinfo.Session{}
	for _, r := range recs {
		if r.Type != UserProcess || r.User == "" {
			continue
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		sess := userinfo.Session{
			Login:     r.User,
			TTY:       r.Line,
			Host:      r.Host,
			LoginTime: r.Time,
			Idle:      -1,
		}
		if st, ok := s.statTTY(r.Line); ok {
			atime := time.Unix(st.Atim.Sec, st.Atim.Nsec)
			sess.Idle = max(t.Sub(atime), 0)
			sess.MessagesOff = st.Mode&syscall.S_IWGRP == 0
		}
		out = append(out, sess)
	}
	return out, nil
}

// statTTY stats the terminal of a utmp line. Only a character device
// inside Dev is accepted: a line with ".." or an absolute path, or one
// naming a file that is not a terminal device, gives no information.
func (s *Sessions) statTTY(line string) (*syscall.Stat_t, bool) {
	if line == "" || !filepath.IsLocal(line) {
		return nil, false
	}
	var st syscall.Stat_t
	if err := syscall.Stat(filepath.Join(s.dev(), line), &st); err != nil {
		return nil, false
	}
	if st.Mode&syscall.S_IFMT != syscall.S_IFCHR {
		return nil, false
	}
	return &st, true
}
