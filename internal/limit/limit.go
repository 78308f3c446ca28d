// Package limit rate-limits finger clients by address with token buckets
// (golang.org/x/time/rate), in a table of bounded size.
//
// A Limiter plugs into finger.Server through its Admit hook: a client
// over its rate gets one line, "finger: rate limit exceeded", and the
// connection is closed before its query is read.
package limit

import (
	"errors"
	"net"
	"net/netip"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// ErrRateLimited is returned by Admit for a client over its rate. Its text
// is what the client is told.
var ErrRateLimited = errors.New("finger: rate limit exceeded")

// DefaultMaxEntries is the table size used when Limiter.MaxEntries is 0.
const DefaultMaxEntries = 65536

// A Limiter holds one token bucket per client address. IPv4 addresses have
// a bucket each; IPv6 addresses share one per /64, the block one
// subscriber usually holds. Buckets that have refilled completely carry
// no state and are dropped when the table is full; if it is still full,
// arbitrary buckets are dropped (a dropped client starts again with a full
// bucket, so the table size bounds memory, never who is served).
//
// The zero Limiter does not limit. Fields must not change after first use.
type Limiter struct {
	// Rate is the sustained rate allowed per address, in queries per
	// second; 0 or less means no limit.
	Rate float64
	// Burst is the bucket size: queries allowed at once after a quiet
	// period. Less than 1 means 1.
	Burst int
	// MaxEntries bounds the table; 0 means DefaultMaxEntries.
	MaxEntries int
	// OnLimit, if set, is called for each refused client.
	OnLimit func(addr netip.Addr)

	// now replaces time.Now in tests.
	now func() time.Time

	mu      sync.Mutex
	buckets map[netip.Addr]*rate.Limiter
}

// Key returns the table key of a client address: the address itself for
// IPv4 (IPv4-mapped IPv6 included), the /64 prefix for IPv6.
func Key(a netip.Addr) netip.Addr {
	a = a.Unmap().WithZone("")
	if a.Is6() {
		p, _ := a.Prefix(64)
		return p.Addr()
	}
	return a
}

func (l *Limiter) clock() time.Time {
	if l.now != nil {
		return l.now()
	}
	return time.Now()
}

func (l *Limiter) burst() int {
	if l.Burst < 1 {
		return 1
	}
	return l.Burst
}

// Allow reports whether a query from addr may be served now, and takes a
// token if so.
func (l *Limiter) Allow(addr netip.Addr) bool {
	if l == nil || l.Rate <= 0 {
		return true
	}
	k := Key(addr)
	now := l.clock()
	l.mu.Lock()
	b, ok := l.buckets[k]
	if !ok {
		if l.buckets == nil {
			l.buckets = make(map[netip.Addr]*rate.Limiter)
		}
		l.makeRoom(now)
		b = rate.NewLimiter(rate.Limit(l.Rate), l.burst())
		l.buckets[k] = b
	}
	ok = b.AllowN(now, 1)
	l.mu.Unlock()
	if !ok && l.OnLimit != nil {
		l.OnLimit(k)
	}
	return ok
}

// makeRoom drops buckets when the table is full. l.mu is held.
func (l *Limiter) makeRoom(now time.Time) {
	max := l.MaxEntries
	if max <= 0 {
		max = DefaultMaxEntries
	}
	if len(l.buckets) < max {
		return
	}
	full := float64(l.burst())
	for k, b := range l.buckets {
		if b.TokensAt(now) >= full {
			delete(l.buckets, k)
		}
	}
	// Still full: every client is active. Drop a tenth, arbitrarily (map
	// order is random), so the scan above is not repeated per insert.
	for k := range l.buckets {
		if len(l.buckets) < max-max/10 {
			break
		}
		delete(l.buckets, k)
	}
}

// Len returns the number of buckets held.
func (l *Limiter) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.buckets)
}

// Admit is a finger.Server Admit hook: it returns ErrRateLimited when the
// client is over its rate. Addresses that are not IP addresses (a Unix
// socket, a pipe in inetd mode) are not limited.
func (l *Limiter) Admit(remote net.Addr) error {
	a, ok := AddrOf(remote)
	if !ok {
		return nil
	}
	if !l.Allow(a) {
		return ErrRateLimited
	}
	return nil
}

// AddrOf returns the IP address of a network address, if it has one.
func AddrOf(remote net.Addr) (netip.Addr, bool) {
	switch a := remote.(type) {
	case nil:
		return netip.Addr{}, false
	case *net.TCPAddr:
		ip, ok := netip.AddrFromSlice(a.IP)
		return ip.Unmap(), ok
	case *net.UDPAddr:
		ip, ok := netip.AddrFromSlice(a.IP)
		return ip.Unmap(), ok
	}
	ap, err := netip.ParseAddrPort(remote.String())
	if err != nil {
		return netip.Addr{}, false
	}
	return ap.Addr().Unmap(), true
}
