package store

import (
	"context"
	"sync"
)

// Announcer holds the channels handed out by a driver's Watch and tells
// them of writes; drivers implement Watcher with it. Its zero value is
// ready to use, and it is safe for concurrent use.
type Announcer struct {
	mu     sync.Mutex
	chans  map[chan struct{}]struct{}
	closed bool
}

// Watch returns a channel that receives a value after each Announce
// (announcements that come while one is pending merge into it). The
// channel is closed when ctx ends or Close is called; after Close, Watch
// returns a closed channel.
func (a *Announcer) Watch(ctx context.Context) <-chan struct{} {
	ch := make(chan struct{}, 1)
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed {
		close(ch)
		return ch
	}
	if a.chans == nil {
		a.chans = make(map[chan struct{}]struct{})
	}
	a.chans[ch] = struct{}{}
	context.AfterFunc(ctx, func() {
		a.mu.Lock()
		defer a.mu.Unlock()
		if _, ok := a.chans[ch]; ok {
			delete(a.chans, ch)
			close(ch)
		}
	})
	return ch
}

// Announce tells every channel that the store may have changed. It does
// not block.
func (a *Announcer) Announce() {
	a.mu.Lock()
	defer a.mu.Unlock()
	for ch := range a.chans {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

// Close closes every channel, and those of later Watch calls.
func (a *Announcer) Close() {
	a.mu.Lock()
	defer a.mu.Unlock()
	for ch := range a.chans {
		close(ch)
	}
	a.chans, a.closed = nil, true
}
