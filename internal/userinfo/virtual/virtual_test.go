package virtual_test

import (
	"context"
	"errors"
	"testing"

	"github.com/openfinger/finger/internal/userinfo"
	"github.com/openfinger/finger/internal/userinfo/virtual"
)

// Values passed in and returned are copies: changing them does not change
// the source.
func TestCopies(t *testing.T) {
	ctx := context.Background()
	plan := []byte("plan")
	u := virtual.User{
		Account:  userinfo.Account{Login: "alice", Name: "Alice"},
		Sessions: []userinfo.Session{{TTY: "tty1"}},
		Files:    map[string][]byte{".plan": plan},
	}
	src := virtual.New(u)
	plan[0] = 'X'
	u.Sessions[0].TTY = "changed"

	a, err := src.Lookup(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	a.Name = "changed"
	if b, _ := src.Lookup(ctx, "alice"); b.Name != "Alice" {
		t.Errorf("Lookup returned the stored account: Name = %q", b.Name)
	}
	f, err := src.ReadFile(ctx, a, ".plan", 0)
	if err != nil || string(f.Data) != "plan" {
		t.Fatalf("ReadFile = %q, %v; want the content given to New", f.Data, err)
	}
	f.Data[0] = 'Y'
	if f, _ := src.ReadFile(ctx, a, ".plan", 0); string(f.Data) != "plan" {
		t.Errorf("ReadFile returned the stored bytes")
	}
	ss, _ := src.Sessions(ctx)
	if len(ss) != 1 || ss[0].TTY != "tty1" || ss[0].Login != "alice" {
		t.Errorf("Sessions = %+v, want one session on tty1 of alice", ss)
	}
}

func TestSetRemove(t *testing.T) {
	ctx := context.Background()
	src := new(virtual.Source)
	src.Set(virtual.User{Account: userinfo.Account{Login: "a", Name: "first"}})
	src.Set(virtual.User{Account: userinfo.Account{Login: "b"}})
	src.Set(virtual.User{Account: userinfo.Account{Login: "a", Name: "second"}})
	all, _ := src.All(ctx)
	if len(all) != 2 || all[0].Login != "a" || all[0].Name != "second" || all[1].Login != "b" {
		t.Errorf("All after replacing a = %v", all)
	}
	if !src.Remove("a") || src.Remove("a") {
		t.Error("Remove(a) twice: want true then false")
	}
	if _, err := src.Lookup(ctx, "a"); !errors.Is(err, userinfo.ErrNotFound) {
		t.Errorf("Lookup of a removed user: %v", err)
	}
	if src.Len() != 1 {
		t.Errorf("Len = %d, want 1", src.Len())
	}
}

func TestMailAndLastLogin(t *testing.T) {
	ctx := context.Background()
	src := virtual.New(virtual.User{Account: userinfo.Account{Login: "a"}, Mail: userinfo.MailStatus{Exists: true}})
	a := &userinfo.Account{Login: "a"}
	if m, err := src.Mail(ctx, a); err != nil || !m.Exists {
		t.Errorf("Mail = %+v, %v", m, err)
	}
	if _, err := src.Mail(ctx, &userinfo.Account{Login: "zz"}); !errors.Is(err, userinfo.ErrNotFound) {
		t.Errorf("Mail of unknown user: %v", err)
	}
	if _, err := src.LastLogin(ctx, a); !errors.Is(err, userinfo.ErrNotFound) {
		t.Errorf("LastLogin without a record: %v", err)
	}
}
