package hostusers

import (
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/openfinger/finger/internal/config"
	"github.com/openfinger/finger/internal/fingertest"
)

var timingSamples = flag.Int("timing.samples", 500, "queries per kind of name in TestNoEnumerationByTiming (5000 for a thorough run)")

// ksStatistic returns the two-sample Kolmogorov-Smirnov statistic D of a
// and b: the largest distance between their empirical distribution
// functions. a and b are sorted in place.
func ksStatistic(a, b []time.Duration) float64 {
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

// ksCritical returns the critical value of D for samples of n and m at the
// significance level whose c(alpha) is c (1.949 for alpha = 0.001):
// c * sqrt((n+m)/(n*m)).
func ksCritical(n, m int, c float64) float64 {
	return c * math.Sqrt(float64(n+m)/float64(n*m))
}

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
		{ms(1, 2, 3, 4), ms(3, 4, 5, 6), 0.5},
		{ms(1, 1, 2, 2), ms(1, 2, 2, 2), 0.25},
	}
	for _, tt := range tests {
		if got := ksStatistic(slices.Clone(tt.a), slices.Clone(tt.b)); math.Abs(got-tt.want) > 1e-9 {
			t.Errorf("ksStatistic(%v, %v) = %v, want %v", tt.a, tt.b, got, tt.want)
		}
	}
}

// TestNoEnumerationByTiming asks, over TCP, for hidden users (a
// ~/.nofinger), root, system accounts and logins that exist nowhere, all
// answered "no such user.", and checks that a client cannot tell them
// apart by the time the reply takes: the distributions of reply times of
// each kind and of unknown logins must be the same by a two-sample
// Kolmogorov-Smirnov test.
//
// Without the floor on such replies, a login in the passwd file is
// refused at once and an unknown one is first asked of the name service
// (getpwnam_r through nsswitch.conf): about 160 against 285 us here, D
// close to 1. Queries of the four kinds are interleaved in a random order
// in every round, so that the machine's load, which other tests share,
// weighs on each kind alike. Each comparison fails at D above the
// critical value for alpha = 0.001 (c = 1.949; 0.123 with 500 samples a
// kind): three comparisons make a false alarm on identical distributions
// about 1 in 330, while the difference the floor removes gives D near 1.
// go test -run TestNoEnumerationByTiming -timing.samples=5000 for a
// thorough run.
func TestNoEnumerationByTiming(t *testing.T) {
	if testing.Short() {
		t.Skip("timing test; not with -short")
	}
	dir := t.TempDir()
	os.Chmod(dir, 0o755)
	var pw strings.Builder
	pw.WriteString("root:x:0:0:root:/root:/bin/bash\n")
	pw.WriteString("daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n")
	pw.WriteString("hu_sys:x:500:500:A Service:/var/lib/hu_sys:/usr/sbin/nologin\n")
	hidden := []string{"hu_hid1", "hu_hid2", "hu_hid3", "hu_hid4"}
	for i, login := range hidden {
		home := filepath.Join(dir, login)
		if err := os.Mkdir(home, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(home, ".nofinger"), nil, 0o644); err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&pw, "%s:x:%d:%d:Hidden User:%s:/bin/sh\n", login, 2001+i, 2001+i, home)
	}
	// Ordinary users that are found, so that the real-name search every
	// negative answer makes has accounts to go through.
	for i := range 50 {
		fmt.Fprintf(&pw, "hu_user%d:x:%d:%d:Some Body%d:%s/nohome:/bin/sh\n", i, 3000+i, 3000+i, i, dir)
	}
	passwd := filepath.Join(dir, "passwd")
	if err := os.WriteFile(passwd, []byte(pw.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	o := DefaultOptions()
	o.Sources = config.Sources{Passwd: passwd, Sessions: config.SessionsNone,
		NameServiceTimeout: config.Duration(time.Second), NameServiceMaxLookups: 16}
	o.Policy.MinUID = 1000
	r, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	srv := fingertest.NewUnstartedServer(t, r)
	srv.Config.Logger = slog.New(slog.DiscardHandler)
	srv.Start()

	kinds := []struct {
		name  string
		names []string
	}{
		{"unknown", []string{"hu_nobody1", "hu_nobody2", "hu_nobody3", "hu_nobody4"}},
		{"hidden", hidden},
		{"root", []string{"root"}},
		{"system", []string{"daemon", "hu_sys"}},
	}
	ask := func(name string) time.Duration {
		c, err := net.Dial("tcp", srv.Addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
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
	// Warm up: the passwd file parsed, the homes' .nofinger seen, the
	// name service's libraries loaded.
	for _, k := range kinds {
		for _, n := range k.names {
			ask(n)
		}
	}
	n := *timingSamples
	samples := make([][]time.Duration, len(kinds))
	order := make([]int, len(kinds))
	for i := range order {
		order[i] = i
	}
	for round := range n {
		rand.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
		for _, k := range order {
			names := kinds[k].names
			samples[k] = append(samples[k], ask(names[round%len(names)]))
		}
	}
	crit := ksCritical(n, n, 1.949)
	unknown := samples[0]
	for k := 1; k < len(kinds); k++ {
		d := ksStatistic(slices.Clone(samples[k]), slices.Clone(unknown))
		t.Logf("%s against unknown: D = %.3f (critical %.3f); medians %v and %v",
			kinds[k].name, d, crit, median(samples[k]), median(unknown))
		if d > crit {
			t.Errorf("%s logins and unknown logins are told apart by their reply times: Kolmogorov-Smirnov D = %.3f > %.3f (n = %d each); medians %v and %v",
				kinds[k].name, d, crit, n, median(samples[k]), median(unknown))
		}
	}
}

func median(d []time.Duration) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[len(s)/2]
}
