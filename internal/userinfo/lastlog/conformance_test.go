package lastlog

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/openfinger/finger/internal/userinfo"
	"github.com/openfinger/finger/internal/userinfo/userinfotest"
)

func TestConformanceLastLogins(t *testing.T) {
	path := filepath.Join(t.TempDir(), "lastlog")
	writeLastlog(t, path, map[uint32][]byte{
		1001: record(t, t0, "pts/3", "client.example.org"),
		1003: record(t, 0, "tty9", ""),
	}, -1)
	alice := &userinfo.Account{Login: "alice", UID: 1001}
	records := map[*userinfo.Account]userinfo.LastLogin{
		alice: {Time: time.Unix(t0, 0), TTY: "pts/3", Host: "client.example.org"},
	}
	never := []*userinfo.Account{{Login: "bob", UID: 1002}, {Login: "carol", UID: 1003}, {Login: "far", UID: 1 << 31}}
	userinfotest.TestLastLogins(t, &File{Path: path}, records, never)
	userinfotest.TestLastLogins(t, Chain{&File{Path: filepath.Join(t.TempDir(), "missing")}, &File{Path: path}}, records, never)
}
