package privilege

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
	"kernel.org/pub/linux/libs/security/libcap/psx"
)

// Options change what Drop keeps.
type Options struct {
	// KeepDACReadSearch keeps CAP_DAC_READ_SEARCH in the permitted and
	// effective sets (and the bounding set), alone: the process may then
	// read any file and search any directory, which fingerd needs to read
	// the published files inside homes of mode 0700. Every other
	// capability is dropped from every set.
	KeepDACReadSearch bool
}

// allThreads runs a system call on every thread of the process. Process
// attributes such as capabilities and the bounding set are per thread on
// Linux; psx applies the call everywhere, with or without cgo.
// Unused arguments are passed as zero: prctl checks some of them.
func allThreads(trap, a1, a2, a3 uintptr) error {
	_, _, errno := psx.Syscall6(trap, a1, a2, a3, 0, 0, 0)
	if errno != 0 {
		return errno
	}
	return nil
}

// Drop switches every thread of the process to id. When the process is not
// root it changes nothing but no_new_privs, and returns nil: an ordinary
// user needs no dropping. When it is root, it
//
//   - sets keep-capabilities if CAP_DAC_READ_SEARCH is to be kept;
//   - removes every other capability from the bounding set and clears the
//     ambient set;
//   - sets the supplementary groups to none, then the GID, then the UID
//     (real, effective and saved), on all threads;
//   - reduces the permitted and effective sets to CAP_DAC_READ_SEARCH or to
//     nothing;
//   - sets no_new_privs;
//
// and finally checks every thread in /proc/self/task. Any failure is an
// error: the caller must not serve.
func Drop(id Identity, opt Options) error {
	if id.UID == 0 || id.GID == 0 {
		return fmt.Errorf("%w: target identity %d:%d", ErrRoot, id.UID, id.GID)
	}
	if !IsRoot() {
		return noNewPrivs()
	}
	keep := uintptr(0)
	if opt.KeepDACReadSearch {
		keep = 1
	}
	if err := allThreads(unix.SYS_PRCTL, unix.PR_SET_KEEPCAPS, keep, 0); err != nil {
		return fmt.Errorf("privilege: PR_SET_KEEPCAPS: %w", err)
	}
	for c := 0; c <= lastCap(); c++ {
		if opt.KeepDACReadSearch && c == unix.CAP_DAC_READ_SEARCH {
			continue
		}
		if err := allThreads(unix.SYS_PRCTL, unix.PR_CAPBSET_DROP, uintptr(c), 0); err != nil {
			if errors.Is(err, unix.EINVAL) {
				break // past the kernel's last capability
			}
			return fmt.Errorf("privilege: dropping capability %d from the bounding set: %w", c, err)
		}
	}
	if _, _, errno := psx.Syscall6(unix.SYS_PRCTL, unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0, 0); errno != 0 && errno != unix.EINVAL {
		return fmt.Errorf("privilege: clearing ambient capabilities: %w", errno)
	}
	// syscall.Setgroups, Setgid and Setuid apply to every thread.
	if err := syscall.Setgroups([]int{}); err != nil {
		return fmt.Errorf("privilege: setgroups: %w", err)
	}
	if err := syscall.Setresgid(id.GID, id.GID, id.GID); err != nil {
		return fmt.Errorf("privilege: setresgid(%d): %w", id.GID, err)
	}
	if err := syscall.Setresuid(id.UID, id.UID, id.UID); err != nil {
		return fmt.Errorf("privilege: setresuid(%d): %w", id.UID, err)
	}
	if err := setCaps(opt.KeepDACReadSearch); err != nil {
		return err
	}
	if err := allThreads(unix.SYS_PRCTL, unix.PR_SET_KEEPCAPS, 0, 0); err != nil {
		return fmt.Errorf("privilege: PR_SET_KEEPCAPS: %w", err)
	}
	if err := noNewPrivs(); err != nil {
		return err
	}
	return Verify(id, opt)
}

func noNewPrivs() error {
	if err := allThreads(unix.SYS_PRCTL, unix.PR_SET_NO_NEW_PRIVS, 1, 0); err != nil {
		return fmt.Errorf("privilege: PR_SET_NO_NEW_PRIVS: %w", err)
	}
	return nil
}

// setCaps sets the permitted and effective sets of every thread to
// CAP_DAC_READ_SEARCH (keep) or to nothing, and the inheritable set to
// nothing.
func setCaps(keep bool) error {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if keep {
		bit := uint32(1) << (unix.CAP_DAC_READ_SEARCH % 32)
		data[unix.CAP_DAC_READ_SEARCH/32].Permitted = bit
		data[unix.CAP_DAC_READ_SEARCH/32].Effective = bit
	}
	err := allThreads(unix.SYS_CAPSET, uintptr(unsafe.Pointer(&hdr)), uintptr(unsafe.Pointer(&data[0])), 0)
	if err != nil {
		return fmt.Errorf("privilege: capset: %w", err)
	}
	return nil
}

// lastCap returns the highest capability number the kernel knows.
func lastCap() int {
	b, err := os.ReadFile("/proc/sys/kernel/cap_last_cap")
	if err == nil {
		if n, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && n > 0 && n < 128 {
			return n
		}
	}
	return 63
}

// ThreadStatus is what /proc/PID/task/TID/status tells of one thread's
// credentials.
type ThreadStatus struct {
	TID    string
	UID    [4]int // real, effective, saved, filesystem
	GID    [4]int
	Groups []int
	CapEff uint64
	CapPrm uint64
	CapBnd uint64
	NoNew  bool
}

// Threads reads the credentials of every thread of process pid (0 means
// this process) from /proc.
func Threads(pid int) ([]ThreadStatus, error) {
	dir := "/proc/self/task"
	if pid > 0 {
		dir = fmt.Sprintf("/proc/%d/task", pid)
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("privilege: %w", err)
	}
	var out []ThreadStatus
	for _, e := range ents {
		st, err := readStatus(filepath.Join(dir, e.Name(), "status"))
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				continue // the thread exited meanwhile
			}
			return nil, err
		}
		st.TID = e.Name()
		out = append(out, st)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("privilege: no threads in %s", dir)
	}
	return out, nil
}

func readStatus(path string) (ThreadStatus, error) {
	var st ThreadStatus
	f, err := os.Open(path)
	if err != nil {
		return st, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		fields := strings.Fields(v)
		switch k {
		case "Uid", "Gid":
			if len(fields) != 4 {
				return st, fmt.Errorf("privilege: %s: bad %s line", path, k)
			}
			dst := &st.UID
			if k == "Gid" {
				dst = &st.GID
			}
			for i, s := range fields {
				n, err := strconv.Atoi(s)
				if err != nil {
					return st, fmt.Errorf("privilege: %s: bad %s line", path, k)
				}
				dst[i] = n
			}
		case "Groups":
			for _, s := range fields {
				n, err := strconv.Atoi(s)
				if err == nil {
					st.Groups = append(st.Groups, n)
				}
			}
		case "CapEff", "CapPrm", "CapBnd":
			if len(fields) != 1 {
				continue
			}
			n, err := strconv.ParseUint(fields[0], 16, 64)
			if err != nil {
				return st, fmt.Errorf("privilege: %s: bad %s line", path, k)
			}
			switch k {
			case "CapEff":
				st.CapEff = n
			case "CapPrm":
				st.CapPrm = n
			default:
				st.CapBnd = n
			}
		case "NoNewPrivs":
			st.NoNew = len(fields) == 1 && fields[0] == "1"
		}
	}
	return st, sc.Err()
}

// Verify checks every thread of this process: no root UID or GID of any
// kind, no supplementary groups, and no capability but
// CAP_DAC_READ_SEARCH (when kept) in the effective, permitted and bounding
// sets.
func Verify(id Identity, opt Options) error {
	threads, err := Threads(0)
	if err != nil {
		return err
	}
	allowed := uint64(0)
	if opt.KeepDACReadSearch {
		allowed = 1 << unix.CAP_DAC_READ_SEARCH
	}
	for _, th := range threads {
		for i := range 4 {
			if th.UID[i] != id.UID {
				return fmt.Errorf("%w: thread %s has UIDs %v, want %d", ErrRoot, th.TID, th.UID, id.UID)
			}
			if th.GID[i] != id.GID {
				return fmt.Errorf("%w: thread %s has GIDs %v, want %d", ErrRoot, th.TID, th.GID, id.GID)
			}
		}
		if len(th.Groups) > 0 {
			return fmt.Errorf("privilege: thread %s kept supplementary groups %v", th.TID, th.Groups)
		}
		if th.CapEff&^allowed != 0 || th.CapPrm&^allowed != 0 || th.CapBnd&^allowed != 0 {
			return fmt.Errorf("privilege: thread %s kept capabilities (eff %x, prm %x, bnd %x)", th.TID, th.CapEff, th.CapPrm, th.CapBnd)
		}
	}
	return nil
}

// CanKeepDACReadSearch reports whether CAP_DAC_READ_SEARCH is in this
// thread's capability bounding set, so that Drop can keep it.
func CanKeepDACReadSearch() bool {
	st, err := readStatus("/proc/self/status")
	return err == nil && st.CapBnd&(1<<unix.CAP_DAC_READ_SEARCH) != 0
}
