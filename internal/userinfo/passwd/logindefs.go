package passwd

import (
	"bufio"
	"errors"
	"io"
	"io/fs"
	"os"
	"strconv"
	"strings"
)

// DefaultUIDMin is the first UID of ordinary (non-system) accounts when
// login.defs does not say otherwise.
const DefaultUIDMin = 1000

// DefaultLoginDefs is the usual path of the shadow-utils configuration.
const DefaultLoginDefs = "/etc/login.defs"

// ParseUIDMin reads login.defs(5) text and returns the value of UID_MIN.
// Values may be decimal, octal (leading 0) or hexadecimal (0x). When the
// key is absent or its value is not a valid number, DefaultUIDMin is
// returned; the last valid UID_MIN line wins. The error is only for a
// failing reader (the result is then DefaultUIDMin).
func ParseUIDMin(r io.Reader) (uint32, error) {
	uidMin := uint32(DefaultUIDMin)
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), 64*1024)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 2 || f[0] != "UID_MIN" {
			continue
		}
		v, err := strconv.ParseUint(strings.Trim(f[1], `"`), 0, 32)
		if err != nil {
			continue
		}
		uidMin = uint32(v)
	}
	if err := sc.Err(); err != nil {
		return DefaultUIDMin, err
	}
	return uidMin, nil
}

// UIDMin returns UID_MIN from the login.defs file at path (DefaultLoginDefs
// when path is ""). A missing file yields DefaultUIDMin and no error.
func UIDMin(path string) (uint32, error) {
	if path == "" {
		path = DefaultLoginDefs
	}
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return DefaultUIDMin, nil
	}
	if err != nil {
		return DefaultUIDMin, err
	}
	defer f.Close()
	return ParseUIDMin(f)
}
