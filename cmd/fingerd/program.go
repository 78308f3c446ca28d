package main

import (
	"context"
	"io"
	"os/exec"
	"strings"

	"github.com/openfinger/finger"
	"github.com/openfinger/finger/internal/config"
)

// serveProgram runs the virtual user's program (argv, no shell) with a
// clean environment, its timeout and output cap, and relays its output
// through the UTF-8-safe filter. Programs run only when [programs] is
// enabled; the query never reaches the command line.
func (v *virtualUsers) serveProgram(ctx context.Context, w io.Writer, u config.Virtual, r *finger.Request) {
	if !v.programs || len(u.Program) == 0 {
		io.WriteString(w, msgUnavailable+"\n")
		return
	}
	ctx, cancel := context.WithTimeout(ctx, u.Timeout.D())
	defer cancel()
	cmd := exec.CommandContext(ctx, u.Program[0], u.Program[1:]...)
	cmd.Env = []string{"PATH=/usr/bin:/bin", "LANG=C.UTF-8"}
	cmd.Dir = "/"
	cmd.WaitDelay = u.Timeout.D()
	var out limitedBuffer
	out.max = u.MaxBytes
	cmd.Stdout = &out
	// No /dev/null: under Landlock it is not writable.
	cmd.Stdin = strings.NewReader("")
	cmd.Stderr = io.Discard
	if err := cmd.Run(); err != nil {
		v.log.Warn("fingerd: virtual user program", "login", u.Login, "program", strings.Join(u.Program, " "), "err", err)
		if out.b.Len() == 0 {
			io.WriteString(w, msgUnavailable+"\n")
			return
		}
	}
	fw := finger.Filter{UTF8: true}.NewWriter(w)
	io.WriteString(fw, out.b.String())
	fw.Close()
	if out.cut {
		io.WriteString(w, "\n[truncated]\n")
	}
}

// limitedBuffer keeps the first max bytes written to it and drops the
// rest.
type limitedBuffer struct {
	b   strings.Builder
	max int64
	cut bool
}

func (l *limitedBuffer) Write(p []byte) (int, error) {
	if room := l.max - int64(l.b.Len()); room < int64(len(p)) {
		l.cut = true
		if room > 0 {
			l.b.Write(p[:room])
		}
		return len(p), nil
	}
	l.b.Write(p)
	return len(p), nil
}
