package userinfo_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/openfinger/finger"
	"github.com/openfinger/finger/internal/userinfo"
	"github.com/openfinger/finger/internal/userinfo/virtual"
)

// The replies match netkit finger's bytes as captured in the peers lab
// (testdata/netkit, line ends as LF), apart from the deliberate
// differences: .forward is not shown, and system accounts are never found
// by real name.
func TestNetkitParity(t *testing.T) {
	tests := []struct {
		query, file string
		edit        func(*userinfo.Policy)
	}{
		{query: "", file: "list"},
		{query: "fgtest_alice", file: "user"},
		{query: "/W fgtest_alice", file: "user"},
		{query: "Alice", file: "user"},
		{query: "alice", file: "user"},
		{query: "LIDDELL", file: "user"},
		{query: "fgtest_alice fgtest_alice", file: "user"},
		{query: "Ann", file: "realname-Ann"},
		{query: "Fgtest_carol", file: "realname-ampersand"},
		{query: "Ali", file: "realname-partial-Ali"},
		{query: "FGTEST_ALICE", file: "login-uppercase"},
		{query: "nosuchuser", file: "unknown"},
		{query: "fgtest_hidden", file: "nofinger-user"},
		{query: "fgtest_mallory", file: "symlink-plan"},
		{query: "fgtest_nogecos", file: "nogecos"},
		{query: "root", file: "root", edit: func(p *userinfo.Policy) { p.AllowRoot = true }},
		{query: "systemd-timesync", file: "systemd-timesync", edit: func(p *userinfo.Policy) { p.ShowSystemAccounts = true }},
	}
	for _, tt := range tests {
		rs, _ := newLab()
		if tt.edit != nil {
			tt.edit(&rs.Policy)
		}
		want, err := os.ReadFile(filepath.Join("testdata", "netkit", tt.file+".txt"))
		if err != nil {
			t.Fatal(err)
		}
		w := strings.Replace(string(want), "Mail forwarded to alice@example.org\n", "", 1)
		if got := ask(t, rs, tt.query); got != w {
			t.Errorf("query %q:\n--- got ---\n%s--- netkit ---\n%s", tt.query, got, w)
		}
	}
}

var loginLine = regexp.MustCompile(`(?m)^Login: (\S+)`)

// found returns the logins shown in a long-form reply.
func found(reply string) []string {
	var out []string
	for _, m := range loginLine.FindAllStringSubmatch(reply, -1) {
		out = append(out, m[1])
	}
	return out
}

func TestMatch(t *testing.T) {
	tests := []struct {
		query string
		want  []string
		edit  func(*userinfo.Policy)
	}{
		{query: "fgtest_alice", want: []string{"fgtest_alice"}},
		{query: "FGTEST_ALICE"},
		{query: "Fgtest_alice"},
		{query: "Alice", want: []string{"fgtest_alice"}},
		{query: "aLiCe", want: []string{"fgtest_alice"}},
		{query: "liddell", want: []string{"fgtest_alice"}},
		{query: "Ali"},
		{query: "Alice Liddell", want: []string{"fgtest_alice"}}, // two names, one account
		{query: "Liddell", want: nil, edit: func(p *userinfo.Policy) { p.MatchRealNames = false }},
		{query: "fgtest_alice", want: []string{"fgtest_alice"}, edit: func(p *userinfo.Policy) { p.MatchRealNames = false }},
		{query: "Ann", want: []string{"fgtest_carol"}},
		{query: "Fgtest_carol"},
		{query: "fgtest_carol", want: []string{"fgtest_carol"}},
		{query: "张伟", want: []string{"fgtest_bob"}},
		{query: "张"},
		{query: "élodie", want: []string{"fgtest_elodie"}},
		{query: "ÉLODIE", want: []string{"fgtest_elodie"}},
		{query: "æRØ", want: []string{"fgtest_elodie"}},
		{query: "STRASSE"}, // simple folding only: ß is not ss
		{query: "straße", want: []string{"fgtest_elodie"}},
		{query: "Hidden"},
		{query: "fgtest_hidden"},
		{query: "time"},
		{query: "Synchronization"},
		{query: "systemd-timesync"},
		{query: "systemd-timesync", want: []string{"systemd-timesync"}, edit: func(p *userinfo.Policy) { p.ShowSystemAccounts = true }},
		{query: "time", edit: func(p *userinfo.Policy) { p.ShowSystemAccounts = true }},
		{query: "root"},
		{query: "root", want: []string{"root"}, edit: func(p *userinfo.Policy) { p.AllowRoot = true }},
		{query: "nobody"}, // UID 65534: above UID_MAX, a system account
		{query: "nobody", want: []string{"nobody"}, edit: func(p *userinfo.Policy) { p.ShowSystemAccounts = true }},
		{query: "nobody", want: []string{"nobody"}, edit: func(p *userinfo.Policy) { p.MaxUID = 65534 }},
		{query: "fgtest_bob fgtest_alice", want: []string{"fgtest_bob", "fgtest_alice"}},
		{query: "fgtest_alice Alice LIDDELL", want: []string{"fgtest_alice"}},
		{query: "-l fgtest_alice", want: []string{"fgtest_alice"}},
		{query: "*"},
		{query: "../../etc/passwd"},
	}
	for _, tt := range tests {
		rs, _ := newLab()
		if tt.edit != nil {
			tt.edit(&rs.Policy)
		}
		reply := ask(t, rs, tt.query)
		if got := found(reply); !slices.Equal(got, tt.want) {
			t.Errorf("query %q finds %q, want %q\n%s", tt.query, got, tt.want, reply)
		}
	}
}

// Several names: the ones nobody matches come first, each with the
// unknown-user line, then the users found, separated by blank lines.
func TestSeveralNames(t *testing.T) {
	rs, _ := newLab()
	reply := ask(t, rs, "fgtest_carol nosuch1 Ann nosuch2")
	want := "finger: nosuch1: no such user.\nfinger: nosuch2: no such user.\nLogin: fgtest_carol"
	if !strings.HasPrefix(reply, want) {
		t.Errorf("reply = %q, want it to start with %q", reply, want)
	}
	if n := strings.Count(reply, "Login: fgtest_carol"); n != 1 {
		t.Errorf("fgtest_carol shown %d times, want once", n)
	}
}

func TestMaxNames(t *testing.T) {
	rs, _ := newLab()
	rs.Policy.MaxNames = 2
	reply := ask(t, rs, "fgtest_alice fgtest_bob fgtest_carol")
	if got := found(reply); !slices.Equal(got, []string{"fgtest_alice", "fgtest_bob"}) {
		t.Errorf("found %q, want the first two names only", got)
	}
	if !strings.HasPrefix(reply, "finger: too many names; only the first 2 are answered.\n") {
		t.Errorf("no notice about the dropped names: %q", reply[:min(len(reply), 80)])
	}
}

func TestMaxMatches(t *testing.T) {
	var users []virtual.User
	for _, l := range []string{"smith1", "smith2", "smith3", "smith4"} {
		users = append(users, virtual.User{Account: userinfo.Account{Login: l, UID: 2000, Name: "John Smith"}})
	}
	rs, _ := newLab(users...)
	rs.Policy.MaxMatches = 3
	if got := found(ask(t, rs, "smith")); !slices.Equal(got, []string{"smith1", "smith2", "smith3"}) {
		t.Errorf("found %q, want the first 3 matches", got)
	}
	rs.Policy.MaxScan = 2
	if got := found(ask(t, rs, "smith")); !slices.Equal(got, []string{"smith1", "smith2"}) {
		t.Errorf("with MaxScan 2: found %q, want the first 2 accounts", got)
	}
}

func TestZeroPolicyIsRestrictive(t *testing.T) {
	rs, _ := newLab()
	rs.Policy = userinfo.Policy{}
	if got := ask(t, rs, ""); got != userinfo.MsgListDenied+"\n" {
		t.Errorf("{C} with the zero policy = %q, want the refusal", got)
	}
	reply := ask(t, rs, "fgtest_alice")
	if strings.Contains(reply, "Plan") || strings.Contains(reply, "PGP") {
		t.Errorf("zero policy shows user files:\n%s", reply)
	}
	if got := found(ask(t, rs, "Alice")); got != nil {
		t.Errorf("zero policy matches real names: %q", got)
	}
	if got := found(ask(t, rs, "root")); got != nil {
		t.Errorf("zero policy shows root: %q", got)
	}
}

func TestForward(t *testing.T) {
	rs, _ := newLab()
	for _, q := range []string{"fgtest_alice@localhost", "@localhost", "/W a@b@c"} {
		if got := ask(t, rs, q); got != userinfo.MsgForwardDenied+"\n" {
			t.Errorf("query %q = %q, want the forwarding refusal", q, got)
		}
	}
	var got finger.Query
	rs.Forward = finger.HandlerFunc(func(ctx context.Context, w io.Writer, r *finger.Request) {
		got = r.Query
		io.WriteString(w, "forwarded\n")
	})
	if reply := ask(t, rs, "/W fgtest_alice@h1@h2"); reply != "forwarded\n" {
		t.Errorf("with Forward set: reply %q, want the Forward handler's", reply)
	}
	if !got.Verbose || got.User != "fgtest_alice" || !slices.Equal(got.Hosts, []string{"h1", "h2"}) {
		t.Errorf("Forward got query %+v", got)
	}
	if reply := ask(t, rs, "fgtest_alice"); !strings.HasPrefix(reply, "Login:") {
		t.Errorf("a local query went to Forward: %q", reply)
	}
}

func TestNobodyLoggedOn(t *testing.T) {
	rs, _ := newLab(virtual.User{Account: userinfo.Account{Login: "alice", UID: 1001, Name: "Alice"}})
	for _, q := range []string{"", "/W"} {
		if got := ask(t, rs, q); got != "No one logged on.\n" {
			t.Errorf("query %q = %q, want %q", q, got, "No one logged on.\n")
		}
	}
	rs.Sessions = nil
	if got := ask(t, rs, ""); got != "No one logged on.\n" {
		t.Errorf("{C} without a session source = %q", got)
	}
}

// A hostile GECOS cannot add lines or send escapes.
func TestHostileFields(t *testing.T) {
	rs, _ := newLab(virtual.User{
		Account: userinfo.Account{Login: "evil", UID: 1001, Name: "Evil\nPlan:\x1b]0;x\x07", Office: "\rRoom\u202e1",
			OfficePhone: "\x9b2J", Home: "/home/evil\n", Shell: "/bin/sh\x00"},
		Sessions: []userinfo.Session{{TTY: "pts/\x1b[1", Host: "h\r\nost", LoginTime: time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC)}},
	})
	for _, q := range []string{"", "evil", "/W"} {
		reply := ask(t, rs, q)
		if strings.ContainsAny(reply, "\x1b\x07\x00\r\u202e\x9b") {
			t.Errorf("query %q: reply has raw control bytes: %q", q, reply)
		}
		if strings.Contains(reply, "\nPlan:") {
			t.Errorf("query %q: a GECOS field started a line: %q", q, reply)
		}
	}
}

// The name echoed in the unknown-user line is filtered: UTF-8 intact,
// invalid bytes escaped.
func TestUnknownNameFiltered(t *testing.T) {
	rs, _ := newLab()
	tests := []struct{ name, want string }{
		{"élève", "finger: élève: no such user.\n"},
		{"a\x9b[2Jb", "finger: a\\x9b[2Jb: no such user.\n"},
		{"x\u202ey", "finger: x\\u202ey: no such user.\n"},
	}
	for _, tt := range tests {
		if got := ask(t, rs, tt.name); got != tt.want {
			t.Errorf("query %q = %q, want %q", tt.name, got, tt.want)
		}
	}
}

// failing wraps a source and makes the chosen methods fail.
type failing struct {
	*virtual.Source
	lookup, all, sessions, lastlog, mail, files bool
}

var errDisk = errors.New("secret-path: input/output error")

func (f *failing) Lookup(ctx context.Context, l string) (*userinfo.Account, error) {
	if f.lookup {
		return nil, errDisk
	}
	return f.Source.Lookup(ctx, l)
}

func (f *failing) All(ctx context.Context) ([]*userinfo.Account, error) {
	if f.all {
		return nil, errDisk
	}
	return f.Source.All(ctx)
}

func (f *failing) Sessions(ctx context.Context) ([]userinfo.Session, error) {
	if f.sessions {
		return nil, errDisk
	}
	return f.Source.Sessions(ctx)
}

func (f *failing) LastLogin(ctx context.Context, a *userinfo.Account) (userinfo.LastLogin, error) {
	if f.lastlog {
		return userinfo.LastLogin{}, errDisk
	}
	return f.Source.LastLogin(ctx, a)
}

func (f *failing) Mail(ctx context.Context, a *userinfo.Account) (userinfo.MailStatus, error) {
	if f.mail {
		return userinfo.MailStatus{}, errDisk
	}
	return f.Source.Mail(ctx, a)
}

func (f *failing) ReadFile(ctx context.Context, a *userinfo.Account, name string, max int64) (userinfo.UserFile, error) {
	if f.files {
		return userinfo.UserFile{}, errDisk
	}
	return f.Source.ReadFile(ctx, a, name, max)
}

func TestSourceFailures(t *testing.T) {
	tests := []struct {
		name  string
		f     failing
		query string
		want  string // the whole reply, or a line it must contain
		whole bool
		not   string
		quiet bool // the failing method is never called
	}{
		{name: "lookup", f: failing{lookup: true, all: true}, query: "fgtest_alice", want: userinfo.MsgUnavailable + "\n", whole: true},
		{name: "all", f: failing{all: true}, query: "Alice", want: userinfo.MsgUnavailable + "\n", whole: true},
		{name: "all-login-ok", f: failing{all: true}, query: "fgtest_alice", want: "Login: fgtest_alice", quiet: true},
		{name: "list", f: failing{sessions: true}, query: "", want: userinfo.MsgUnavailable + "\n", whole: true},
		{name: "verbose-list", f: failing{sessions: true}, query: "/W", want: userinfo.MsgUnavailable + "\n", whole: true},
		{name: "list-lookup", f: failing{lookup: true}, query: "", want: "No one logged on.\n", whole: true},
		{name: "user-sessions", f: failing{sessions: true}, query: "fgtest_alice", want: "Login: fgtest_alice", not: "On since"},
		{name: "lastlog", f: failing{lastlog: true}, query: "fgtest_bob", want: "No mail.", not: "Never logged in."},
		{name: "mail", f: failing{mail: true}, query: "fgtest_bob", want: "Never logged in.", not: "mail"},
		{name: "files", f: failing{files: true}, query: "fgtest_alice", want: "No Plan.", not: "Plan:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rs, src := newLab()
			f := tt.f
			f.Source = src
			rs.Accounts, rs.Sessions, rs.LastLogins, rs.Mailboxes, rs.Files = &f, &f, &f, &f, &f
			var logs bytes.Buffer
			rs.Logger = slog.New(slog.NewTextHandler(&logs, nil))
			reply := ask(t, rs, tt.query)
			if tt.whole && reply != tt.want || !tt.whole && !strings.Contains(reply, tt.want) {
				t.Errorf("reply = %q, want %q", reply, tt.want)
			}
			if tt.not != "" && strings.Contains(reply, tt.not) {
				t.Errorf("reply contains %q: %q", tt.not, reply)
			}
			if strings.Contains(reply, "secret-path") || strings.Contains(reply, "error") {
				t.Errorf("reply leaks the error: %q", reply)
			}
			if !tt.quiet && !strings.Contains(logs.String(), "secret-path") {
				t.Errorf("failure not logged; log: %q", logs.String())
			}
		})
	}
}

// Nil sources are left out without failing.
func TestNilSources(t *testing.T) {
	rs, _ := newLab()
	rs.LastLogins, rs.Mailboxes, rs.Files, rs.Sessions = nil, nil, nil, nil
	want := "Login: fgtest_alice   \t\t\tName: Alice Liddell\n" +
		"Directory: /home/fgtest_alice       \tShell: /bin/bash\n" +
		"Office: Room 101, 555-1234\t\tHome Phone: +1-555-123-9876\n"
	if got := ask(t, rs, "fgtest_alice"); got != want {
		t.Errorf("reply = %q, want %q", got, want)
	}
	rs.Accounts = nil
	if got := ask(t, rs, "fgtest_alice"); got != "finger: fgtest_alice: no such user.\n" {
		t.Errorf("without accounts: %q", got)
	}
}

func TestCanceled(t *testing.T) {
	rs, _ := newLab()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var b bytes.Buffer
	rs.ServeFinger(ctx, &b, &finger.Request{Query: finger.Query{User: "fgtest_alice"}})
	if strings.Contains(b.String(), "Login:") {
		t.Errorf("canceled query answered: %q", b.String())
	}
}

func TestConcurrentQueries(t *testing.T) {
	rs, src := newLab()
	want := map[string]string{}
	queries := []string{"", "/W", "fgtest_alice", "Alice nosuch", "fgtest_eve", "fgtest_big"}
	for _, q := range queries {
		want[q] = ask(t, rs, q)
	}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 20 {
				q := queries[(g+i)%len(queries)]
				if got := ask(t, rs, q); got != want[q] {
					t.Errorf("concurrent query %q gave a different reply", q)
				}
			}
		})
	}
	// The source changes meanwhile; the replies above do not depend on it.
	wg.Go(func() {
		for range 50 {
			src.Set(virtual.User{Account: userinfo.Account{Login: "temp", UID: 3000}})
			src.Remove("temp")
		}
	})
	wg.Wait()
}

func TestFormatPhone(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", ""},
		{"1234", "x1234"},
		{"12345", "x1-2345"},
		{"5551234", "555-1234"},
		{"5551239876", "555-123-9876"},
		{"15551239876", "+1-555-123-9876"},
		{"123", "123"},
		{"123456", "123456"},
		{"+49 30 1234", "+49 30 1234"},
		{"+33 1 23 45 67 89", "+33 1 23 45 67 89"},
		{"123456789012", "123456789012"},
		{"555-1234", "555-1234"},
		{"x1234", "x1234"},
		{"٥٥٥١٢٣٤", "٥٥٥١٢٣٤"},
	}
	for _, tt := range tests {
		if got := userinfo.FormatPhone(tt.in); got != tt.want {
			t.Errorf("FormatPhone(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
