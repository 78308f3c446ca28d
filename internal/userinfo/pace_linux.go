package userinfo

import (
	"context"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// sleepUntil waits until deadline or the end of ctx, waking at the
// deadline itself. A runtime timer does not: when the process has nothing
// else to do, the Go runtime waits for its next timer in epoll_wait, whose
// timeout is in whole milliseconds, so that a wait of 1.85 ms ends about
// 2 ms after it began. The end of a pacer's wait would then follow when it
// began, which is what the work before it took: the very difference the
// pacer hides (a hidden user's reply came about 10 us later than an
// unknown login's, told apart by a Kolmogorov-Smirnov test over 5,000
// replies of each). A timerfd armed for the deadline wakes the runtime's
// poller at it, to the microsecond. When one cannot be made, a runtime
// timer waits.
func sleepUntil(ctx context.Context, deadline time.Time) {
	d := time.Until(deadline)
	if d <= 0 {
		return
	}
	fd, err := unix.TimerfdCreate(unix.CLOCK_MONOTONIC, unix.TFD_NONBLOCK|unix.TFD_CLOEXEC)
	if err != nil {
		sleepTimer(ctx, deadline)
		return
	}
	f := os.NewFile(uintptr(fd), "pacer-timerfd")
	defer f.Close()
	spec := unix.ItimerSpec{Value: unix.NsecToTimespec(d.Nanoseconds())}
	if err := unix.TimerfdSettime(fd, 0, &spec, nil); err != nil {
		sleepTimer(ctx, deadline)
		return
	}
	if ctx.Done() != nil {
		// The read ends with ctx (at once, on a deadline in the past).
		stop := context.AfterFunc(ctx, func() { f.SetReadDeadline(time.Unix(1, 0)) })
		defer stop()
	}
	var b [8]byte
	f.Read(b[:]) // the expiration count, or the deadline error when ctx ended
}
