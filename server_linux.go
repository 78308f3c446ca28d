package finger

import (
	"net"
	"syscall"
)

// sendLastLine sends line and a CRLF as the last bytes of c and shuts its
// sending side, so that the line leaves with the FIN in one segment
// (MSG_MORE holds the bytes until the shutdown sends them) and the client
// is woken once for both: the line cannot be lost to a reset if the client
// sends something before the close. It reports the bytes sent and whether
// it sent them; when it did not (c is not a socket, or the line cannot
// leave at once), nothing was sent and the caller writes the line as
// usual.
func sendLastLine(c net.Conn, line string) (int, bool) {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return 0, false
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return 0, false
	}
	b := []byte(line + "\r\n")
	n := 0
	cerr := rc.Control(func(fd uintptr) {
		n, err = syscall.SendmsgN(int(fd), b, nil, nil, syscall.MSG_MORE|syscall.MSG_NOSIGNAL|syscall.MSG_DONTWAIT)
		if n > 0 {
			syscall.Shutdown(int(fd), syscall.SHUT_WR)
		}
	})
	if cerr != nil || n <= 0 {
		return 0, false
	}
	return n, true
}
