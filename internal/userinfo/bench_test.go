package userinfo_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/openfinger/finger"
	"github.com/openfinger/finger/internal/userinfo"
	"github.com/openfinger/finger/internal/userinfo/virtual"
)

func benchmarkQuery(b *testing.B, rs *userinfo.Responder, line string) {
	q, err := finger.ParseQuery(line)
	if err != nil {
		b.Fatal(err)
	}
	req := &finger.Request{Query: q, Line: line}
	ctx := context.Background()
	var buf bytes.Buffer
	rs.ServeFinger(ctx, &buf, req)
	b.SetBytes(int64(buf.Len()))
	b.ReportAllocs()
	for b.Loop() {
		rs.ServeFinger(ctx, io.Discard, req)
	}
}

// A full {U} answer: account, two sessions, last login, mail and a 1 KB
// .plan, among 1000 accounts.
func BenchmarkUser(b *testing.B) {
	users := labUsers()
	for i := range 1000 {
		users = append(users, virtual.User{Account: userinfo.Account{
			Login: fmt.Sprintf("user%04d", i), UID: uint32(5000 + i), Name: fmt.Sprintf("User Number%d", i),
			Home: fmt.Sprintf("/home/user%04d", i), Shell: "/bin/bash"}})
	}
	plan := []byte(strings.Repeat("Going down the rabbit hole, 你好.\n", 1024/36+1)[:1024])
	for i := range users {
		if users[i].Account.Login == "fgtest_alice" {
			users[i].Files[".plan"] = plan
		}
	}
	rs, _ := newLab(users...)
	b.Run("login", func(b *testing.B) { benchmarkQuery(b, rs, "fgtest_alice") })
	b.Run("realname", func(b *testing.B) { benchmarkQuery(b, rs, "Liddell") })
}

// {C} with 500 sessions of 250 users.
func BenchmarkList(b *testing.B) {
	var users []virtual.User
	login := time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC)
	for i := range 250 {
		users = append(users, virtual.User{
			Account: userinfo.Account{Login: fmt.Sprintf("user%04d", i), UID: uint32(5000 + i),
				Name: fmt.Sprintf("User Number%d", i), Office: "Room 101", OfficePhone: "5551234"},
			Sessions: []userinfo.Session{
				{TTY: fmt.Sprintf("pts/%d", 2*i), Host: "client.example.org", LoginTime: login, Idle: 3 * time.Minute},
				{TTY: fmt.Sprintf("pts/%d", 2*i+1), LoginTime: login, Idle: 2 * time.Hour, MessagesOff: true},
			},
		})
	}
	rs, _ := newLab(users...)
	b.Run("short", func(b *testing.B) { benchmarkQuery(b, rs, "") })
	b.Run("verbose", func(b *testing.B) { benchmarkQuery(b, rs, "/W") })
}
