package userinfo_test

import (
	"strings"
	"testing"

	"github.com/openfinger/finger/internal/userinfo"
	"github.com/openfinger/finger/internal/userinfo/virtual"
)

// Listed users appear in {C} without a session, sorted in with the
// logged-in users, filtered like every other field.
func TestListed(t *testing.T) {
	rs, _ := newLab()
	rs.Listed = []userinfo.Account{
		{Login: "weather", Name: "Weather Service"},
		{Login: "fgtest_alice", Name: "Not Shown Twice"}, // logged in: shown from her sessions
		{Login: "aaa-news", Name: "News\x1b[2J\nPlan:", Office: "Desk 1"},
		{Login: ""}, // no login: left out
	}
	got := ask(t, rs, "")
	golden(t, "listed", got)
	if strings.Contains(got, "Not Shown Twice") || strings.Contains(got, "\x1b") {
		t.Errorf("{C} = %q", got)
	}
	// /W gives the long forms of the logged-in users only.
	without, _ := newLab()
	if a, b := ask(t, rs, "/W"), ask(t, without, "/W"); a != b {
		t.Errorf("{C} /W with Listed users differs from without:\n%s\n---\n%s", a, b)
	}
}

// Listed users are shown when nobody is logged in, and without any
// session source.
func TestListedAlone(t *testing.T) {
	rs, _ := newLab(virtual.User{Account: userinfo.Account{Login: "alice", UID: 1001, Name: "Alice"}})
	rs.Listed = []userinfo.Account{{Login: "weather", Name: "Weather Service"}}
	want := "Login     Name              Tty      Idle  Login Time   Office     Office Phone\n" +
		"weather   Weather Service                              \n"
	if got := ask(t, rs, ""); got != want {
		t.Errorf("{C} = %q, want %q", got, want)
	}
	rs.Sessions = nil
	if got := ask(t, rs, ""); got != want {
		t.Errorf("{C} without a session source = %q, want %q", got, want)
	}
	if got := ask(t, rs, "/W"); got != "No one logged on.\n" {
		t.Errorf("{C} /W = %q, want nobody logged on", got)
	}
	rs.Policy.AllowList = false
	if got := ask(t, rs, ""); got != userinfo.MsgListDenied+"\n" {
		t.Errorf("{C} refused = %q", got)
	}
}
