package utmp

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"testing/iotest"
	"time"

	"github.com/openfinger/finger/internal/testenv"
	"github.com/openfinger/finger/internal/userinfo"
)

// rawUtmp mirrors glibc's struct utmp on x86_64/aarch64, field by field,
// so that encoding/binary lays fixtures out independently of Decode.
type rawUtmp struct {
	Type    int16
	_       [2]byte
	PID     int32
	Line    [32]byte
	ID      [4]byte
	User    [32]byte
	Host    [256]byte
	Term    int16
	Exit    int16
	Session int32
	Sec     int32
	Usec    int32
	Addr    [4]int32
	_       [20]byte
}

type rec struct {
	typ            int16
	pid            int32
	line, id, user string
	host           string
	sec, usec      int32
	addr           [16]byte
}

func encode(t testing.TB, recs ...rec) []byte {
	t.Helper()
	var buf bytes.Buffer
	for _, r := range recs {
		var u rawUtmp
		u.Type, u.PID, u.Sec, u.Usec = r.typ, r.pid, r.sec, r.usec
		copy(u.Line[:], r.line)
		copy(u.ID[:], r.id)
		copy(u.User[:], r.user)
		copy(u.Host[:], r.host)
		for i := range u.Addr {
			u.Addr[i] = int32(binary.LittleEndian.Uint32(r.addr[4*i:]))
		}
		if err := binary.Write(&buf, binary.LittleEndian, &u); err != nil {
			t.Fatal(err)
		}
	}
	return buf.Bytes()
}

func TestLayout(t *testing.T) {
	if n := binary.Size(rawUtmp{}); n != RecordSize {
		t.Fatalf("binary.Size(rawUtmp) = %d, want %d", n, RecordSize)
	}
}

const t0 = 1795458960 // 2026-11-23 18:36:00 UTC

func v4(a, b, c, d byte) (x [16]byte) { x[0], x[1], x[2], x[3] = a, b, c, d; return }

var fixture = []rec{
	{typ: BootTime, line: "~", id: "~~", user: "reboot", host: "6.1.0-28-amd64", sec: t0 - 86400},
	{typ: RunLevel, line: "~", id: "~~", user: "runlevel", sec: t0 - 86400},
	{typ: LoginProcess, pid: 500, line: "tty1", id: "tty1", user: "LOGIN", sec: t0 - 86000},
	{typ: UserProcess, pid: 1201, line: "tty5", id: "tty5", user: "fgtest_alice", host: "client.example.org",
		sec: t0, usec: 250000, addr: v4(192, 0, 2, 7)},
	{typ: UserProcess, pid: 1202, line: "pts/3", id: "ts/3", user: "fgtest_bob", sec: t0 + 60},
	{typ: DeadProcess, pid: 1100, line: "pts/1", id: "ts/1", sec: t0 - 100},
	{typ: UserProcess, pid: 1203, line: "pts/9", id: "ts/9", user: "", sec: t0}, // no user: skipped
	{typ: UserProcess, pid: 1204, line: ":0", id: ":0", user: "fgtest_carol", host: ":0", sec: t0 + 120,
		addr: [16]byte{0x20, 0x01, 0x0d, 0xb8, 15: 1}},
	// Full-width fields without NUL terminators.
	{typ: UserProcess, pid: 1205, line: "pts/0123456789012345678901234567", id: "abcd",
		user: "u2345678901234567890123456789012", host: string(bytes.Repeat([]byte("h"), 256)), sec: t0},
	{typ: UserProcess, pid: 1206, line: "../../etc/shadow", id: "x", user: "evil", sec: t0},
	{typ: UserProcess, pid: 1207, line: "/etc/passwd", id: "y", user: "evil2", sec: -1}, // 0xffffffff: year 2106
}

func TestParse(t *testing.T) {
	data := encode(t, fixture...)
	got, err := Parse(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("Parse error %v", err)
	}
	if len(got) != len(fixture) {
		t.Fatalf("Parse returned %d records, want %d", len(got), len(fixture))
	}
	want := []Record{
		3: {Type: UserProcess, PID: 1201, Line: "tty5", ID: "tty5", User: "fgtest_alice", Host: "client.example.org",
			Time: time.Unix(t0, 250000000), Addr: netip.MustParseAddr("192.0.2.7")},
		4: {Type: UserProcess, PID: 1202, Line: "pts/3", ID: "ts/3", User: "fgtest_bob", Time: time.Unix(t0+60, 0)},
		7: {Type: UserProcess, PID: 1204, Line: ":0", ID: ":0", User: "fgtest_carol", Host: ":0",
			Time: time.Unix(t0+120, 0), Addr: netip.MustParseAddr("2001:db8::1")},
		8: {Type: UserProcess, PID: 1205, Line: "pts/0123456789012345678901234567", ID: "abcd",
			User: "u2345678901234567890123456789012", Host: string(bytes.Repeat([]byte("h"), 256)), Time: time.Unix(t0, 0)},
		10: {Type: UserProcess, PID: 1207, Line: "/etc/passwd", ID: "y", User: "evil2", Time: time.Unix(1<<32-1, 0)},
	}
	for i, w := range want {
		if w.Type == 0 {
			continue
		}
		if g := got[i]; g != w {
			t.Errorf("Parse record %d = %+v, want %+v", i, g, w)
		}
	}
	if got[0].Type != BootTime || got[0].User != "reboot" || got[5].Type != DeadProcess {
		t.Errorf("Parse records 0, 5 = %+v, %+v, want BOOT_TIME reboot and DEAD_PROCESS", got[0], got[5])
	}
}

func TestParseTruncated(t *testing.T) {
	data := encode(t, fixture[3], fixture[4], fixture[7])
	tests := []struct {
		name string
		data []byte
		want int
	}{
		{"empty", nil, 0},
		{"one byte", data[:1], 0},
		{"almost one record", data[:RecordSize-1], 0},
		{"one record", data[:RecordSize], 1},
		{"two and a bit", data[:2*RecordSize+100], 2},
		{"all", data, 3},
		{"garbage tail", append(append([]byte{}, data...), "garbage"...), 3},
	}
	for _, tt := range tests {
		for _, rd := range []struct {
			kind string
			r    io.Reader
		}{{"whole", bytes.NewReader(tt.data)}, {"onebyte", iotest.OneByteReader(bytes.NewReader(tt.data))}} {
			got, err := Parse(rd.r)
			if err != nil || len(got) != tt.want {
				t.Errorf("%s/%s: Parse(%d bytes) = %d records, %v, want %d, nil", tt.name, rd.kind, len(tt.data), len(got), err, tt.want)
			}
		}
	}
}

func TestParseGarbage(t *testing.T) {
	// Random-looking bytes decode to something without a panic.
	data := make([]byte, 3*RecordSize+17)
	for i := range data {
		data[i] = byte(i*131 + 7)
	}
	got, err := Parse(bytes.NewReader(data))
	if err != nil || len(got) != 3 {
		t.Errorf("Parse(garbage) = %d records, %v, want 3, nil", len(got), err)
	}
	boom := errors.New("boom")
	got, err = Parse(io.MultiReader(bytes.NewReader(encode(t, fixture[3])), iotest.ErrReader(boom)))
	if !errors.Is(err, boom) || len(got) != 1 {
		t.Errorf("Parse(failing reader) = %d records, %v, want 1, %v", len(got), err, boom)
	}
}

func TestParseMaxRecords(t *testing.T) {
	r := io.LimitReader(zeroReader{}, (MaxRecords+10)*RecordSize)
	got, err := Parse(r)
	if err != nil || len(got) != MaxRecords {
		t.Errorf("Parse(huge file) = %d records, %v, want %d", len(got), err, MaxRecords)
	}
}

type zeroReader struct{}

func (zeroReader) Read(b []byte) (int, error) { clear(b); return len(b), nil }

// mktty creates a character device (like /dev/null) at dev/name with mode
// and atime.
func mktty(t *testing.T, dev, name string, mode uint32, atime time.Time) {
	t.Helper()
	p := filepath.Join(dev, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mknod(p, syscall.S_IFCHR|mode, 1<<8|3); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, os.FileMode(mode)); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(p, atime, atime); err != nil {
		t.Fatal(err)
	}
}

func TestSessions(t *testing.T) {
	testenv.Root(t, "to create terminal device nodes")
	dir := t.TempDir()
	dev := filepath.Join(dir, "dev")
	now := time.Unix(t0+3*86400, 0)
	mktty(t, dev, "tty5", 0o620, now.Add(-2*24*time.Hour-3*time.Hour))           // group-writable: messages on
	mktty(t, dev, "pts/3", 0o600, now.Add(-90*time.Second))                      // messages off
	mktty(t, dev, "pts/0123456789012345678901234567", 0o620, now.Add(time.Hour)) // atime in the future
	// A regular file where a tty should be gives no information.
	if err := os.WriteFile(filepath.Join(dir, "shadow"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "utmp")
	if err := os.WriteFile(path, encode(t, fixture...), 0o644); err != nil {
		t.Fatal(err)
	}
	s := &Sessions{Path: path, Dev: dev, now: func() time.Time { return now }}
	got, err := s.Sessions(context.Background())
	if err != nil {
		t.Fatalf("Sessions() error %v", err)
	}
	want := []userinfo.Session{
		{Login: "fgtest_alice", TTY: "tty5", Host: "client.example.org", LoginTime: time.Unix(t0, 250000000),
			Idle: 51 * time.Hour},
		{Login: "fgtest_bob", TTY: "pts/3", LoginTime: time.Unix(t0+60, 0), Idle: 90 * time.Second, MessagesOff: true},
		{Login: "fgtest_carol", TTY: ":0", Host: ":0", LoginTime: time.Unix(t0+120, 0), Idle: -1},
		{Login: "u2345678901234567890123456789012", TTY: "pts/0123456789012345678901234567",
			Host: string(bytes.Repeat([]byte("h"), 256)), LoginTime: time.Unix(t0, 0), Idle: 0},
		{Login: "evil", TTY: "../../etc/shadow", LoginTime: time.Unix(t0, 0), Idle: -1},
		{Login: "evil2", TTY: "/etc/passwd", LoginTime: time.Unix(1<<32-1, 0), Idle: -1},
	}
	if len(got) != len(want) {
		t.Fatalf("Sessions() = %d sessions %+v, want %d", len(got), got, len(want))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("Sessions()[%d] = %+v, want %+v", i, got[i], want[i])
		}
	}
}

func TestSessionsMissingAndBad(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	got, err := (&Sessions{Path: filepath.Join(dir, "missing")}).Sessions(ctx)
	if err != nil || got == nil || len(got) != 0 {
		t.Errorf("Sessions(missing file) = %#v, %v, want empty list, nil", got, err)
	}
	empty := filepath.Join(dir, "empty")
	os.WriteFile(empty, nil, 0o644)
	got, err = (&Sessions{Path: empty}).Sessions(ctx)
	if err != nil || got == nil || len(got) != 0 {
		t.Errorf("Sessions(empty file) = %#v, %v, want empty list, nil", got, err)
	}
	trunc := filepath.Join(dir, "trunc")
	os.WriteFile(trunc, encode(t, fixture[3], fixture[4])[:RecordSize+200], 0o644)
	got, err = (&Sessions{Path: trunc, Dev: filepath.Join(dir, "nodev")}).Sessions(ctx)
	if err != nil || len(got) != 1 || got[0].Login != "fgtest_alice" || got[0].Idle != -1 {
		t.Errorf("Sessions(truncated file) = %+v, %v, want fgtest_alice only with unknown idle", got, err)
	}
	if _, err := (&Sessions{Path: dir}).Sessions(ctx); err == nil {
		t.Errorf("Sessions(directory) error = nil, want an error")
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := (&Sessions{Path: trunc}).Sessions(cctx); !errors.Is(err, context.Canceled) {
		t.Errorf("Sessions(canceled) error = %v, want Canceled", err)
	}
}

func FuzzParse(f *testing.F) {
	f.Add(encode(f, fixture[3]))
	f.Add(encode(f, fixture[8], fixture[0])[:RecordSize+5])
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		got, err := Parse(bytes.NewReader(data))
		if err != nil {
			t.Fatalf("Parse(%d bytes) error %v", len(data), err)
		}
		if len(got) != len(data)/RecordSize {
			t.Fatalf("Parse(%d bytes) = %d records, want %d", len(data), len(got), len(data)/RecordSize)
		}
		for _, r := range got {
			if len(r.Line) > 32 || len(r.User) > 32 || len(r.Host) > 256 || len(r.ID) > 4 {
				t.Fatalf("Parse: oversized field in %+v", r)
			}
		}
	})
}
