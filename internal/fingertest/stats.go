package fingertest

import (
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net"
	"slices"
	"testing"
	"time"
)

// KSStatistic returns the two-sample Kolmogorov-Smirnov statistic D of a
// and b: the largest distance between their empirical distribution
// functions, from 0 (the same samples) to 1 (no overlap). Timing tests
// use it to check that two kinds of queries cannot be told apart by the
// time their replies take. a and b are sorted in place.
func KSStatistic(a, b []time.Duration) float64 {
	slices.Sort(a)
	slices.Sort(b)
	var i, j int
	var d float64
	for i < len(a) && j < len(b) {
		x := min(a[i], b[j])
		for i < len(a) && a[i] == x {
			i++
		}
		for j < len(b) && b[j] == x {
			j++
		}
		d = max(d, math.Abs(float64(i)/float64(len(a))-float64(j)/float64(len(b))))
	}
	return d
}

// KSCritical returns the critical value of KSStatistic for samples of n
// and m at the significance level alpha = 0.001: 1.949 * sqrt((n+m)/(n*m)).
// Two samples of one distribution give a larger D once in a thousand.
func KSCritical(n, m int) float64 {
	return 1.949 * math.Sqrt(float64(n+m)/float64(n*m))
}

// Median returns the median of d, which it leaves unchanged.
func Median(d []time.Duration) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	return s[len(s)/2]
}

// InterleavedSamples returns n reply times for each kind of query: in
// every round it asks one name of each kind (the kind's names in turn),
// the kinds in a new random order, so that whatever else loads the
// machine weighs on every kind alike. ask sends one query and returns the
// time its reply took.
func InterleavedSamples(n int, kinds [][]string, ask func(name string) time.Duration) [][]time.Duration {
	samples := make([][]time.Duration, len(kinds))
	order := make([]int, len(kinds))
	for i := range order {
		order[i] = i
	}
	for round := range n {
		rand.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
		for _, k := range order {
			names := kinds[k]
			samples[k] = append(samples[k], ask(names[round%len(names)]))
		}
	}
	return samples
}

// TimingKind is one kind of name a timing test asks for.
type TimingKind struct {
	Name  string   // what the kind is called in messages: "hidden", "root"
	Names []string // the names of this kind, asked in turn
}

// CheckSameReplyTimes fails t for each kind whose reply times a client
// could tell apart from those of the first kind. It asks every name once
// to warm up, then takes n reply times of each kind with
// InterleavedSamples, and compares each kind with the first by
// KSStatistic: D above KSCritical(n, n) rejects. A rejection is checked
// again on a second, independent set of samples, and only a kind rejected
// by both fails: by chance both reject with probability alpha squared
// (10^-6), where a real difference rejects both (a tell of one reply
// path against another gives D near 1). ask sends one query and returns
// the time its reply took (NoSuchUserTime, typically).
func CheckSameReplyTimes(t testing.TB, n int, kinds []TimingKind, ask func(name string) time.Duration) {
	t.Helper()
	for _, msg := range sameReplyTimes(n, kinds, ask, t.Logf) {
		t.Errorf("%s", msg)
	}
}

// sameReplyTimes is CheckSameReplyTimes without t: it returns one message
// for each kind told apart and reports its measurements to logf.
func sameReplyTimes(n int, kinds []TimingKind, ask func(name string) time.Duration, logf func(format string, args ...any)) []string {
	for _, k := range kinds {
		for _, name := range k.Names {
			ask(name) // warm up
		}
	}
	crit := KSCritical(n, n)
	suspects := kinds[1:]
	var failures []string
	for try := 1; try <= 2 && len(suspects) > 0; try++ {
		set := append([]TimingKind{kinds[0]}, suspects...)
		names := make([][]string, len(set))
		for i, k := range set {
			names[i] = k.Names
		}
		samples := InterleavedSamples(n, names, ask)
		first := samples[0]
		suspects = nil
		for k := 1; k < len(set); k++ {
			d := KSStatistic(slices.Clone(samples[k]), slices.Clone(first))
			logf("%s against %s (sample %d): D = %.3f (critical %.3f); medians %v and %v",
				set[k].Name, set[0].Name, try, d, crit, Median(samples[k]), Median(first))
			if d <= crit {
				continue
			}
			if try == 1 {
				suspects = append(suspects, set[k])
				continue
			}
			failures = append(failures, fmt.Sprintf("%s logins and %s logins are told apart by their reply times: Kolmogorov-Smirnov D = %.3f > %.3f (n = %d each) in two independent samples; medians %v and %v",
				set[k].Name, set[0].Name, d, crit, n, Median(samples[k]), Median(first)))
		}
	}
	return failures
}

// NoSuchUserTime asks the finger server at addr for name, over a new TCP
// connection, and returns the time from sending the query to the end of
// the reply. It fails t unless the reply is exactly
// "finger: NAME: no such user.\r\n" and comes within 10 seconds.
func NoSuchUserTime(t testing.TB, addr, name string) time.Duration {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	start := time.Now()
	if _, err := io.WriteString(c, name+"\r\n"); err != nil {
		t.Fatal(err)
	}
	reply, err := io.ReadAll(c)
	d := time.Since(start)
	if want := "finger: " + name + ": no such user.\r\n"; err != nil || string(reply) != want {
		t.Fatalf("%s: reply %q, %v; want %q", name, reply, err, want)
	}
	return d
}
