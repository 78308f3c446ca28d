package fingertest

import (
	"fmt"
	"math"
	"slices"
	"testing"
	"time"
)

func TestKSStatistic(t *testing.T) {
	ms := func(v ...int) []time.Duration {
		out := make([]time.Duration, len(v))
		for i, x := range v {
			out[i] = time.Duration(x) * time.Millisecond
		}
		return out
	}
	tests := []struct {
		a, b []time.Duration
		want float64
	}{
		{ms(1, 2, 3, 4), ms(1, 2, 3, 4), 0},
		{ms(1, 2, 3, 4), ms(5, 6, 7, 8), 1},
		{ms(5, 6, 7, 8), ms(1, 2, 3, 4), 1},
		{ms(1, 2, 3, 4), ms(3, 4, 5, 6), 0.5},
		{ms(1, 1, 2, 2), ms(1, 2, 2, 2), 0.25},
		{ms(4, 3, 2, 1), ms(1, 2), 0.5},
	}
	for _, tt := range tests {
		if got := KSStatistic(slices.Clone(tt.a), slices.Clone(tt.b)); math.Abs(got-tt.want) > 1e-9 {
			t.Errorf("KSStatistic(%v, %v) = %v, want %v", tt.a, tt.b, got, tt.want)
		}
	}
}

func TestKSCritical(t *testing.T) {
	tests := []struct {
		n, m int
		want float64
	}{
		{500, 500, 0.1233},
		{5000, 5000, 0.0390},
	}
	for _, tt := range tests {
		if got := KSCritical(tt.n, tt.m); math.Abs(got-tt.want) > 1e-4 {
			t.Errorf("KSCritical(%d, %d) = %.4f, want %.4f", tt.n, tt.m, got, tt.want)
		}
	}
}

func TestMedian(t *testing.T) {
	d := []time.Duration{5, 1, 3}
	if got := Median(d); got != 3 {
		t.Errorf("Median(%v) = %v, want 3", d, got)
	}
	if !slices.Equal(d, []time.Duration{5, 1, 3}) {
		t.Errorf("Median changed its argument: %v", d)
	}
}

func TestInterleavedSamples(t *testing.T) {
	var asked []string
	samples := InterleavedSamples(3, [][]string{{"a1", "a2"}, {"b"}}, func(name string) time.Duration {
		asked = append(asked, name)
		return time.Duration(len(name))
	})
	if len(samples) != 2 || len(samples[0]) != 3 || len(samples[1]) != 3 {
		t.Fatalf("InterleavedSamples gave %v, want 3 samples of each of 2 kinds", samples)
	}
	if !slices.Equal(samples[0], []time.Duration{2, 2, 2}) || !slices.Equal(samples[1], []time.Duration{1, 1, 1}) {
		t.Errorf("samples = %v, want each kind's own times", samples)
	}
	for round := range 3 {
		got := asked[2*round : 2*round+2]
		a := []string{"a1", "a2", "a1"}[round]
		if !slices.Contains(got, a) || !slices.Contains(got, "b") {
			t.Errorf("round %d asked %q, want %s and b", round, got, a)
		}
	}
}

// failureTB records the failures of CheckSameReplyTimes.
type failureTB struct {
	testing.TB
	errors []string
}

func (f *failureTB) Helper()             {}
func (f *failureTB) Logf(string, ...any) {}
func (f *failureTB) Errorf(format string, args ...any) {
	f.errors = append(f.errors, fmt.Sprintf(format, args...))
}

func TestCheckSameReplyTimes(t *testing.T) {
	kinds := []TimingKind{{Name: "unknown", Names: []string{"u1", "u2"}}, {Name: "hidden", Names: []string{"h"}}}
	tests := []struct {
		name  string
		ask   func(string) time.Duration
		fails bool
	}{
		{"alike", func(string) time.Duration { return time.Millisecond }, false},
		{"apart", func(name string) time.Duration { return time.Duration(len(name)) * time.Millisecond }, true},
	}
	// Apart in the first set of samples only (3 warm-up queries, then 100
	// of each kind), as a burst of other work can make one: the second
	// set decides.
	calls := 0
	tests = append(tests, struct {
		name  string
		ask   func(string) time.Duration
		fails bool
	}{"apart in one sample only", func(name string) time.Duration {
		calls++
		if calls <= 3+200 && name == "h" {
			return 2 * time.Millisecond
		}
		return time.Millisecond
	}, false})
	for _, tt := range tests {
		var f failureTB
		CheckSameReplyTimes(&f, 100, kinds, tt.ask)
		if got := len(f.errors) > 0; got != tt.fails {
			t.Errorf("CheckSameReplyTimes with reply times %s: failed = %v (%q), want %v", tt.name, got, f.errors, tt.fails)
		}
	}
}
