package fingertest

import (
	"math"
	"math/rand/v2"
	"slices"
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
