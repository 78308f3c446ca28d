package mail

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/openfinger/finger/internal/userinfo"
)

func TestMail(t *testing.T) {
	dir := t.TempDir()
	received := time.Date(2026, 11, 23, 21, 36, 0, 0, time.UTC)
	read := time.Date(2026, 11, 23, 21, 35, 0, 0, time.UTC)
	mk := func(name, data string, atime, mtime time.Time) {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(data), 0o660); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(p, atime, mtime); err != nil {
			t.Fatal(err)
		}
	}
	mk("unread", "From a@b\n\nhello\n", read, received)
	mk("read", "From a@b\n\nhello\n", received, read)
	mk("same", "From a@b\n\nhello\n", read, read)
	mk("empty", "", read, received)
	mk("target", "From a@b\n", read, received)
	if err := os.Symlink("target", filepath.Join(dir, "symlink")); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "maildir"), 0o700); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		login string
		want  userinfo.MailStatus
	}{
		{"unread", userinfo.MailStatus{Exists: true, Unread: true, Received: received, Read: read}},
		{"read", userinfo.MailStatus{Exists: true, Unread: false, Received: read, Read: received}},
		{"same", userinfo.MailStatus{Exists: true, Unread: false, Received: read, Read: read}},
		{"empty", userinfo.MailStatus{}},
		{"symlink", userinfo.MailStatus{}},
		{"maildir", userinfo.MailStatus{}},
		{"nobody", userinfo.MailStatus{}},
		{"", userinfo.MailStatus{}},
		{"..", userinfo.MailStatus{}},
		{"../unread", userinfo.MailStatus{}},
	}
	s := &Spool{Dir: dir}
	for _, tt := range tests {
		got, err := s.Mail(context.Background(), &userinfo.Account{Login: tt.login})
		if err != nil || !got.Received.Equal(tt.want.Received) || !got.Read.Equal(tt.want.Read) ||
			got.Exists != tt.want.Exists || got.Unread != tt.want.Unread {
			t.Errorf("Mail(%q) = %+v, %v, want %+v", tt.login, got, err, tt.want)
		}
	}
}

func TestMailErrors(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	// A spool "directory" that is a file: no such spool, no mail.
	file := filepath.Join(dir, "file")
	os.WriteFile(file, []byte("x"), 0o644)
	if got, err := (&Spool{Dir: file}).Mail(ctx, &userinfo.Account{Login: "u"}); err != nil || got.Exists {
		t.Errorf("Mail(spool dir is a file) = %+v, %v, want no mail, nil", got, err)
	}
	if got, err := (&Spool{Dir: filepath.Join(dir, "missing")}).Mail(ctx, &userinfo.Account{Login: "u"}); err != nil || got.Exists {
		t.Errorf("Mail(missing spool dir) = %+v, %v, want no mail, nil", got, err)
	}
	if got, err := (&Spool{Dir: dir}).Mail(ctx, nil); err != nil || got.Exists {
		t.Errorf("Mail(nil account) = %+v, %v, want no mail, nil", got, err)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := (&Spool{Dir: dir}).Mail(cctx, &userinfo.Account{Login: "u"}); !errors.Is(err, context.Canceled) {
		t.Errorf("Mail(canceled) error = %v, want Canceled", err)
	}
	if (&Spool{}).dir() != DefaultDir {
		t.Errorf("Spool{}.dir() = %q, want %q", (&Spool{}).dir(), DefaultDir)
	}
}
