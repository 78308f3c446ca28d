package userinfo_test

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/openfinger/finger"
	"github.com/openfinger/finger/internal/userinfo"
	"github.com/openfinger/finger/internal/userinfo/virtual"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// The lab's clock: sessions began on Mon Nov 23 2026 and have been idle
// for 2 days 3 hours.
var (
	labDay  = time.Date(2026, time.November, 23, 0, 0, 0, 0, time.UTC)
	labNow  = time.Date(2026, time.November, 26, 0, 45, 0, 0, time.UTC)
	labIdle = 2*24*time.Hour + 3*time.Hour
)

func at(h, m int) time.Time {
	return labDay.Add(time.Duration(h)*time.Hour + time.Duration(m)*time.Minute)
}

const evePlan = "before-clear\x1b[2J\x1b[Hafter-clear BEL:\x07 NUL:\x00 BS:\x08 DEL:\x7f CSI8bit:\x9b31m OSC:\x1b]0;owned-title\x07 CR-overwrite:XXXXXXXX\rhidden\n8bit: \x80\x81\x9f\xa0\xfe\xff\nend\n"

func bigPlan() []byte {
	var b bytes.Buffer
	for i := 1; b.Len() < 102400; i++ {
		fmt.Fprintf(&b, "line %05d %s\n", i, strings.Repeat(".", 49)+"xyz")
	}
	return b.Bytes()
}

// labUsers mirrors the test users of the peers lab (peers.md §0).
func labUsers() []virtual.User {
	return []virtual.User{
		{
			Account: userinfo.Account{Login: "root", UID: 0, Name: "root", Home: "/root", Shell: "/bin/bash"},
		},
		{
			Account: userinfo.Account{Login: "systemd-timesync", UID: 996, Name: "systemd Time Synchronization", Home: "/", Shell: "/usr/sbin/nologin"},
		},
		{
			Account: userinfo.Account{Login: "nobody", UID: 65534, Name: "nobody", Home: "/nonexistent", Shell: "/usr/sbin/nologin"},
		},
		{
			Account: userinfo.Account{Login: "fgtest_alice", UID: 1001, Name: "Alice Liddell", Office: "Room 101",
				OfficePhone: "5551234", HomePhone: "15551239876", Home: "/home/fgtest_alice", Shell: "/bin/bash"},
			Sessions: []userinfo.Session{
				{TTY: "tty5", Host: "client.example.org", LoginTime: at(18, 43), Idle: labIdle, MessagesOff: true},
				{TTY: "tty6", LoginTime: at(21, 43), Idle: labIdle, MessagesOff: true},
			},
			Mail: userinfo.MailStatus{Exists: true, Unread: true, Received: at(21, 43), Read: at(21, 35)},
			Files: map[string][]byte{
				".pgpkey":  []byte("-----BEGIN PGP PUBLIC KEY BLOCK-----\nmQENBFakeKeyForLabOnly\n-----END PGP PUBLIC KEY BLOCK-----\n"),
				".project": []byte("Project: tea party\n"),
				".plan":    []byte("Alice plan line 1\nGoing down the rabbit hole.\n"),
			},
		},
		{
			Account: userinfo.Account{Login: "fgtest_bob", UID: 1002, Name: "Bob 张伟 Zhang", Office: "Büro 2",
				OfficePhone: "+49 30 1234", Home: "/home/fgtest_bob", Shell: "/bin/bash"},
			Files: map[string][]byte{
				".project": []byte("Projekt: Übersetzung 翻译\n"),
				".plan":    []byte("你好，世界！这是我的计划。\nUTF-8 test: café naïve 中文 — end\n"),
			},
		},
		{
			Account: userinfo.Account{Login: "fgtest_eve", UID: 1003, Name: "Eve Hacker", Office: "Lab", OfficePhone: "1234",
				Home: "/home/fgtest_eve", Shell: "/bin/bash"},
			Sessions: []userinfo.Session{
				{TTY: "tty7", Host: "evil.example.net", LoginTime: at(21, 43), Idle: labIdle, MessagesOff: true},
			},
			Files: map[string][]byte{
				".project": []byte("project with ESC[31m\x1b[31mRED\x1b[0m and FF\f and VT\v\n"),
				".plan":    []byte(evePlan),
			},
		},
		{
			Account: userinfo.Account{Login: "fgtest_big", UID: 1004, Name: "Big Plan", Home: "/home/fgtest_big", Shell: "/bin/bash"},
			Files:   map[string][]byte{".plan": bigPlan()},
		},
		{
			Account: userinfo.Account{Login: "fgtest_hidden", UID: 1005, Name: "Hidden Person", Office: "Secret Room 999",
				Home: "/home/fgtest_hidden", Shell: "/bin/bash"},
			Sessions: []userinfo.Session{
				{TTY: "tty8", Host: "hidden.example", LoginTime: at(21, 43), Idle: labIdle, MessagesOff: true},
			},
			Files:  map[string][]byte{".plan": []byte("secret plan\n")},
			Hidden: true,
		},
		{
			Account: userinfo.Account{Login: "fgtest_mallory", UID: 1006, Name: "Mallory Symlink", Home: "/home/fgtest_mallory", Shell: "/bin/bash"},
		},
		{
			Account: userinfo.Account{Login: "fgtest_carol", UID: 1007, Name: "Carol Ann Fgtest_carol Smith", Home: "/home/fgtest_carol", Shell: "/bin/bash"},
			Files:   map[string][]byte{".plan": []byte("carol plan\n")},
		},
		{
			Account: userinfo.Account{Login: "fgtest_nogecos", UID: 1008, Home: "/home/fgtest_nogecos", Shell: "/bin/bash"},
		},
		{
			Account:   userinfo.Account{Login: "fgtest_elodie", UID: 1009, Name: "Élodie Ærø Straße", Home: "/home/fgtest_elodie", Shell: "/bin/zsh"},
			LastLogin: userinfo.LastLogin{Time: at(9, 5), TTY: "pts/2", Host: "café.example"},
			Mail:      userinfo.MailStatus{Exists: true, Received: at(8, 0), Read: at(9, 6)},
		},
	}
}

// newLab returns a Responder over the lab users with the default policy,
// the lab's clock and UTC.
func newLab(users ...virtual.User) (*userinfo.Responder, *virtual.Source) {
	if users == nil {
		users = labUsers()
	}
	src := virtual.New(users...)
	return &userinfo.Responder{
		Accounts:   src,
		Sessions:   src,
		LastLogins: src,
		Mailboxes:  src,
		Files:      src,
		Policy:     userinfo.DefaultPolicy(),
		Now:        func() time.Time { return labNow },
		Location:   time.UTC,
	}, src
}

// ask sends one query line to h and returns the reply.
func ask(t testing.TB, h finger.Handler, line string) string {
	t.Helper()
	q, err := finger.ParseQuery(line)
	if err != nil {
		t.Fatalf("ParseQuery(%q): %v", line, err)
	}
	var b bytes.Buffer
	h.ServeFinger(context.Background(), &b, &finger.Request{Query: q, Line: line})
	return b.String()
}

// golden compares got with testdata/name.golden, or rewrites the file
// with -update.
func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("reply differs from %s:\n--- got ---\n%s\n--- want ---\n%s", path, got, want)
	}
}
