package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
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
	fingertest.CheckSameReplyTimes(t, *timingSamples, []fingertest.TimingKind{
		{Name: "unknown", Names: []string{"fgtm_nobody1", "fgtm_nobody2", "fgtm_nobody3"}},
		{Name: "hidden", Names: hidden},
		{Name: "root", Names: []string{"root"}},
		{Name: "system", Names: []string{"daemon", "fgtm_sys"}},
	}, func(name string) time.Duration { return fingertest.NoSuchUserTime(t, addr, name) })
}
