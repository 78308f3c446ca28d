// Package privilege gives up root: it switches every thread of the
// process to an unprivileged user and group, optionally keeping
// CAP_DAC_READ_SEARCH alone, sets no_new_privs, verifies the result from
// /proc, and restricts the filesystem view with Landlock.
//
// fingerd calls Drop after binding its sockets and before serving any
// query, then Restrict.
package privilege

import (
	"errors"
	"fmt"
	"os"
	"os/user"
	"strconv"
)

// ErrRoot is returned when the process would still serve as root.
var ErrRoot = errors.New("privilege: refusing to serve as root")

// Identity is the unprivileged user and group to serve as.
type Identity struct {
	User  string
	Group string
	UID   int
	GID   int
}

// Lookup resolves a user name (or numeric UID) and an optional group name
// (or numeric GID); an empty group means the user's primary group. The
// root user and group are refused.
func Lookup(userName, groupName string) (Identity, error) {
	if userName == "" {
		return Identity{}, errors.New("privilege: no user to serve as")
	}
	u, err := user.Lookup(userName)
	if err != nil {
		if _, nerr := strconv.Atoi(userName); nerr == nil {
			u, err = user.LookupId(userName)
		}
		if err != nil {
			return Identity{}, fmt.Errorf("privilege: user %q: %w", userName, err)
		}
	}
	uid, err := strconv.Atoi(u.Uid)
	if err != nil {
		return Identity{}, fmt.Errorf("privilege: user %q has a non-numeric UID %q", userName, u.Uid)
	}
	gid, err := strconv.Atoi(u.Gid)
	if err != nil {
		return Identity{}, fmt.Errorf("privilege: user %q has a non-numeric GID %q", userName, u.Gid)
	}
	id := Identity{User: u.Username, UID: uid, GID: gid, Group: u.Gid}
	if groupName != "" {
		g, err := user.LookupGroup(groupName)
		if err != nil {
			if _, nerr := strconv.Atoi(groupName); nerr == nil {
				g, err = user.LookupGroupId(groupName)
			}
			if err != nil {
				return Identity{}, fmt.Errorf("privilege: group %q: %w", groupName, err)
			}
		}
		if id.GID, err = strconv.Atoi(g.Gid); err != nil {
			return Identity{}, fmt.Errorf("privilege: group %q has a non-numeric GID %q", groupName, g.Gid)
		}
		id.Group = g.Name
	} else if g, err := user.LookupGroupId(u.Gid); err == nil {
		id.Group = g.Name
	}
	if id.UID == 0 {
		return Identity{}, fmt.Errorf("%w: user %q has UID 0", ErrRoot, userName)
	}
	if id.GID == 0 {
		return Identity{}, fmt.Errorf("%w: group %q has GID 0", ErrRoot, id.Group)
	}
	return id, nil
}

// IsRoot reports whether the process has root's real or effective UID.
func IsRoot() bool { return os.Getuid() == 0 || os.Geteuid() == 0 }
