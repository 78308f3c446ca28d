package userinfo

import (
	"context"
	"sync"
	"time"
)

// DefaultUnknownReplyFloor is the least time a reply saying that a name
// is unknown takes when Policy.UnknownReplyFloor is 0.
const DefaultUnknownReplyFloor = 2 * time.Millisecond

// Bounds of the pacer.
const (
	// paceWindow is how long a slow answer keeps raising the floor: the
	// floor is the slowest answer (per name) of the current window and
	// the one before.
	paceWindow = 10 * time.Second
	// maxPace caps the floor: past it, answers are not held back further.
	maxPace = 5 * time.Second
)

// pacer keeps the replies that say a name is unknown from telling, by
// their timing, why. Hidden users, root, system accounts and logins that
// exist nowhere all get the same line, but a login in the passwd file is
// refused at once while an unknown one is first asked of the name
// service: a client timing the replies could list the hidden, root and
// system logins. The Responder first makes the work alike (a source that
// implements UnknownLookups spends, on a login it knows but that is
// answered as unknown, the lookup an unknown login costs); what is left
// (a few microseconds, the scheduler's state after the lookup) the pacer
// hides behind a floor: a reply with an unknown name is not written before
// the floor has passed since the query began, per name asked. The floor is
// the configured minimum, raised to the slowest such answer (per name)
// seen in the last 10 to 20 seconds, so that a slow name service or file
// system delays every unknown answer alike rather than marking the slow
// names.
//
// The wait happens on the goroutine already serving the connection, with
// one timer; it ends early when the query's context does.
type pacer struct {
	mu     sync.Mutex
	window int64         // index of the current window
	cur    time.Duration // slowest answer per name in the current window
	prev   time.Duration // and in the window before
}

// roll moves the windows forward to the one holding now; p.mu is held.
func (p *pacer) roll(now time.Time) {
	w := now.UnixNano() / int64(paceWindow)
	switch {
	case w == p.window:
	case w == p.window+1:
		p.window, p.prev, p.cur = w, p.cur, 0
	default:
		p.window, p.prev, p.cur = w, 0, 0
	}
}

// observe records that an answer took d per name, and returns the floor
// per name that applies to it: at least least.
func (p *pacer) observe(now time.Time, d, least time.Duration) time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.roll(now)
	p.cur = max(p.cur, d)
	return min(max(least, p.cur, p.prev), maxPace)
}

// wait holds the reply of a query that began at start, asked n names and
// said at least one is unknown, until the floor has passed; least is the
// configured minimum per name, and below zero switches pacing off.
func (p *pacer) wait(ctx context.Context, start time.Time, n int, least time.Duration) {
	if least < 0 || n <= 0 {
		return
	}
	now := time.Now()
	elapsed := now.Sub(start)
	floor := p.observe(now, elapsed/time.Duration(n), least)
	d := floor*time.Duration(n) - elapsed
	if d <= 0 {
		return
	}
	paceSleep(ctx, now.Add(d))
}

// paceSleep is how the pacer waits: sleepUntil, which wakes at the
// deadline to the microsecond where the system allows.
var paceSleep = sleepUntil

// sleepTimer waits until deadline or the end of ctx with a runtime timer.
func sleepTimer(ctx context.Context, deadline time.Time) {
	t := time.NewTimer(time.Until(deadline))
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}
