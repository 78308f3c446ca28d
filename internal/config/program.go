package config

import "github.com/openfinger/finger/internal/program"

// ProgramSpec returns the program a [[virtual]] entry runs, without a
// user to run as (the program runs as the daemon's unprivileged user) and
// without a logger. It is the zero Spec when the entry has no program.
func (u Virtual) ProgramSpec() program.Spec {
	if len(u.Program) == 0 {
		return program.Spec{}
	}
	return program.Spec{
		Path:     u.Program[0],
		Args:     append([]string(nil), u.Program[1:]...),
		Timeout:  u.Timeout.D(),
		MaxBytes: u.MaxBytes,
	}
}
