package userinfo_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/openfinger/finger/internal/userinfo"
	"github.com/openfinger/finger/internal/userinfo/userinfotest"
	"github.com/openfinger/finger/internal/userinfo/virtual"
)

// cached puts the caching wrappers in front of the sources of rs.
func cached(rs *userinfo.Responder) *userinfo.Responder {
	rs.Sessions = &userinfo.CachedSessions{Source: rs.Sessions}
	rs.LastLogins = &userinfo.CachedLastLogins{Source: rs.LastLogins}
	rs.Mailboxes = &userinfo.CachedMailboxes{Source: rs.Mailboxes}
	rs.Files = &userinfo.CachedFiles{Source: rs.Files}
	return rs
}

// With caching on, a hidden user's reply is still byte-for-byte an
// unknown user's, on the first query and on the ones answered from the
// caches, and the caches change nothing in the replies.
func TestCachedHiddenIsUnknown(t *testing.T) {
	plain, _ := newLab()
	withHidden, _ := newLab()
	withHidden = cached(withHidden)
	without, src := newLab()
	without = cached(without)
	if !src.Remove("fgtest_hidden") {
		t.Fatal("fixture has no fgtest_hidden")
	}
	queries := []string{"fgtest_hidden", "Hidden", "hidden", "Person", "fgtest_alice fgtest_hidden", "", "/W", "fgtest_alice", "élodie"}
	for round := range 3 {
		for _, q := range queries {
			a, b, p := ask(t, withHidden, q), ask(t, without, q), ask(t, plain, q)
			if a != b {
				t.Errorf("round %d, query %q: hidden user reply\n%q\ndiffers from unknown user reply\n%q", round, q, a, b)
			}
			if a != p {
				t.Errorf("round %d, query %q: cached reply\n%q\ndiffers from uncached reply\n%q", round, q, a, p)
			}
			if strings.Contains(a, "Secret") || strings.Contains(a, "tty8") {
				t.Errorf("round %d, query %q: reply leaks the hidden user: %q", round, q, a)
			}
		}
	}
	golden(t, "hidden-user", ask(t, withHidden, "fgtest_hidden"))
}

// The wrappers pass the suites their sources pass.
func TestCachedConformance(t *testing.T) {
	alice := userinfo.Account{Login: "alice", UID: 1001, Name: "Alice Liddell", Home: "/home/alice"}
	hid := userinfo.Account{Login: "hid", UID: 1004, Name: "Hidden Person", Home: "/home/hid"}
	bob := userinfo.Account{Login: "bob", UID: 1002, Home: "/home/bob"}
	last := userinfo.LastLogin{Time: time.Date(2026, 11, 23, 9, 5, 0, 0, time.UTC), TTY: "pts/2", Host: "example.org"}
	plan := map[string][]byte{".plan": []byte("Going down the rabbit hole.\n"), ".pgpkey": {}}
	src := virtual.New(
		virtual.User{Account: alice, Sessions: []userinfo.Session{{TTY: "tty5"}}, LastLogin: last, Files: plan},
		virtual.User{Account: bob},
		virtual.User{Account: hid, Hidden: true, Sessions: []userinfo.Session{{TTY: "tty8"}}},
	)
	sessions := &userinfo.CachedSessions{Source: src}
	files := &userinfo.CachedFiles{Source: src}
	lastLogins := &userinfo.CachedLastLogins{Source: src}
	for round := range 2 { // the second round is answered from the caches
		t.Run(fmt.Sprint(round), func(t *testing.T) {
			userinfotest.TestSessions(t, sessions, []string{"alice", "hid"})
			userinfotest.TestFiles(t, files,
				userinfotest.UserFiles{Account: &alice, Files: plan},
				userinfotest.UserFiles{Account: &bob},
				userinfotest.UserFiles{Account: &hid, Hidden: true},
			)
			userinfotest.TestLastLogins(t, lastLogins,
				map[*userinfo.Account]userinfo.LastLogin{&alice: last},
				[]*userinfo.Account{&bob, {Login: "nobody-here"}})
		})
	}
}
