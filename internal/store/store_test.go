package store

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestValidName(t *testing.T) {
	tests := []struct {
		name string
		ok   bool
	}{
		{"alice", true},
		{"a", true},
		{"0day", true},
		{"jane.doe", true},
		{"jane_doe-2", true},
		{strings.Repeat("a", MaxNameBytes), true},
		{strings.Repeat("a", MaxNameBytes+1), false},
		{"", false},
		{"Alice", false},
		{"-rf", false},
		{".plan", false},
		{"_x", false},
		{"a b", false},
		{"a/b", false},
		{"..", false},
		{"a@b", false},
		{"a%2fb", false},
		{"é", false},
		{"a\x00", false},
	}
	for _, tt := range tests {
		err := ValidName(tt.name)
		if (err == nil) != tt.ok || (err != nil && !errors.Is(err, ErrInvalid)) {
			t.Errorf("ValidName(%q) = %v, want ok=%v", tt.name, err, tt.ok)
		}
	}
}

func TestValidText(t *testing.T) {
	tests := []struct {
		body string
		ok   bool
	}{
		{"", true},
		{"plan\r\n\t\x1b[1m你好\u202e", true},
		{strings.Repeat("x", MaxTextBytes), true},
		{strings.Repeat("x", MaxTextBytes+1), false},
		{"\xff", false},
		{"a\x00", false},
	}
	for _, tt := range tests {
		err := ValidText(tt.body)
		if (err == nil) != tt.ok || (err != nil && !errors.Is(err, ErrInvalid)) {
			t.Errorf("ValidText(%.20q) = %v, want ok=%v", tt.body, err, tt.ok)
		}
	}
}

func TestToken(t *testing.T) {
	tok, h := NewToken()
	if len(tok) != 43 {
		t.Errorf("NewToken() = %q, want 43 base64url characters (256 bits)", tok)
	}
	if err := ValidTokenHash(h); err != nil {
		t.Errorf("ValidTokenHash(hash of a new token) = %v", err)
	}
	if !TokenMatches(h, tok) {
		t.Errorf("TokenMatches(hash, token) = false, want true")
	}
	for _, wrong := range []string{"", tok[:42], tok + "x", strings.ToUpper(tok)} {
		if TokenMatches(h, wrong) {
			t.Errorf("TokenMatches(hash, %q) = true, want false", wrong)
		}
	}
	if TokenMatches(nil, tok) || TokenMatches(h[:31], tok) {
		t.Errorf("TokenMatches with a short hash = true, want false")
	}
	tok2, _ := NewToken()
	if tok2 == tok {
		t.Errorf("NewToken() twice = %q, want different tokens", tok)
	}
}

func TestOpenUnknown(t *testing.T) {
	for _, url := range []string{"", "/var/lib/x.db", "nosuch:/x", ":x"} {
		st, err := Open(context.Background(), url)
		if !errors.Is(err, ErrInvalid) || st != nil {
			t.Errorf("Open(%q) = %v, %v; want nil, ErrInvalid", url, st, err)
		}
	}
}

func TestCheckMigrations(t *testing.T) {
	good := []Migration{{1, "a", "CREATE TABLE a (x int)"}, {2, "b", "CREATE TABLE b (x int)"}}
	if err := CheckMigrations(good); err != nil {
		t.Errorf("CheckMigrations(good) = %v", err)
	}
	for _, bad := range [][]Migration{
		{{2, "a", "x"}},
		{{1, "a", "x"}, {3, "b", "y"}},
		{{1, "", "x"}},
		{{1, "a", " "}},
	} {
		if err := CheckMigrations(bad); err == nil {
			t.Errorf("CheckMigrations(%v) = nil, want an error", bad)
		}
	}
}

// received reports whether ch holds a value or is closed, without waiting,
// and which.
func received(ch <-chan struct{}) (got, open bool) {
	select {
	case _, ok := <-ch:
		return true, ok
	default:
		return false, true
	}
}

func TestAnnouncer(t *testing.T) {
	var a Announcer
	a.Announce() // nobody watches: nothing to tell, nothing blocks
	ctx, cancel := context.WithCancel(context.Background())
	ch, other := a.Watch(ctx), a.Watch(context.Background())
	if got, _ := received(ch); got {
		t.Fatalf("Watch() channel holds a value before any Announce")
	}
	a.Announce()
	a.Announce() // merges into the pending one
	for i, c := range []<-chan struct{}{ch, other} {
		if got, open := received(c); !got || !open {
			t.Errorf("channel %d after Announce: got a value %v, open %v; want a value", i, got, open)
		}
		if got, _ := received(c); got {
			t.Errorf("channel %d holds a second value; want two announcements merged into one", i)
		}
	}
	cancel()
	// The channel of the ended context is closed by a function that
	// context.AfterFunc runs in its own goroutine.
	select {
	case _, ok := <-ch:
		if ok {
			t.Errorf("channel of the ended context received a value; want it closed")
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("channel not closed within 10 s of its context ending")
	}
	if got, open := received(other); got {
		t.Errorf("the other channel got a value %v, open %v when one context ended; want nothing", got, open)
	}
	a.Close()
	if got, open := received(other); !got || open {
		t.Errorf("channel after Close: got %v, open %v; want it closed", got, open)
	}
	if got, open := received(a.Watch(context.Background())); !got || open {
		t.Errorf("Watch() after Close: got %v, open %v; want a closed channel", got, open)
	}
	a.Announce() // after Close: nothing to tell
}

func TestValidKind(t *testing.T) {
	for _, k := range Kinds {
		if err := ValidKind(k); err != nil {
			t.Errorf("ValidKind(%q) = %v, want nil", k, err)
		}
	}
	for _, k := range []Kind{"", "Plan", "nofinger", "forward", "../plan", "plan\x00"} {
		if err := ValidKind(k); !errors.Is(err, ErrInvalid) {
			t.Errorf("ValidKind(%q) = %v, want ErrInvalid", k, err)
		}
	}
}

func TestSnapshotBuilder(t *testing.T) {
	tests := []struct {
		version, since int64
		full           bool
		after          int64
	}{
		{10, 0, true, 0},
		{10, -1, true, 0},
		{10, 4, false, 4},
		{10, 10, false, 10},
		{10, 11, true, 0}, // from the future: a restored backup
	}
	for _, tt := range tests {
		b := NewSnapshotBuilder(tt.version, tt.since)
		if b.Full() != tt.full || b.Since() != tt.after {
			t.Errorf("NewSnapshotBuilder(%d, %d): Full() = %v, Since() = %d; want %v, %d", tt.version, tt.since, b.Full(), b.Since(), tt.full, tt.after)
		}
		if s := b.Snapshot(); s.Version != tt.version || s.Full != tt.full {
			t.Errorf("NewSnapshotBuilder(%d, %d).Snapshot() = %+v, want version %d, full %v", tt.version, tt.since, s, tt.version, tt.full)
		}
	}

	b := NewSnapshotBuilder(7, 3)
	for i, name := range []string{"carol", "alice", "bob"} {
		b.AddUser(User{Name: name}, HashToken(name), int64(4+i))
	}
	plan := Text{Kind: KindPlan, Body: "a plan"}
	b.AddText("alice", plan)
	b.AddText("nobody", Text{Kind: KindPlan, Body: "not added"})
	b.AddDeleted("zed")
	b.AddDeleted("dave")
	if b.Users() != 3 {
		t.Errorf("Users() = %d, want 3", b.Users())
	}
	s := b.Snapshot()
	var names []string
	for _, e := range s.Users {
		names = append(names, e.Name)
		if e.Texts == nil {
			t.Errorf("entry %q has nil Texts", e.Name)
		}
	}
	if strings.Join(names, " ") != "alice bob carol" || strings.Join(s.Deleted, " ") != "dave zed" {
		t.Errorf("Snapshot() users %q, deleted %q; want them sorted: alice bob carol, dave zed", names, s.Deleted)
	}
	if got := s.Users[0].Texts; len(got) != 1 || got[KindPlan] != plan || s.Users[0].Version != 5 {
		t.Errorf("alice = %+v, want version 5 and her plan only", s.Users[0])
	}
	if len(s.Users[1].Texts) != 0 || len(s.Users[2].Texts) != 0 {
		t.Errorf("bob and carol have texts %v, %v; want none", s.Users[1].Texts, s.Users[2].Texts)
	}
}
