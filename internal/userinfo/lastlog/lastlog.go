// Package lastlog reads users' last logins from the classic lastlog file
// (lastlog(8)) and chains several last-login sources.
//
// Debian 13 and other recent systems record last logins in lastlog2 and
// wtmpdb databases instead and no longer write /var/log/lastlog; package
// logins reads those.
package lastlog

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"time"

	"github.com/openfinger/finger/internal/userinfo"
)

// Default paths.
const (
	DefaultPath = "/var/log/lastlog"
	RecordSize  = 292 // int32 time, [32]byte line, [256]byte host
	offTime     = 0
	offLine     = 4
	offHost     = 36
	lineLen     = 32
	hostLen     = 256
)

var _ userinfo.LastLogins = (*File)(nil)

// File is a userinfo.LastLogins reading the lastlog file: a sparse file
// indexed by UID, one 292-byte record per UID (the layout of glibc on
// x86_64 and aarch64, little endian, 32-bit time). A record with a zero
// time, a UID past the end of the file, or a missing file is reported as
// ErrNotFound.
//
// A File is safe for concurrent use. It opens the file on every call and
// keeps nothing open between calls, so a replaced or removed file is seen
// at once and nothing needs closing. To keep the open out of a busy
// daemon's path, wrap it in a userinfo.CachedLastLogins, as hostusers does:
// repeated questions about a user are then answered from memory for a
// second.
type File struct {
	Path string // DefaultPath when empty
}

func (f *File) path() string {
	if f.Path == "" {
		return DefaultPath
	}
	return f.Path
}

// LastLogin returns the last login of a.
func (f *File) LastLogin(ctx context.Context, a *userinfo.Account) (userinfo.LastLogin, error) {
	if err := ctx.Err(); err != nil {
		return userinfo.LastLogin{}, err
	}
	if a == nil {
		return userinfo.LastLogin{}, fmt.Errorf("lastlog: no account: %w", userinfo.ErrNotFound)
	}
	fh, err := os.Open(f.path())
	if errors.Is(err, fs.ErrNotExist) {
		return userinfo.LastLogin{}, fmt.Errorf("lastlog: %w: %w", userinfo.ErrNotFound, err)
	}
	if err != nil {
		return userinfo.LastLogin{}, fmt.Errorf("lastlog: %w", err)
	}
	defer fh.Close()
	return ReadRecord(fh, a.UID)
}

// ReadRecord reads the record of uid from a lastlog file.
func ReadRecord(r io.ReaderAt, uid uint32) (userinfo.LastLogin, error) {
	var b [RecordSize]byte
	n, err := r.ReadAt(b[:], int64(uid)*RecordSize)
	if n < RecordSize {
		if err == nil || err == io.EOF {
			return userinfo.LastLogin{}, fmt.Errorf("lastlog: uid %d: %w", uid, userinfo.ErrNotFound)
		}
		return userinfo.LastLogin{}, fmt.Errorf("lastlog: uid %d: %w", uid, err)
	}
	ll, ok := Decode(b[:])
	if !ok {
		return userinfo.LastLogin{}, fmt.Errorf("lastlog: uid %d: never logged in: %w", uid, userinfo.ErrNotFound)
	}
	return ll, nil
}

// Decode decodes one record (at least RecordSize bytes). ok is false for
// an empty record (time zero). The time field is read as unsigned 32 bits,
// which keeps times after January 2038 correct until 2106.
func Decode(b []byte) (ll userinfo.LastLogin, ok bool) {
	_ = b[RecordSize-1]
	sec := binary.LittleEndian.Uint32(b[offTime:])
	if sec == 0 {
		return userinfo.LastLogin{}, false
	}
	return userinfo.LastLogin{
		Time: time.Unix(int64(sec), 0),
		TTY:  cstring(b[offLine : offLine+lineLen]),
		Host: cstring(b[offHost : offHost+hostLen]),
	}, true
}

func cstring(b []byte) string {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	return string(b)
}

// Chain is a userinfo.LastLogins that asks its sources in order and
// returns the first record found. Errors other than ErrNotFound do not
// stop the search; when no source has a record, the error wraps
// ErrNotFound and every other error met on the way.
type Chain []userinfo.LastLogins

var _ userinfo.LastLogins = Chain(nil)

// LastLogin returns the first record any source has for a.
func (c Chain) LastLogin(ctx context.Context, a *userinfo.Account) (userinfo.LastLogin, error) {
	var errs []error
	for _, src := range c {
		if err := ctx.Err(); err != nil {
			return userinfo.LastLogin{}, err
		}
		ll, err := src.LastLogin(ctx, a)
		if err == nil {
			return ll, nil
		}
		if !errors.Is(err, userinfo.ErrNotFound) {
			errs = append(errs, err)
		}
	}
	nf := fmt.Errorf("lastlog: %w", userinfo.ErrNotFound)
	if len(errs) == 0 {
		return userinfo.LastLogin{}, nf
	}
	return userinfo.LastLogin{}, errors.Join(append([]error{nf}, errs...)...)
}
