//go:build !linux

package finger

import (
	"errors"
	"net/netip"
)

func fwdOwnNetns(netip.Prefix) error { return errors.New("network namespaces are Linux only") }
