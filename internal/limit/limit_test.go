package limit

import (
	"errors"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"
)

type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time          { return c.t }
func (c *fakeClock) advance(d time.Duration) { c.t = c.t.Add(d) }

func TestAllowBurstThenRate(t *testing.T) {
	clk := &fakeClock{t: time.Unix(1e9, 0)}
	l := &Limiter{Rate: 2, Burst: 3, now: clk.now}
	a := netip.MustParseAddr("192.0.2.1")
	for i := range 3 {
		if !l.Allow(a) {
			t.Fatalf("Allow #%d within burst = false, want true", i)
		}
	}
	if l.Allow(a) {
		t.Fatal("Allow after burst = true, want false")
	}
	// Another address has its own bucket.
	if !l.Allow(netip.MustParseAddr("192.0.2.2")) {
		t.Fatal("Allow(other address) = false, want true")
	}
	clk.advance(500 * time.Millisecond) // one token at 2/s
	if !l.Allow(a) {
		t.Fatal("Allow after refill = false, want true")
	}
	if l.Allow(a) {
		t.Fatal("second Allow after one token = true, want false")
	}
}

func TestZeroLimiterAllows(t *testing.T) {
	var l Limiter
	for range 1000 {
		if !l.Allow(netip.MustParseAddr("192.0.2.1")) {
			t.Fatal("zero Limiter refused")
		}
	}
	var nilL *Limiter
	if !nilL.Allow(netip.MustParseAddr("192.0.2.1")) {
		t.Fatal("nil Limiter refused")
	}
}

func TestKey(t *testing.T) {
	tests := []struct{ in, want string }{
		{"192.0.2.1", "192.0.2.1"},
		{"::ffff:192.0.2.1", "192.0.2.1"},
		{"2001:db8:1:2:3:4:5:6", "2001:db8:1:2::"},
		{"2001:db8:1:2::9", "2001:db8:1:2::"},
		{"::1", "::"},
		{"fe80::1%eth0", "fe80::"},
	}
	for _, tt := range tests {
		if got := Key(netip.MustParseAddr(tt.in)).String(); got != tt.want {
			t.Errorf("Key(%s) = %s, want %s", tt.in, got, tt.want)
		}
	}
}

func TestIPv6SharesBucketPer64(t *testing.T) {
	clk := &fakeClock{t: time.Unix(1e9, 0)}
	l := &Limiter{Rate: 1, Burst: 1, now: clk.now}
	if !l.Allow(netip.MustParseAddr("2001:db8::1")) {
		t.Fatal("first = false")
	}
	if l.Allow(netip.MustParseAddr("2001:db8::2")) {
		t.Fatal("same /64 = true, want false")
	}
	if !l.Allow(netip.MustParseAddr("2001:db8:0:1::1")) {
		t.Fatal("other /64 = false, want true")
	}
}

func TestTableBounded(t *testing.T) {
	clk := &fakeClock{t: time.Unix(1e9, 0)}
	l := &Limiter{Rate: 1, Burst: 2, MaxEntries: 100, now: clk.now}
	for i := range 1000 {
		a := netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)})
		l.Allow(a)
		if n := l.Len(); n > 100 {
			t.Fatalf("after %d addresses the table holds %d, want <= 100", i+1, n)
		}
	}
	// Idle, refilled buckets are dropped first: after a quiet period a
	// new address finds room without losing an active one.
	clk.advance(time.Hour)
	busy := netip.MustParseAddr("192.0.2.9")
	l.Allow(busy)
	l.Allow(busy)
	if l.Allow(busy) {
		t.Fatal("busy address not limited")
	}
	if n := l.Len(); n > 100 {
		t.Fatalf("table holds %d, want <= 100", n)
	}
}

func TestAdmit(t *testing.T) {
	ipAddrs := []net.Addr{
		&net.TCPAddr{IP: net.ParseIP("127.0.0.2"), Port: 4000},
		&net.TCPAddr{IP: net.ParseIP("2001:db8::1"), Port: 4000},
		&net.TCPAddr{IP: net.ParseIP("::ffff:192.0.2.1"), Port: 4000},
		&net.UDPAddr{IP: net.ParseIP("2001:db8::2"), Port: 4000},
		&net.UDPAddr{IP: net.ParseIP("192.0.2.2"), Port: 4000},
		textAddr("[2001:db8::3]:79"),
		textAddr("192.0.2.3:79"),
	}
	for _, a := range ipAddrs {
		var hits int
		var mu sync.Mutex
		l := &Limiter{Rate: 0.001, Burst: 1, OnLimit: func(netip.Addr) { mu.Lock(); hits++; mu.Unlock() }}
		if err := l.Admit(a); err != nil {
			t.Errorf("Admit(%v) first = %v, want nil", a, err)
		}
		if err := l.Admit(a); !errors.Is(err, ErrRateLimited) {
			t.Errorf("Admit(%v) second = %v, want ErrRateLimited", a, err)
		}
		if hits != 1 {
			t.Errorf("Admit(%v): OnLimit called %d times, want 1", a, hits)
		}
	}
	l := &Limiter{Rate: 0.001, Burst: 1}
	for _, a := range []net.Addr{&net.UnixAddr{Name: "@x", Net: "unix"}, nil, textAddr("pipe")} {
		for range 3 {
			if err := l.Admit(a); err != nil {
				t.Fatalf("Admit(%v) = %v, want nil (not an IP address)", a, err)
			}
		}
	}
	if ErrRateLimited.Error() != "finger: rate limit exceeded" {
		t.Fatalf("ErrRateLimited = %q", ErrRateLimited)
	}
}

// textAddr is a net.Addr known only by its text.
type textAddr string

func (a textAddr) Network() string { return "test" }
func (a textAddr) String() string  { return string(a) }

func TestConcurrent(t *testing.T) {
	l := &Limiter{Rate: 1000, Burst: 10, MaxEntries: 50}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 500 {
				l.Allow(netip.AddrFrom4([4]byte{10, byte(g), 0, byte(i)}))
			}
		}()
	}
	wg.Wait()
	if n := l.Len(); n > 50 {
		t.Fatalf("table holds %d, want <= 50", n)
	}
}
