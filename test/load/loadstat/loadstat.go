// Package loadstat holds what the load tools (fingerload, publishload,
// clusterload) report alike: latency percentiles and failures counted by
// kind, each kind with an example.
package loadstat

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"
	"time"
)

// Percentile returns the p quantile (0 < p <= 1) of sorted by nearest rank:
// the smallest latency that at least p of them do not exceed. It returns 0
// for no latencies.
func Percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	// The rank ceil(n p), less a rounding error of the product.
	i := int(math.Ceil(float64(len(sorted))*p-1e-9)) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}

// Failures counts failures by kind and keeps the first example of each.
// It is safe for concurrent use; the zero value is ready.
type Failures struct {
	mu sync.Mutex
	n  map[string]int
	ex map[string]string
}

// Add counts one failure of kind.
func (f *Failures) Add(kind, example string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.n == nil {
		f.n, f.ex = map[string]int{}, map[string]string{}
	}
	f.n[kind]++
	if _, ok := f.ex[kind]; !ok {
		f.ex[kind] = example
	}
}

// Kind is one kind of failure: how many, and an example.
type Kind struct {
	Name    string
	Count   int
	Example string
}

// Kinds returns the kinds counted, by name, and the total count.
func (f *Failures) Kinds() ([]Kind, int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	ks := make([]Kind, 0, len(f.n))
	total := 0
	for k, n := range f.n {
		ks = append(ks, Kind{k, n, f.ex[k]})
		total += n
	}
	slices.SortFunc(ks, func(a, b Kind) int { return strings.Compare(a.Name, b.Name) })
	return ks, total
}

// String returns "kind:count,..." by kind, or "none".
func (f *Failures) String() string {
	ks, _ := f.Kinds()
	if len(ks) == 0 {
		return "none"
	}
	parts := make([]string, len(ks))
	for i, k := range ks {
		parts[i] = fmt.Sprintf("%s:%d", k.Name, k.Count)
	}
	return strings.Join(parts, ",")
}
