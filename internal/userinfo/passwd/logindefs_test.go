package passwd

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"testing/iotest"
)

func TestParseUIDMin(t *testing.T) {
	tests := []struct {
		name, in string
		want     uint32
	}{
		{"empty", "", DefaultUIDMin},
		{"debian", "# comment\nUID_MIN\t\t\t 1000\nUID_MAX 60000\n", 1000},
		{"old", "UID_MIN 500\n", 500},
		{"hex", "UID_MIN 0x1f4\n", 500},
		{"octal", "UID_MIN 0764\n", 500},
		{"commented", "#UID_MIN 500\n", DefaultUIDMin},
		{"no value", "UID_MIN\n", DefaultUIDMin},
		{"garbage value", "UID_MIN lots\n", DefaultUIDMin},
		{"too big", "UID_MIN 99999999999\n", DefaultUIDMin},
		{"last wins", "UID_MIN 500\nUID_MIN 2000\n", 2000},
		{"invalid later ignored", "UID_MIN 500\nUID_MIN x\n", 500},
		{"prefix key", "UID_MINIMUM 5\nSYS_UID_MIN 100\n", DefaultUIDMin},
		{"no newline", "UID_MIN 1500", 1500},
	}
	for _, tt := range tests {
		got, err := ParseUIDMin(strings.NewReader(tt.in))
		if err != nil || got != tt.want {
			t.Errorf("%s: ParseUIDMin(%q) = %d, %v, want %d, nil", tt.name, tt.in, got, err, tt.want)
		}
	}
}

func TestParseUIDMinReadError(t *testing.T) {
	boom := errors.New("boom")
	got, err := ParseUIDMin(iotest.ErrReader(boom))
	if got != DefaultUIDMin || !errors.Is(err, boom) {
		t.Errorf("ParseUIDMin(failing reader) = %d, %v, want %d, %v", got, err, DefaultUIDMin, boom)
	}
}

func TestUIDMin(t *testing.T) {
	tests := []struct {
		path    string
		want    uint32
		wantErr bool
	}{
		{"testdata/login.defs", 1000, false},
		{"testdata/login.defs.hex", 500, false},
		{"testdata/login.defs.bad", DefaultUIDMin, false},
		{filepath.Join(t.TempDir(), "missing"), DefaultUIDMin, false},
		{t.TempDir(), DefaultUIDMin, true}, // a directory: read error
	}
	for _, tt := range tests {
		got, err := UIDMin(tt.path)
		if got != tt.want || (err != nil) != tt.wantErr {
			t.Errorf("UIDMin(%q) = %d, %v, want %d, error %v", tt.path, got, err, tt.want, tt.wantErr)
		}
	}
}
