package loadstat

import (
	"sync"
	"testing"
	"time"
)

func TestPercentile(t *testing.T) {
	ms := func(ns ...int) []time.Duration {
		var ds []time.Duration
		for _, n := range ns {
			ds = append(ds, time.Duration(n)*time.Millisecond)
		}
		return ds
	}
	hundred := make([]int, 100)
	for i := range hundred {
		hundred[i] = i + 1
	}
	tests := []struct {
		sorted []time.Duration
		p      float64
		want   time.Duration
	}{
		{nil, 0.5, 0},
		{ms(7), 0.99, 7 * time.Millisecond},
		{ms(1, 2, 3, 4), 0.5, 2 * time.Millisecond},
		{ms(1, 2, 3, 4), 1, 4 * time.Millisecond},
		{ms(hundred...), 0.5, 50 * time.Millisecond},
		{ms(hundred...), 0.99, 99 * time.Millisecond},
		{ms(hundred...), 0.001, 1 * time.Millisecond},
		{ms(hundred[:30]...), 0.99, 30 * time.Millisecond}, // rank 29.7: the 30th
		{ms(hundred[:3]...), 0.5, 2 * time.Millisecond},    // rank 1.5: the 2nd
	}
	for _, tt := range tests {
		if got := Percentile(tt.sorted, tt.p); got != tt.want {
			t.Errorf("Percentile(%d latencies, %v) = %v, want %v", len(tt.sorted), tt.p, got, tt.want)
		}
	}
}

func TestFailures(t *testing.T) {
	var f Failures
	if got := f.String(); got != "none" {
		t.Errorf("String() of no failures = %q, want %q", got, "none")
	}
	var wg sync.WaitGroup
	for i := range 10 {
		wg.Go(func() {
			f.Add("timeout", "late")
			if i%2 == 0 {
				f.Add("empty", "nothing")
			}
		})
	}
	wg.Wait()
	if got, want := f.String(), "empty:5,timeout:10"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
	ks, total := f.Kinds()
	if total != 15 || len(ks) != 2 || ks[0] != (Kind{"empty", 5, "nothing"}) || ks[1] != (Kind{"timeout", 10, "late"}) {
		t.Errorf("Kinds() = %v, %d, want [{empty 5 nothing} {timeout 10 late}], 15", ks, total)
	}
}
