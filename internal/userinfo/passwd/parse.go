package passwd

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"strconv"
	"strings"

	"github.com/openfinger/finger/internal/userinfo"
)

// MaxLineLen is the longest passwd line that is parsed. Longer lines are
// skipped whole (glibc would also choke on them), never split.
const MaxLineLen = 64 * 1024

// ErrBadLine is returned by ParseLine for a line that is not a usable
// passwd entry.
var ErrBadLine = errors.New("passwd: malformed line")

// ParseLine parses one passwd(5) line "login:password:uid:gid:gecos:home:shell"
// (without its line end). Comments, blank lines, NIS compat entries ('+'
// and '-'), lines with fewer than seven fields, an empty or unprintable
// login and non-numeric IDs are rejected with ErrBadLine. A colon in the
// shell field is kept as part of the shell, as glibc does.
func ParseLine(line string) (*userinfo.Account, error) {
	if line == "" || line[0] == '#' || line[0] == '+' || line[0] == '-' {
		return nil, ErrBadLine
	}
	f := strings.SplitN(line, ":", 7)
	if len(f) != 7 {
		return nil, ErrBadLine
	}
	login := f[0]
	if !validLogin(login) {
		return nil, ErrBadLine
	}
	uid, err := strconv.ParseUint(f[2], 10, 32)
	if err != nil {
		return nil, ErrBadLine
	}
	gid, err := strconv.ParseUint(f[3], 10, 32)
	if err != nil {
		return nil, ErrBadLine
	}
	return newAccount(login, uid, gid, f[4], f[5], strings.TrimRight(f[6], "\r")), nil
}

// newAccount builds an account from passwd fields, splitting the GECOS
// field.
func newAccount(login string, uid, gid uint64, gecos, home, shell string) *userinfo.Account {
	g := ParseGECOS(gecos, login)
	return &userinfo.Account{
		Login:       login,
		UID:         uint32(uid),
		GID:         uint32(gid),
		Name:        g.Name,
		Office:      g.Office,
		OfficePhone: g.OfficePhone,
		HomePhone:   g.HomePhone,
		Other:       g.Other,
		Home:        home,
		Shell:       shell,
	}
}

// validLogin accepts any non-empty login of at most 256 bytes without
// white space, control bytes, ':' or '/'. It is deliberately liberal
// (local sites use UTF-8 and upper case logins); it only keeps out what
// cannot be a login and what would be unsafe in a file name.
func validLogin(s string) bool {
	if s == "" || len(s) > 256 || s == "." || s == ".." {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c == 0x7f || c == ':' || c == '/' {
			return false
		}
	}
	return true
}

// Parse reads a passwd file and returns its valid entries in file order.
// Malformed lines, and lines longer than MaxLineLen, are skipped. The error
// is only for a failing reader; the entries read so far are returned with it.
func Parse(r io.Reader) ([]*userinfo.Account, error) {
	var out []*userinfo.Account
	err := eachLine(r, func(line []byte) {
		if a, err := ParseLine(string(line)); err == nil {
			out = append(out, a)
		}
	})
	return out, err
}

// eachLine calls fn for each line of r without its "\n" (a final line
// without a line end included). Lines longer than MaxLineLen are dropped.
func eachLine(r io.Reader, fn func([]byte)) error {
	br := bufio.NewReaderSize(r, 16*1024)
	var long []byte
	tooLong := false
	for {
		chunk, err := br.ReadSlice('\n')
		switch {
		case err == bufio.ErrBufferFull:
			if !tooLong {
				if len(long)+len(chunk) > MaxLineLen {
					tooLong, long = true, long[:0]
				} else {
					long = append(long, chunk...)
				}
			}
			continue
		case err != nil && err != io.EOF:
			return err
		}
		line := chunk
		if len(long) > 0 || tooLong {
			if !tooLong && len(long)+len(chunk) <= MaxLineLen+1 {
				long = append(long, chunk...)
				line = long
			} else {
				line = nil
			}
		}
		if line != nil {
			line = bytes.TrimSuffix(line, []byte("\n"))
			if len(line) > 0 {
				fn(line)
			}
		}
		long, tooLong = long[:0], false
		if err == io.EOF {
			return nil
		}
	}
}
