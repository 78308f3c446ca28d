// Package utmp reads login sessions from a Linux utmp file (utmp(5)) and
// provides them as a userinfo.Sessions.
//
// The record layout is glibc's on x86_64 and aarch64 (384 bytes, little
// endian, 32-bit time fields). Other architectures and other C libraries
// (musl writes no utmp) are not supported.
package utmp

import (
	"bytes"
	"encoding/binary"
	"io"
	"net/netip"
	"time"
)

// RecordSize is the size of one utmp record.
const RecordSize = 384

// MaxRecords bounds how many records Parse reads (a 25 MB file); a real
// utmp holds a few hundred at most.
const MaxRecords = 1 << 16

// Record types (ut_type).
const (
	Empty        = 0
	RunLevel     = 1
	BootTime     = 2
	NewTime      = 3
	OldTime      = 4
	InitProcess  = 5
	LoginProcess = 6
	UserProcess  = 7
	DeadProcess  = 8
	Accounting   = 9
)

// Field offsets within a record.
const (
	offType    = 0   // int16 + 2 bytes padding
	offPID     = 4   // int32
	offLine    = 8   // [32]byte
	offID      = 40  // [4]byte
	offUser    = 44  // [32]byte
	offHost    = 76  // [256]byte
	offExit    = 332 // int16 termination, int16 exit
	offSession = 336 // int32
	offSec     = 340 // int32
	offUsec    = 344 // int32
	offAddr    = 348 // [4]int32, network byte order
	// 364: 20 unused bytes
)

// Record is one decoded utmp entry. Strings are the bytes up to the first
// NUL, as stored; they are not validated or filtered.
type Record struct {
	Type    int16
	PID     int32
	Line    string // device name without "/dev/": "pts/3", "tty5"
	ID      string
	User    string
	Host    string
	Session int32
	Time    time.Time // zero when the record has no time
	Addr    netip.Addr
}

// Decode decodes one record. b must hold at least RecordSize bytes.
func Decode(b []byte) Record {
	_ = b[RecordSize-1]
	le := binary.LittleEndian
	r := Record{
		Type:    int16(le.Uint16(b[offType:])),
		PID:     int32(le.Uint32(b[offPID:])),
		Line:    cstring(b[offLine : offLine+32]),
		ID:      cstring(b[offID : offID+4]),
		User:    cstring(b[offUser : offUser+32]),
		Host:    cstring(b[offHost : offHost+256]),
		Session: int32(le.Uint32(b[offSession:])),
	}
	// The seconds field is 32 bits; read it unsigned so that times after
	// January 2038 still decode correctly (until 2106).
	if sec := le.Uint32(b[offSec:]); sec != 0 {
		usec := int64(le.Uint32(b[offUsec:]))
		if usec < 0 || usec >= 1e6 {
			usec = 0
		}
		r.Time = time.Unix(int64(sec), usec*1000)
	}
	r.Addr = decodeAddr(b[offAddr : offAddr+16])
	return r
}

// decodeAddr decodes ut_addr_v6: an IPv4 address in the first word with the
// other three zero, or an IPv6 address; all zero means no address.
func decodeAddr(b []byte) netip.Addr {
	var a [16]byte
	copy(a[:], b)
	if a == [16]byte{} {
		return netip.Addr{}
	}
	if bytes.Equal(a[4:], make([]byte, 12)) {
		return netip.AddrFrom4([4]byte(a[:4]))
	}
	return netip.AddrFrom16(a)
}

func cstring(b []byte) string {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	return string(b)
}

// Parse reads utmp records from r until EOF. A partial record at the end
// (a truncated or concurrently written file) is ignored, and at most
// MaxRecords records are read. The error is only for a failing reader;
// the complete records read so far are returned with it.
func Parse(r io.Reader) ([]Record, error) {
	var out []Record
	buf := make([]byte, RecordSize)
	for len(out) < MaxRecords {
		_, err := io.ReadFull(r, buf)
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		out = append(out, Decode(buf))
	}
	return out, nil
}
