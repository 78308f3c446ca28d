package userinfo_test

import (
	"bytes"
	"context"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/openfinger/finger"
	"github.com/openfinger/finger/internal/userinfo"
	"github.com/openfinger/finger/internal/userinfo/virtual"
)

// recordingAccounts is a virtual source that records LookupAsUnknown.
type recordingAccounts struct {
	*virtual.Source
	mu      sync.Mutex
	unknown []string
}

func (r *recordingAccounts) LookupAsUnknown(ctx context.Context, login string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.unknown = append(r.unknown, login)
}

func paceLab() (*userinfo.Responder, *recordingAccounts) {
	src := virtual.New(
		virtual.User{Account: userinfo.Account{Login: "root", UID: 0, Name: "root"}},
		virtual.User{Account: userinfo.Account{Login: "daemon", UID: 1, Name: "daemon"}},
		virtual.User{Account: userinfo.Account{Login: "pc_alice", UID: 1001, Name: "Alice"}},
		virtual.User{Account: userinfo.Account{Login: "pc_hidden", UID: 1002, Name: "Hidden"}, Hidden: true},
	)
	acc := &recordingAccounts{Source: src}
	return &userinfo.Responder{Accounts: acc, Files: src, Policy: userinfo.DefaultPolicy()}, acc
}

// serve answers line and returns the reply and the (bubble) time it took.
func serve(ctx context.Context, rs *userinfo.Responder, line string) (string, time.Duration) {
	q, err := finger.ParseQuery(line)
	if err != nil {
		panic(err)
	}
	var b bytes.Buffer
	start := time.Now()
	rs.ServeFinger(ctx, &b, &finger.Request{Query: q, Line: line})
	return b.String(), time.Since(start)
}

// TestUnknownReplyFloor: a reply that says a name is unknown, whatever
// the reason, takes the floor per name asked; a reply about a shown user
// is not held.
func TestUnknownReplyFloor(t *testing.T) {
	floor := userinfo.DefaultUnknownReplyFloor
	tests := []struct {
		query string
		want  time.Duration
	}{
		{"pc_alice", 0},
		{"pc_nobody", floor},
		{"pc_hidden", floor},
		{"root", floor},
		{"daemon", floor},
		{"pc_nobody root", 2 * floor},
		{"pc_alice pc_hidden", 2 * floor},
	}
	for _, tt := range tests {
		synctest.Test(t, func(t *testing.T) {
			rs, _ := paceLab()
			if _, took := serve(context.Background(), rs, tt.query); took != tt.want {
				t.Errorf("ServeFinger(%q) took %v, want %v", tt.query, took, tt.want)
			}
		})
	}
	synctest.Test(t, func(t *testing.T) {
		rs, _ := paceLab()
		rs.Policy.UnknownReplyFloor = -1
		if _, took := serve(context.Background(), rs, "pc_hidden"); took != 0 {
			t.Errorf("ServeFinger(pc_hidden) with the floor off took %v, want 0", took)
		}
	})
	synctest.Test(t, func(t *testing.T) {
		rs, _ := paceLab()
		rs.Policy.UnknownReplyFloor = time.Second
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		if _, took := serve(ctx, rs, "pc_hidden"); took != 100*time.Millisecond {
			t.Errorf("ServeFinger(pc_hidden) with a 1s floor and a 100ms context took %v, want 100ms", took)
		}
	})
}

// slowAccounts takes d for every lookup of a login it does not know.
type slowAccounts struct {
	*virtual.Source
	d time.Duration
}

func (s *slowAccounts) Lookup(ctx context.Context, login string) (*userinfo.Account, error) {
	a, err := s.Source.Lookup(ctx, login)
	if err != nil {
		time.Sleep(s.d)
	}
	return a, err
}

// TestUnknownReplyFloorRises: one slow unknown answer raises the floor of
// every unknown answer for the next 10 to 20 seconds, so the slow name is
// not marked by its time; then the floor comes back down.
func TestUnknownReplyFloorRises(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rs, _ := paceLab()
		src := rs.Accounts.(*recordingAccounts).Source
		slow := &slowAccounts{Source: src, d: 30 * time.Millisecond}
		rs.Accounts = slow
		// Start at the beginning of a 10-second window.
		time.Sleep(time.Until(time.Now().Truncate(10 * time.Second).Add(10 * time.Second)))
		if _, took := serve(context.Background(), rs, "pc_nobody"); took != 30*time.Millisecond {
			t.Errorf("slow unknown login took %v, want 30ms", took)
		}
		slow.d = 0
		for _, q := range []string{"pc_hidden", "root", "pc_nobody"} {
			if _, took := serve(context.Background(), rs, q); took != 30*time.Millisecond {
				t.Errorf("ServeFinger(%q) after a 30ms unknown answer took %v, want 30ms", q, took)
			}
		}
		time.Sleep(15 * time.Second) // the next window: the slow answer still counts
		if _, took := serve(context.Background(), rs, "pc_hidden"); took != 30*time.Millisecond {
			t.Errorf("ServeFinger(pc_hidden) 15s later took %v, want 30ms", took)
		}
		time.Sleep(10 * time.Second) // two windows later: forgotten
		if _, took := serve(context.Background(), rs, "pc_hidden"); took != userinfo.DefaultUnknownReplyFloor {
			t.Errorf("ServeFinger(pc_hidden) 25s later took %v, want %v", took, userinfo.DefaultUnknownReplyFloor)
		}
	})
}

// TestLookupAsUnknown: the logins found but answered as unknown (hidden,
// root, a system account) cost the lookup of an unknown login; shown and
// unknown logins do not need it.
func TestLookupAsUnknown(t *testing.T) {
	rs, acc := paceLab()
	rs.Policy.UnknownReplyFloor = -1
	for _, q := range []string{"pc_alice", "pc_nobody", "pc_hidden", "root", "daemon", "pc_alice pc_hidden"} {
		serve(context.Background(), rs, q)
	}
	if want := []string{"pc_hidden", "root", "daemon", "pc_hidden"}; !slices.Equal(acc.unknown, want) {
		t.Errorf("LookupAsUnknown called for %q, want %q", acc.unknown, want)
	}
}
