package logind

import (
	"os"
	"syscall"
	"time"
)

// atime returns the last access time of a file: for a terminal, the last
// time its user typed something.
func atime(fi os.FileInfo) time.Time {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return time.Unix(int64(st.Atim.Sec), int64(st.Atim.Nsec))
	}
	return fi.ModTime()
}
