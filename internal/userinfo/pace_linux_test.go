package userinfo

import (
	"context"
	"testing"
	"time"
)

// TestSleepUntil: the pacer's wait on a timerfd ends at its deadline, not
// before, and at once when its context ends.
func TestSleepUntil(t *testing.T) {
	for _, d := range []time.Duration{-time.Millisecond, 0, 1500 * time.Microsecond, 20 * time.Millisecond} {
		deadline := time.Now().Add(d)
		sleepUntil(context.Background(), deadline)
		if now := time.Now(); now.Before(deadline) {
			t.Errorf("sleepUntil(now + %v) returned %v before its deadline", d, deadline.Sub(now))
		}
	}

	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(20*time.Millisecond, cancel)
	start := time.Now()
	sleepUntil(ctx, start.Add(10*time.Second))
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("sleepUntil with its context cancelled after 20ms returned after %v, want at once", took)
	}

	done, stop := context.WithCancel(context.Background())
	stop()
	start = time.Now()
	sleepUntil(done, start.Add(10*time.Second))
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("sleepUntil with a context already done returned after %v, want at once", took)
	}
}
