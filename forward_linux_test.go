package finger

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"syscall"
)

// fwdOwnNetns moves the calling goroutine, locked to its thread for the
// rest of its life, into a new network namespace holding a dummy interface
// with address addr (one end of a veth pair: the kernel may lack the
// dummy driver). It needs root and ip(8) from iproute2. Call it from a
// goroutine of its own: the thread ends with that goroutine, so the
// namespace never reaches other goroutines or tests.
func fwdOwnNetns(addr netip.Prefix) error {
	if os.Geteuid() != 0 {
		return errors.New("not root")
	}
	ip, err := exec.LookPath("ip")
	if err != nil {
		return err
	}
	runtime.LockOSThread() // never unlocked: the thread exits with the goroutine
	if err := syscall.Unshare(syscall.CLONE_NEWNET); err != nil {
		return fmt.Errorf("unshare(CLONE_NEWNET): %w", err)
	}
	// A child forked from this thread starts in its network namespace.
	for _, args := range [][]string{
		{"link", "add", "fgtfwd0", "type", "veth", "peer", "name", "fgtfwd1"},
		{"addr", "add", addr.String(), "dev", "fgtfwd0"},
		{"link", "set", "fgtfwd0", "up"},
	} {
		if out, err := exec.Command(ip, args...).CombinedOutput(); err != nil {
			return fmt.Errorf("ip %v: %v: %s", args, err, out)
		}
	}
	// Forget the addresses of the namespace the test started in.
	fwdOwn.Lock()
	fwdOwn.addrs = nil
	fwdOwn.Unlock()
	return nil
}
