package userinfo_test

import (
	"github.com/openfinger/finger/internal/userinfo"
	"strings"
	"testing"
)

func TestGolden(t *testing.T) {
	tests := []struct {
		name  string
		query string
		edit  func(r *userinfo.Responder)
	}{
		{name: "short-list", query: ""},
		{name: "long-alice", query: "fgtest_alice"},
		{name: "hostile-plan", query: "fgtest_eve"},
		{name: "utf8-user", query: "fgtest_bob"},
		{name: "unknown-user", query: "nosuchuser"},
		{name: "list-denied", query: "", edit: func(c *userinfo.Responder) { c.Policy.AllowList = false }},
		{name: "forward-denied", query: "fgtest_alice@example.org"},
		{name: "big-plan", query: "fgtest_big", edit: func(c *userinfo.Responder) { c.Policy.MaxFileBytes = 1000 }},
		{name: "verbose-list", query: "/W"},
		{name: "several-names", query: "fgtest_alice nosuchuser fgtest_bob Hidden"},
		{name: "last-login", query: "élodie"},
		{name: "no-files", query: "fgtest_alice", edit: func(c *userinfo.Responder) { c.Policy.UserFiles = false }},
		{name: "privacy", query: "fgtest_alice élodie", edit: func(c *userinfo.Responder) {
			p := &c.Policy
			p.HideHome, p.HideMail, p.HideRemoteHost, p.HideLastLogin, p.HidePhones = true, true, true, true, true
		}},
		{name: "privacy-list", query: "", edit: func(c *userinfo.Responder) { c.Policy.HideRemoteHost = true }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rs, _ := newLab()
			if tt.edit != nil {
				tt.edit(rs)
			}
			got := ask(t, rs, tt.query)
			golden(t, tt.name, got)
		})
	}
}

// The reply for a hidden user is byte-for-byte the reply for a user that
// does not exist, whether asked by login or by real name, alone or with
// others.
func TestHiddenIsUnknown(t *testing.T) {
	withHidden, _ := newLab()
	without, src := newLab()
	if !src.Remove("fgtest_hidden") {
		t.Fatal("fixture has no fgtest_hidden")
	}
	for _, q := range []string{"fgtest_hidden", "Hidden", "hidden", "Person", "fgtest_alice fgtest_hidden", "", "/W"} {
		a, b := ask(t, withHidden, q), ask(t, without, q)
		if a != b {
			t.Errorf("query %q: hidden user reply\n%q\ndiffers from unknown user reply\n%q", q, a, b)
		}
		if strings.Contains(a, "Secret") || strings.Contains(a, "tty8") {
			t.Errorf("query %q: reply leaks the hidden user: %q", q, a)
		}
	}
	golden(t, "hidden-user", ask(t, withHidden, "fgtest_hidden"))
}
