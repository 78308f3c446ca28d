//go:build !linux

package finger

import "net"

// sendLastLine reports false: the caller writes the line as usual.
func sendLastLine(c net.Conn, line string) (int, bool) { return 0, false }
