package store

import (
	"slices"
	"strings"
)

// SnapshotBuilder assembles the answer of a driver's Snapshot from the
// rows it reads in one transaction, so that every driver decides alike
// when a snapshot is full and returns its users and deletions in the same
// order.
type SnapshotBuilder struct {
	snap  Snapshot
	since int64
	index map[string]int // name → index in snap.Users
}

// NewSnapshotBuilder begins the snapshot of a store at version of what
// changed after since. The snapshot is full when since is 0 or less, or
// later than version: a version from the future means the store was
// replaced (a restored backup), and the reader must start again.
func NewSnapshotBuilder(version, since int64) *SnapshotBuilder {
	b := &SnapshotBuilder{snap: Snapshot{Version: version}, since: since, index: make(map[string]int)}
	if since <= 0 || since > version {
		b.since, b.snap.Full = 0, true
	}
	return b
}

// Since returns the version after which the driver reads what changed: 0
// for a full snapshot.
func (b *SnapshotBuilder) Since() int64 { return b.since }

// Full reports whether the snapshot is the whole directory; when it is
// not, the driver adds the names deleted after Since.
func (b *SnapshotBuilder) Full() bool { return b.snap.Full }

// AddUser adds a user with the hash of their token, whose last write had
// version v, with no texts yet.
func (b *SnapshotBuilder) AddUser(u User, tokenHash []byte, v int64) {
	b.index[u.Name] = len(b.snap.Users)
	b.snap.Users = append(b.snap.Users, Entry{User: u, Texts: map[Kind]Text{}, TokenHash: tokenHash, Version: v})
}

// Users returns the number of users added.
func (b *SnapshotBuilder) Users() int { return len(b.snap.Users) }

// AddText adds a text of the user name, if that user was added; the
// texts of other users are left out.
func (b *SnapshotBuilder) AddText(name string, t Text) {
	if i, ok := b.index[name]; ok {
		b.snap.Users[i].Texts[t.Kind] = t
	}
}

// AddDeleted adds a name deleted after Since.
func (b *SnapshotBuilder) AddDeleted(name string) {
	b.snap.Deleted = append(b.snap.Deleted, name)
}

// Snapshot returns the snapshot, its users and deleted names sorted by
// name (byte order). The builder must not be used afterwards.
func (b *SnapshotBuilder) Snapshot() *Snapshot {
	slices.SortFunc(b.snap.Users, func(x, y Entry) int { return strings.Compare(x.Name, y.Name) })
	slices.Sort(b.snap.Deleted)
	b.index = nil
	return &b.snap
}
