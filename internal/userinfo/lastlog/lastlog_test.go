package lastlog

import (
	"context"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/openfinger/finger/internal/userinfo"
)

// rawLastlog mirrors struct lastlog on x86_64/aarch64 glibc.
type rawLastlog struct {
	Time int32
	Line [32]byte
	Host [256]byte
}

func record(t testing.TB, sec int32, line, host string) []byte {
	t.Helper()
	var r rawLastlog
	r.Time = sec
	copy(r.Line[:], line)
	copy(r.Host[:], host)
	var b strings.Builder
	if err := binary.Write(&b, binary.LittleEndian, &r); err != nil {
		t.Fatal(err)
	}
	return []byte(b.String())
}

const t0 = 1795458960

// writeLastlog builds a sparse lastlog file with the given records by UID.
func writeLastlog(t testing.TB, path string, recs map[uint32][]byte, size int64) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for uid, b := range recs {
		if _, err := f.WriteAt(b, int64(uid)*RecordSize); err != nil {
			t.Fatal(err)
		}
	}
	if size >= 0 {
		if err := f.Truncate(size); err != nil {
			t.Fatal(err)
		}
	}
}

func TestLayout(t *testing.T) {
	if n := binary.Size(rawLastlog{}); n != RecordSize {
		t.Fatalf("binary.Size(rawLastlog) = %d, want %d", n, RecordSize)
	}
}

func TestFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "lastlog")
	long := strings.Repeat("h", 256)
	writeLastlog(t, path, map[uint32][]byte{
		0:     record(t, t0-3600, "tty1", ""),
		1001:  record(t, t0, "pts/3", "client.example.org"),
		1002:  record(t, -1, "pts/0123456789012345678901234567", long), // full fields, time 0xffffffff
		1003:  record(t, 0, "tty9", "ignored"),                         // zero time: never
		60000: record(t, t0, "tty2", ""),                               // cut short below
	}, 60000*RecordSize+100)
	f := &File{Path: path}
	tests := []struct {
		uid  uint32
		want *userinfo.LastLogin // nil: ErrNotFound
	}{
		{0, &userinfo.LastLogin{Time: time.Unix(t0-3600, 0), TTY: "tty1"}},
		{1001, &userinfo.LastLogin{Time: time.Unix(t0, 0), TTY: "pts/3", Host: "client.example.org"}},
		{1002, &userinfo.LastLogin{Time: time.Unix(1<<32-1, 0), TTY: "pts/0123456789012345678901234567", Host: long}},
		{1003, nil},
		{1004, nil}, // hole in the sparse file
		{60000, nil},
		{60001, nil},
		{4294967295, nil},
	}
	for _, tt := range tests {
		got, err := f.LastLogin(context.Background(), &userinfo.Account{Login: "u", UID: tt.uid})
		if tt.want == nil {
			if !errors.Is(err, userinfo.ErrNotFound) {
				t.Errorf("LastLogin(uid %d) = %+v, %v, want ErrNotFound", tt.uid, got, err)
			}
			continue
		}
		if err != nil || got != *tt.want {
			t.Errorf("LastLogin(uid %d) = %+v, %v, want %+v", tt.uid, got, err, *tt.want)
		}
	}
}

func TestFileErrors(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	acc := &userinfo.Account{Login: "u", UID: 1}
	if _, err := (&File{Path: filepath.Join(dir, "missing")}).LastLogin(ctx, acc); !errors.Is(err, userinfo.ErrNotFound) {
		t.Errorf("LastLogin(missing file) error = %v, want ErrNotFound", err)
	}
	if _, err := (&File{Path: dir}).LastLogin(ctx, acc); err == nil || errors.Is(err, userinfo.ErrNotFound) {
		t.Errorf("LastLogin(directory) error = %v, want a read error", err)
	}
	if _, err := (&File{Path: dir}).LastLogin(ctx, nil); !errors.Is(err, userinfo.ErrNotFound) {
		t.Errorf("LastLogin(nil account) error = %v, want ErrNotFound", err)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := (&File{Path: dir}).LastLogin(cctx, acc); !errors.Is(err, context.Canceled) {
		t.Errorf("LastLogin(canceled) error = %v, want Canceled", err)
	}
}

func TestReadRecordReaderError(t *testing.T) {
	boom := errors.New("boom")
	_, err := ReadRecord(errReaderAt{boom}, 5)
	if !errors.Is(err, boom) || errors.Is(err, userinfo.ErrNotFound) {
		t.Errorf("ReadRecord(failing reader) error = %v, want %v", err, boom)
	}
}

type errReaderAt struct{ err error }

func (e errReaderAt) ReadAt([]byte, int64) (int, error) { return 0, e.err }

type fakeSource struct {
	ll    userinfo.LastLogin
	err   error
	calls *int
}

func (f fakeSource) LastLogin(context.Context, *userinfo.Account) (userinfo.LastLogin, error) {
	if f.calls != nil {
		*f.calls++
	}
	return f.ll, f.err
}

func TestChain(t *testing.T) {
	ctx := context.Background()
	acc := &userinfo.Account{Login: "u", UID: 1}
	rec1 := userinfo.LastLogin{Time: time.Unix(t0, 0), TTY: "tty1"}
	rec2 := userinfo.LastLogin{Time: time.Unix(t0+1, 0), TTY: "pts/2"}
	notFound := fakeSource{err: userinfo.ErrNotFound}
	broken := fakeSource{err: errors.New("permission denied")}
	tests := []struct {
		name      string
		chain     Chain
		want      userinfo.LastLogin
		wantErr   bool
		errBroken bool // the error also mentions the broken source
	}{
		{"empty", Chain{}, userinfo.LastLogin{}, true, false},
		{"first wins", Chain{fakeSource{ll: rec1}, fakeSource{ll: rec2}}, rec1, false, false},
		{"fallback", Chain{notFound, fakeSource{ll: rec2}}, rec2, false, false},
		{"error skipped", Chain{broken, fakeSource{ll: rec2}}, rec2, false, false},
		{"none", Chain{notFound, notFound}, userinfo.LastLogin{}, true, false},
		{"none with error", Chain{broken, notFound}, userinfo.LastLogin{}, true, true},
	}
	for _, tt := range tests {
		got, err := tt.chain.LastLogin(ctx, acc)
		if got != tt.want || (err != nil) != tt.wantErr {
			t.Errorf("%s: Chain.LastLogin = %+v, %v, want %+v, error %v", tt.name, got, err, tt.want, tt.wantErr)
		}
		if tt.wantErr && !errors.Is(err, userinfo.ErrNotFound) {
			t.Errorf("%s: Chain.LastLogin error = %v, want ErrNotFound", tt.name, err)
		}
		if tt.errBroken && !strings.Contains(err.Error(), "permission denied") {
			t.Errorf("%s: Chain.LastLogin error = %v, want it to mention the failing source", tt.name, err)
		}
	}
	calls := 0
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := (Chain{fakeSource{ll: rec1, calls: &calls}}).LastLogin(cctx, acc); !errors.Is(err, context.Canceled) || calls != 0 {
		t.Errorf("Chain.LastLogin(canceled) = %v after %d calls, want Canceled after 0", err, calls)
	}
	// A real file in a chain.
	path := filepath.Join(t.TempDir(), "lastlog")
	writeLastlog(t, path, map[uint32][]byte{1: record(t, t0, "tty3", "")}, -1)
	c := Chain{&File{Path: filepath.Join(t.TempDir(), "missing")}, &File{Path: path}}
	if got, err := c.LastLogin(ctx, acc); err != nil || got.TTY != "tty3" {
		t.Errorf("Chain{missing, file}.LastLogin = %+v, %v, want tty3", got, err)
	}
}
