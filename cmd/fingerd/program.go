package main

import (
	"context"
	"io"
	"strings"

	"github.com/openfinger/finger"
	"github.com/openfinger/finger/internal/config"
	"github.com/openfinger/finger/internal/program"
)

// serveProgram runs the virtual user's program with program.Run (argv
// without a shell, a clean environment, the query only in FINGER_USER,
// FINGER_VERBOSE and FINGER_CLIENT, standard error to the operator log,
// a timeout, an output cap, and the whole process group killed at the
// end) and relays its output through the UTF-8-safe filter. Programs run
// only when [programs] is enabled; under Landlock, through fingerd's
// launcher, which takes away the store directory's write access.
func (v *virtualUsers) serveProgram(ctx context.Context, w io.Writer, u config.Virtual, r *finger.Request) {
	if !v.programs || len(u.Program) == 0 {
		io.WriteString(w, msgUnavailable+"\n")
		return
	}
	// UID and GID stay nil: fingerd has dropped root before serving, so
	// the program runs as the serving user.
	spec := u.ProgramSpec()
	spec.Logger = v.log
	if v.launcher {
		var err error
		if spec, err = launchSpec(spec); err != nil {
			v.log.Warn("fingerd: virtual user program", "login", u.Login, "program", strings.Join(u.Program, " "), "err", err)
			io.WriteString(w, msgUnavailable+"\n")
			return
		}
	}
	in := program.Input{User: r.Query.User, Verbose: r.Query.Verbose}
	if r.RemoteAddr != nil {
		in.ClientAddr = r.RemoteAddr.String()
	}
	fw := finger.Filter{UTF8: true}.NewWriter(w)
	cw := &countWriter{w: fw}
	err := program.Run(ctx, spec, in, cw)
	fw.Close()
	if err != nil {
		v.log.Warn("fingerd: virtual user program", "login", u.Login, "program", strings.Join(u.Program, " "), "err", err)
		if cw.n == 0 {
			io.WriteString(w, msgUnavailable+"\n")
		}
	}
}

// countWriter counts the bytes written through it.
type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}
