package logins

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/openfinger/finger/internal/userinfo"
)

// benchUsers is the number of users in the benchmark databases.
const benchUsers = 10000

// benchAccounts returns the accounts of the benchmark databases.
func benchAccounts() []*userinfo.Account {
	a := make([]*userinfo.Account, benchUsers)
	for i := range a {
		a[i] = acct(fmt.Sprintf("user%05d", i), uint32(10000+i))
	}
	return a
}

// benchLookups looks the users up in turn, checking every answer.
func benchLookups(b *testing.B, src userinfo.LastLogins, want func(i int) time.Time) {
	accts := benchAccounts()
	ctx := context.Background()
	b.ResetTimer()
	i := 0
	for b.Loop() {
		n := i % benchUsers
		ll, err := src.LastLogin(ctx, accts[n])
		if err != nil || !ll.Time.Equal(want(n)) || ll.TTY == "" {
			b.Fatalf("LastLogin(%q) = %+v, %v; want %v", accts[n].Login, ll, err, want(n))
		}
		i++
	}
}

// BenchmarkLastlog2 looks up users in a lastlog2 database of 10,000 users
// (one row each, the table's primary key on Name).
func BenchmarkLastlog2(b *testing.B) {
	path := filepath.Join(b.TempDir(), "lastlog2.db")
	rows := make([]l2row, benchUsers)
	for i := range rows {
		rows[i] = l2row{fmt.Sprintf("user%05d", i), t0.Unix() + int64(i), "pts/1", "client.example.org"}
	}
	writeLastlog2(b, path, rows)
	want := func(i int) time.Time { return t0.Add(time.Duration(i) * time.Second) }
	b.Run("pool", func(b *testing.B) {
		src := &Lastlog2{Path: path}
		defer src.Close()
		benchLookups(b, src, want)
	})
	// The path for a WAL database without -wal in a directory the reader
	// cannot write: a shared lock and a new immutable connection per read.
	b.Run("direct", func(b *testing.B) {
		src := &Lastlog2{Path: path}
		defer src.Close()
		if _, err := src.LastLogin(context.Background(), acct("user00000", 1)); err != nil {
			b.Fatal(err)
		}
		src.get().direct = true
		benchLookups(b, src, want)
	})
}

// BenchmarkWtmpdb looks up users in a wtmpdb database of 10,000 users with
// 1 or 5 sessions each, plus boot entries. wtmpdb creates no index on User:
// the source scans the table once per change of the database.
func BenchmarkWtmpdb(b *testing.B) {
	for _, perUser := range []int{1, 5} {
		b.Run(fmt.Sprintf("sessions=%d", perUser), func(b *testing.B) {
			path := filepath.Join(b.TempDir(), "wtmp.db")
			var rows []wrow
			for s := range perUser {
				rows = append(rows, wrow{2, "reboot", t0.Add(time.Duration(s) * time.Hour).UnixMicro(), nil, "~", "6.12.0"})
				for i := range benchUsers {
					login := t0.Add(time.Duration(s)*time.Hour + time.Duration(i)*time.Second)
					rows = append(rows, wrow{3, fmt.Sprintf("user%05d", i), login.UnixMicro(), login.Add(time.Minute).UnixMicro(), "pts/2", "client.example.org"})
				}
			}
			writeWtmpdb(b, path, rows)
			last := time.Duration(perUser-1) * time.Hour
			want := func(i int) time.Time { return t0.Add(last + time.Duration(i)*time.Second) }
			// Lookups while the database does not change: user by user,
			// then one scan into the summary.
			b.Run("unchanged", func(b *testing.B) {
				src := &Wtmpdb{Paths: []string{path}}
				defer src.Close()
				benchLookups(b, src, want)
			})
			// Every lookup as if the database had changed since the
			// last (a login between any two lookups): user by user.
			b.Run("changed", func(b *testing.B) {
				src := &Wtmpdb{Paths: []string{path}}
				defer src.Close()
				d := src.get()[0]
				accts := benchAccounts()
				for b.Loop() {
					d.memo = nil
					if ll, err := src.LastLogin(context.Background(), accts[7]); err != nil || !ll.Time.Equal(want(7)) {
						b.Fatalf("LastLogin = %+v, %v", ll, err)
					}
				}
			})
		})
	}
}

// BenchmarkWtmpdbSummary measures building the summary of a wtmpdb
// database of 10,000 users with 5 sessions each: the scan that the
// summaryAfter-th lookup after a change pays.
func BenchmarkWtmpdbSummary(b *testing.B) {
	path := filepath.Join(b.TempDir(), "wtmp.db")
	var rows []wrow
	for s := range 5 {
		for i := range benchUsers {
			login := t0.Add(time.Duration(s)*time.Hour + time.Duration(i)*time.Second)
			rows = append(rows, wrow{3, fmt.Sprintf("user%05d", i), login.UnixMicro(), nil, "pts/2", "client.example.org"})
		}
	}
	writeWtmpdb(b, path, rows)
	src := &Wtmpdb{Paths: []string{path}}
	defer src.Close()
	d := src.get()[0]
	a := acct("user00007", 1)
	if _, err := src.LastLogin(context.Background(), a); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		d.memo = &wtmpMemo{lookups: summaryAfter}
		if ll, err := src.LastLogin(context.Background(), a); err != nil || ll.TTY != "pts/2" {
			b.Fatalf("LastLogin = %+v, %v", ll, err)
		}
		if d.memo.(*wtmpMemo).users == nil {
			b.Fatal("no summary built")
		}
	}
}
