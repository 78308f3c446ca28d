package userinfotest_test

import (
	"testing"
	"time"

	"github.com/openfinger/finger/internal/userinfo"
	"github.com/openfinger/finger/internal/userinfo/userinfotest"
	"github.com/openfinger/finger/internal/userinfo/virtual"
)

// The virtual source is the reference implementation: it must pass every
// suite.
func TestVirtual(t *testing.T) {
	alice := userinfo.Account{Login: "alice", UID: 1001, Name: "Alice Liddell", Home: "/home/alice"}
	bob := userinfo.Account{Login: "bob", UID: 1002, Name: "Bob 张伟 Zhang", Home: "/home/bob"}
	Bob := userinfo.Account{Login: "Bob", UID: 1003, Name: "Another Bob", Home: "/home/Bob"}
	hid := userinfo.Account{Login: "hid", UID: 1004, Name: "Hidden Person"}
	last := userinfo.LastLogin{Time: time.Date(2026, 11, 23, 9, 5, 0, 0, time.UTC), TTY: "pts/2", Host: "example.org"}
	src := virtual.New(
		virtual.User{
			Account:   alice,
			Sessions:  []userinfo.Session{{TTY: "tty5"}, {TTY: "pts/1", Host: "example.org"}},
			LastLogin: last,
			Files: map[string][]byte{
				".plan":    []byte("Going down the rabbit hole.\n"),
				".project": []byte("tea party"),
				".pgpkey":  {},
			},
		},
		virtual.User{Account: bob, Files: map[string][]byte{".plan": []byte("你好，世界\n")}},
		virtual.User{Account: Bob},
		virtual.User{Account: hid, Hidden: true, Sessions: []userinfo.Session{{TTY: "tty8"}}},
	)

	t.Run("Accounts", func(t *testing.T) {
		userinfotest.TestAccounts(t, src, []string{"alice", "bob", "Bob", "hid"})
	})
	t.Run("Sessions", func(t *testing.T) {
		userinfotest.TestSessions(t, src, []string{"alice", "hid"})
	})
	t.Run("Files", func(t *testing.T) {
		userinfotest.TestFiles(t, src,
			userinfotest.UserFiles{Account: &alice, Files: map[string][]byte{
				".plan":    []byte("Going down the rabbit hole.\n"),
				".project": []byte("tea party"),
				".pgpkey":  {},
			}},
			userinfotest.UserFiles{Account: &bob, Files: map[string][]byte{".plan": []byte("你好，世界\n")}},
			userinfotest.UserFiles{Account: &hid, Hidden: true},
			userinfotest.UserFiles{Account: &userinfo.Account{Login: "nobody-here"}},
		)
	})
	t.Run("LastLogins", func(t *testing.T) {
		userinfotest.TestLastLogins(t, src,
			map[*userinfo.Account]userinfo.LastLogin{&alice: last},
			[]*userinfo.Account{&bob, {Login: "nobody-here"}})
	})
}

// An empty source: nobody is logged in, which is not an error.
func TestVirtualEmpty(t *testing.T) {
	userinfotest.TestSessions(t, new(virtual.Source), nil)
}
