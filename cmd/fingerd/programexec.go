package main

import (
	"fmt"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"

	"github.com/openfinger/finger/internal/privilege"
	"github.com/openfinger/finger/internal/program"
)

// programExecEnv marks fingerd started as the launcher of a virtual user's
// program (see launchSpec).
const programExecEnv = "FINGERD_PROGRAM_EXEC"

// selfExe is fingerd's own executable, resolved once.
var selfExe = sync.OnceValues(os.Executable)

// launchSpec returns spec started through fingerd's program launcher: this
// executable again, which adds a Landlock layer that lets the program read
// and execute what the daemon may, write nothing and signal no process
// outside it, then executes the program in its place. Without it a program would share the daemon's
// domain, which may write a SQLite store's directory, and being the same
// user could rewrite the hosted users' plans and tokens. spec is validated
// as it is before it is wrapped.
func launchSpec(spec program.Spec) (program.Spec, error) {
	if err := spec.Validate(); err != nil {
		return spec, err
	}
	exe, err := selfExe()
	if err != nil {
		return spec, fmt.Errorf("program launcher: %w", err)
	}
	l := spec
	l.Path = exe
	l.Args = append([]string{spec.Path}, spec.Args...)
	l.Env = append(slices.Clip(spec.Env), programExecEnv+"=1")
	return l, nil
}

// programExecMain is fingerd started by launchSpec, with the program's path
// and arguments as its own: it restricts itself to reading and executing,
// and executes the program with the environment it was given, less the
// launcher's mark. It returns only on failure, with the shell's status
// for a command that cannot run.
func programExecMain() int {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "fingerd: program launcher: no program")
		return 127
	}
	env := slices.DeleteFunc(os.Environ(), func(e string) bool {
		return strings.HasPrefix(e, programExecEnv+"=")
	})
	// The layer is the thread's, which exec makes the program's: the other
	// threads' would need /proc, which the daemon's domain does not hold.
	runtime.LockOSThread()
	if err := privilege.RestrictThreadReadOnly(); err != nil {
		fmt.Fprintf(os.Stderr, "fingerd: program launcher: %v\n", err)
		return 127
	}
	err := syscall.Exec(os.Args[1], os.Args[1:], env)
	fmt.Fprintf(os.Stderr, "fingerd: program launcher: %s: %v\n", os.Args[1], err)
	return 127
}
