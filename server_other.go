//go:build !unix

package finger

import "net"

// waitReadable returns at once where descriptors cannot be peeked at; the
// query is then read directly.
func waitReadable(c net.Conn) error { return nil }

// readNow reports false: the query is waited for and read as usual.
func readNow(c net.Conn, max int) (preRead, error, bool) { return preRead{}, nil, false }

// descriptorLimit returns 0: the descriptor limit is not known here.
func descriptorLimit() int { return 0 }
