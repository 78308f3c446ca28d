package main

import (
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/openfinger/finger/internal/fingertest"
)

var timingSamples = flag.Int("timing.samples", 300, "queries per kind of name in TestNoEnumerationByTiming (5000 for a thorough run)")

// TestNoEnumerationByTiming runs fingerd (as the tests start it: as root,
// it drops its privileges and its home reader looks for ~/.nofinger) and
// times, from a client, the replies for hidden users, root, system
// accounts and logins that exist nowhere: all say "no such user.", and
// their reply times must have the same distribution by a two-sample
// Kolmogorov-Smirnov test (see internal/hostusers for the reasoning on the
// threshold: D above the critical value for alpha = 0.001).
func TestNoEnumerationByTiming(t *testing.T) {
	if testing.Short() {
		t.Skip("timing test; not with -short")
	}
	f := newFixture(t, "")
	var pw strings.Builder
	pw.WriteString("root:x:0:0:root:/root:/bin/bash\n")
	pw.WriteString("daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n")
	pw.WriteString("fgtm_sys:x:500:500:A Service:/nonexistent:/usr/sbin/nologin\n")
	pw.WriteString("fgtest_alice:x:1001:1001:Alice Liddell:/nonexistent/fgtest_alice:/bin/sh\n")
	hidden := []string{"fgtm_hid1", "fgtm_hid2", "fgtm_hid3"}
	for i, login := range hidden {
		home := filepath.Join(f.dir, login)
		if err := os.Mkdir(home, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(home, ".nofinger"), nil, 0o644); err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&pw, "%s:x:%d:%d:Hidden User:%s:/bin/sh\n", login, 2101+i, 2101+i, home)
	}
	if err := os.WriteFile(filepath.Join(f.dir, "passwd"), []byte(pw.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	// The default configuration but for the query rate: every query
	// comes from 127.0.0.1.
	f.write(t, "rate = 0.0\n")
	p := startDaemon(t, "-config", f.config)
	addr := p.addrs[0]

	ask := func(name string) time.Duration {
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
	kinds := []string{"unknown", "hidden", "root", "system"}
	names := [][]string{
		{"fgtm_nobody1", "fgtm_nobody2", "fgtm_nobody3"},
		hidden,
		{"root"},
		{"daemon", "fgtm_sys"},
	}
	for _, k := range names {
		for _, n := range k {
			ask(n) // warm up
		}
	}
	n := *timingSamples
	samples := fingertest.InterleavedSamples(n, names, ask)
	crit := fingertest.KSCritical(n, n)
	for k := 1; k < len(kinds); k++ {
		d := fingertest.KSStatistic(slices.Clone(samples[k]), slices.Clone(samples[0]))
		t.Logf("%s against unknown: D = %.3f (critical %.3f); medians %v and %v",
			kinds[k], d, crit, fingertest.Median(samples[k]), fingertest.Median(samples[0]))
		if d > crit {
			t.Errorf("%s logins and unknown logins are told apart by their reply times: Kolmogorov-Smirnov D = %.3f > %.3f (n = %d each); medians %v and %v",
				kinds[k], d, crit, n, fingertest.Median(samples[k]), fingertest.Median(samples[0]))
		}
	}
}
