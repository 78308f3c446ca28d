//go:build !linux

package logind

import (
	"os"
	"time"
)

// atime returns the best available approximation of a file's last access
// time; outside Linux that is its modification time.
func atime(fi os.FileInfo) time.Time {
	return fi.ModTime()
}
