// Package mail reports the state of users' mail spools (mbox files in a
// spool directory such as /var/mail), the way BSD finger does.
package mail

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/openfinger/finger/internal/userinfo"
)

// DefaultDir is the spool directory used when Spool.Dir is empty.
const DefaultDir = "/var/mail"

var _ userinfo.Mailboxes = (*Spool)(nil)

// Spool is a userinfo.Mailboxes reading Dir/LOGIN. The spool is examined
// with lstat(2) only (never opened, so reading it does not change its
// access time). Only a non-empty regular file counts as mail: a missing
// file, an empty one, a symlink or anything else is "No mail."
// (Exists false, no error). The mail is unread when the spool was modified
// after it was last read (mtime later than atime).
//
// Maildir and mail stored in home directories are not supported.
//
// The lstat runs in its own goroutine bounded by ctx, so a hung NFS spool
// cannot block the caller; the goroutine then lingers until the kernel
// returns.
//
// A Spool is safe for concurrent use.
type Spool struct {
	Dir string // DefaultDir when empty
}

func (s *Spool) dir() string {
	if s.Dir == "" {
		return DefaultDir
	}
	return s.Dir
}

// Mail returns the mail status of a.
func (s *Spool) Mail(ctx context.Context, a *userinfo.Account) (userinfo.MailStatus, error) {
	if err := ctx.Err(); err != nil {
		return userinfo.MailStatus{}, err
	}
	if a == nil || a.Login == "" || a.Login == "." || a.Login == ".." || strings.ContainsAny(a.Login, "/\x00") {
		return userinfo.MailStatus{}, nil
	}
	p := filepath.Join(s.dir(), a.Login)
	type result struct {
		st  syscall.Stat_t
		err error
	}
	ch := make(chan result, 1)
	go func() {
		var r result
		r.err = syscall.Lstat(p, &r.st)
		ch <- r
	}()
	var r result
	select {
	case r = <-ch:
	case <-ctx.Done():
		return userinfo.MailStatus{}, fmt.Errorf("mail: %s: %w", p, ctx.Err())
	}
	if r.err != nil {
		if errors.Is(r.err, syscall.ENOENT) || errors.Is(r.err, syscall.ENOTDIR) {
			return userinfo.MailStatus{}, nil
		}
		return userinfo.MailStatus{}, fmt.Errorf("mail: %s: %w", p, r.err)
	}
	return status(&r.st), nil
}

func status(st *syscall.Stat_t) userinfo.MailStatus {
	if st.Mode&syscall.S_IFMT != syscall.S_IFREG || st.Size == 0 {
		return userinfo.MailStatus{}
	}
	m := time.Unix(st.Mtim.Sec, st.Mtim.Nsec)
	at := time.Unix(st.Atim.Sec, st.Atim.Nsec)
	return userinfo.MailStatus{
		Exists:   true,
		Unread:   m.After(at),
		Received: m,
		Read:     at,
	}
}
