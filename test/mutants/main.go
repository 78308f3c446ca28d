// Command mutants checks that the test suite catches named, deliberate
// bugs in the security-relevant code: for each mutant (mutants.go) it
// changes one piece of source text in a temporary copy of the tree, runs
// the tests of the packages that should notice, and reports the mutant
// killed (a test failed) or survived (every test passed). The work tree is
// never changed.
//
//	go run ./test/mutants [-short] [-run REGEXP] [-timeout 3m] [-keep] [-v] [-list]
//
// It prints one line per mutant and "N killed, N survived"; it exits 1
// when a mutant survives or no longer applies (its text is not found
// exactly once: the code changed and the mutant must be updated).
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"time"
)

func main() {
	runRE := flag.String("run", "", "run only the mutants whose name matches this regular expression")
	timeout := flag.Duration("timeout", 3*time.Minute, "time limit for one mutant's tests (a timeout counts as killed)")
	keep := flag.Bool("keep", false, "keep the temporary copy of the tree")
	verbose := flag.Bool("v", false, "show the test output of surviving mutants")
	list := flag.Bool("list", false, "list the mutants and exit")
	short := flag.Bool("short", false, "run only the short list (the mutants marked Short)")
	flag.Parse()
	if *list {
		for _, m := range mutants {
			fmt.Printf("%-28s %s\n", m.Name, m.Desc)
		}
		return
	}
	var only *regexp.Regexp
	if *runRE != "" {
		only = regexp.MustCompile(*runRE)
	}
	root, err := repoRoot()
	if err != nil {
		fatal(err)
	}
	tmp, err := os.MkdirTemp("", "openfinger-mutants-")
	if err != nil {
		fatal(err)
	}
	if *keep {
		fmt.Fprintf(os.Stderr, "mutants: tree copied to %s\n", tmp)
	} else {
		defer os.RemoveAll(tmp)
	}
	os.Chmod(tmp, 0o755) // tests that drop to nobody read the copy
	if err := copyTree(root, tmp); err != nil {
		fatal(err)
	}

	var selected []mutant
	for _, m := range mutants {
		if only != nil && !only.MatchString(m.Name) || *short && !m.Short {
			continue
		}
		selected = append(selected, m)
	}
	// A mutant is only killed by tests that pass without it: run each
	// mutant's tests on the unchanged copy first.
	if err := baseline(tmp, selected, *timeout); err != nil {
		fatal(err)
	}

	var killed, survived, stale int
	var bad []string
	for _, m := range selected {
		start := time.Now()
		res, out, err := m.try(tmp, *timeout)
		d := time.Since(start).Round(time.Second)
		switch {
		case err != nil:
			stale++
			bad = append(bad, m.Name)
			fmt.Printf("STALE     %-28s %v\n", m.Name, err)
		case res == "survived":
			survived++
			bad = append(bad, m.Name)
			fmt.Printf("SURVIVED  %-28s %s (%v)\n", m.Name, m.Desc, d)
			if *verbose {
				os.Stdout.Write(out)
			}
		default:
			killed++
			fmt.Printf("killed    %-28s %s (%s, %v)\n", m.Name, m.Desc, res, d)
		}
	}
	fmt.Printf("mutants: %d killed, %d survived", killed, survived)
	if stale > 0 {
		fmt.Printf(", %d no longer apply", stale)
	}
	fmt.Println()
	if len(bad) > 0 {
		fmt.Printf("mutants: not caught: %s\n", strings.Join(bad, " "))
		os.Exit(1)
	}
}

// baseline runs the tests of each of ms, once for each distinct package list
// and -run pattern, in the unchanged tree at dir, and fails if any fails.
func baseline(dir string, ms []mutant, timeout time.Duration) error {
	seen := make(map[string]bool)
	for _, m := range ms {
		key := m.Pkgs + "\x00" + m.Run
		if seen[key] {
			continue
		}
		seen[key] = true
		start := time.Now()
		if out, err := m.test(dir, timeout); err != nil {
			return fmt.Errorf("the tests of mutant %s fail without it (%v), so they prove nothing:\n%s", m.Name, err, out)
		}
		fmt.Printf("baseline  %-28s its tests pass on the unchanged tree (%v)\n", m.Name, time.Since(start).Round(time.Second))
	}
	return nil
}

// errTimedOut is returned by mutant.test when the tests ran out of time.
var errTimedOut = errors.New("the tests timed out")

// test runs m's tests in the tree at dir, as it is.
func (m mutant) test(dir string, timeout time.Duration) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	args := []string{"test", "-count=1", "-failfast", "-timeout", timeout.String()}
	if m.Run != "" {
		args = append(args, "-run", m.Run)
	}
	out, err := goCmd(ctx, dir, append(args, m.pkgs()...)...)
	if ctx.Err() != nil {
		return out, fmt.Errorf("%w after %v", errTimedOut, timeout)
	}
	return out, err
}

// try applies m in the tree at dir, runs its tests and restores the file.
// It returns "survived", or how the mutant was killed, and the test output.
func (m mutant) try(dir string, timeout time.Duration) (string, []byte, error) {
	path := filepath.Join(dir, m.File)
	orig, err := os.ReadFile(path)
	if err != nil {
		return "", nil, err
	}
	mutated := orig
	for _, e := range m.Edits {
		if n := bytes.Count(mutated, []byte(e.From)); n != 1 {
			return "", nil, fmt.Errorf("%s: the text %q occurs %d times, want once", m.File, e.From, n)
		}
		mutated = bytes.Replace(mutated, []byte(e.From), []byte(e.To), 1)
	}
	if err := os.WriteFile(path, mutated, 0o644); err != nil {
		return "", nil, err
	}
	defer os.WriteFile(path, orig, 0o644)

	// The mutant must build: a mutant the compiler rejects proves nothing.
	if out, err := goCmd(context.Background(), dir, append([]string{"vet"}, m.pkgs()...)...); err != nil {
		return "", out, fmt.Errorf("the mutant does not build or vet:\n%s", out)
	}
	out, err := m.test(dir, timeout)
	switch {
	case err == nil:
		return "survived", out, nil
	case errors.Is(err, errTimedOut):
		return "timeout", out, nil
	}
	var failed []string
	for _, line := range strings.Split(string(out), "\n") {
		if t, ok := strings.CutPrefix(strings.TrimSpace(line), "--- FAIL: "); ok && !strings.Contains(t, "/") {
			failed = append(failed, strings.Fields(t)[0])
		}
	}
	if len(failed) == 0 {
		return "test binary failed", out, nil
	}
	return "by " + strings.Join(failed, ","), out, nil
}

func (m mutant) pkgs() []string { return strings.Fields(m.Pkgs) }

// goCmd runs the go command with args in dir and returns its output.
func goCmd(ctx context.Context, dir string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOFLAGS=-buildvcs=false")
	cmd.WaitDelay = 10 * time.Second
	return cmd.CombinedOutput()
}

func repoRoot() (string, error) {
	out, err := exec.Command("git", "rev-parse", "--show-toplevel").Output()
	if err != nil {
		return "", fmt.Errorf("git rev-parse: %w", err)
	}
	return strings.TrimSpace(string(out)), nil
}

// copyTree copies the files git knows (tracked, or new and not ignored) of
// the tree at src into dst, as they are in the work tree.
func copyTree(src, dst string) error {
	cmd := exec.Command("git", "ls-files", "-z", "--cached", "--others", "--exclude-standard")
	cmd.Dir = src
	out, err := cmd.Output()
	if err != nil {
		return fmt.Errorf("git ls-files: %w", err)
	}
	for _, name := range strings.Split(strings.TrimRight(string(out), "\x00"), "\x00") {
		from := filepath.Join(src, name)
		fi, err := os.Lstat(from)
		if errors.Is(err, fs.ErrNotExist) {
			continue // deleted in the work tree
		}
		if err != nil {
			return err
		}
		to := filepath.Join(dst, name)
		if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
			return err
		}
		if fi.Mode()&fs.ModeSymlink != 0 {
			target, err := os.Readlink(from)
			if err != nil {
				return err
			}
			if err := os.Symlink(target, to); err != nil {
				return err
			}
			continue
		}
		if !fi.Mode().IsRegular() {
			continue
		}
		if err := copyFile(from, to, fi.Mode().Perm()); err != nil {
			return err
		}
	}
	return nil
}

func copyFile(from, to string, perm fs.FileMode) error {
	r, err := os.Open(from)
	if err != nil {
		return err
	}
	defer r.Close()
	w, err := os.OpenFile(to, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, perm)
	if err != nil {
		return err
	}
	if _, err := io.Copy(w, r); err != nil {
		w.Close()
		return err
	}
	return w.Close()
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "mutants:", err)
	os.Exit(2)
}
