package hostusers

import (
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/openfinger/finger/internal/config"
	"github.com/openfinger/finger/internal/fingertest"
)

var timingSamples = flag.Int("timing.samples", 500, "queries per kind of name in TestNoEnumerationByTiming (5000 for a thorough run)")

// TestNoEnumerationByTiming asks, over TCP, for hidden users (a
// ~/.nofinger), root, system accounts and logins that exist nowhere, all
// answered "no such user.", and checks that a client cannot tell them
// apart by the time the reply takes: the distributions of reply times of
// each kind and of unknown logins must be the same by a two-sample
// Kolmogorov-Smirnov test.
//
// A login in the passwd file is refused at once and an unknown one is
// first asked of the name service (getpwnam_r through nsswitch.conf):
// without the stand-in lookup the Responder makes for a known login it
// answers as unknown (userinfo.UnknownLookups) and the floor on such
// replies, about 80 against 190 us here, D close to 1. Queries of the
// four kinds are interleaved in a random order in every round, so that
// the machine's load, which other tests share, weighs on each kind alike. Each comparison fails at D above the
// critical value for alpha = 0.001 (c = 1.949; 0.123 with 500 samples a
// kind): three comparisons make a false alarm on identical distributions
// about 1 in 330, while the difference those two remove gives D near 1.
// go test -run TestNoEnumerationByTiming -timing.samples=5000 for a
// thorough run.
func TestNoEnumerationByTiming(t *testing.T) {
	if testing.Short() {
		t.Skip("timing test; not with -short")
	}
	if raceEnabled {
		// The race detector slows the Go code between the lookups several
		// times over, not the name service: the timing would be that of
		// the instrumentation. .ci/run runs this test again without it;
		// cmd/fingerd's TestNoEnumerationByTiming times a daemon built
		// without it in either case.
		t.Skip("timing test; not with -race (run by .ci/run without it)")
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

	// The warm-up asks parse the passwd file, see the homes' .nofinger
	// and load the name service's libraries.
	fingertest.CheckSameReplyTimes(t, *timingSamples, []fingertest.TimingKind{
		{Name: "unknown", Names: []string{"hu_nobody1", "hu_nobody2", "hu_nobody3", "hu_nobody4"}},
		{Name: "hidden", Names: hidden},
		{Name: "root", Names: []string{"root"}},
		{Name: "system", Names: []string{"daemon", "hu_sys"}},
	}, func(name string) time.Duration { return fingertest.NoSuchUserTime(t, srv.Addr, name) })
}
