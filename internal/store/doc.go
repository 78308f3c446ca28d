// Package store is the directory of hosted users: people who publish a plan
// through fingerd without an account on the host. It holds their names,
// their published texts (plan, project, pgpkey) with a bounded history, and
// the hashes of their publishing tokens.
//
// The package defines the Store interface, its types and errors, and a
// registry of drivers in the manner of database/sql: a driver package
// registers a URL scheme in its init function and Open picks the driver by
// the scheme of the URL.
//
//	import _ "github.com/openfinger/finger/internal/store/sqlite"
//	st, err := store.Open(ctx, "sqlite:/var/lib/fingerd/fingerd.db")
//	...
//	if _, err := st.Migrate(ctx); err != nil { ... }
//
// The store knows nothing about finger: names are checked by ValidName and
// texts by ValidText, so that every driver accepts exactly the same input,
// and everything else (who may publish, what an answer looks like) belongs
// to the callers. Every driver runs the conformance suite in
// internal/store/storetest.
//
// # Versions and caching
//
// A store has a version: an integer that every write raises by one, in the
// same transaction as the write, so that versions are assigned in commit order
// (a single counter row updated by each writing transaction does this).
// Readers that answer many queries, such as the finger source in
// internal/userinfo/hosted, do not ask the store for every answer. They
// hold a Snapshot and keep it current:
//
//   - at start, Snapshot(ctx, 0) returns the whole directory and its version;
//   - they then poll Version, a cheap query, a few times a second, and when it
//     differs from theirs call Snapshot(ctx, theirs), which returns only the
//     users changed or deleted since, to merge into their copy;
//   - a store that can announce writes sooner than a poll would see them
//     implements Watcher (SQLite announces the writes of its own process,
//     PostgreSQL those of every process through LISTEN/NOTIFY); a reader
//     that is told refreshes soon, and still polls, so a missed
//     announcement cannot leave it stale for longer than a poll interval;
//   - a reader that also writes can apply the Change that PutText or
//     DeleteText returned to its copy without reading it back, when its
//     copy is at the version just before the change: versions are
//     consecutive, so nothing else was written in between.
//
// A reader that cannot reach the store keeps answering from what it holds.
//
// # Schema
//
// Every driver keeps the same logical schema, created and changed by
// numbered migrations (see Migration) recorded in a table
// schema_migrations(version, name, applied). The tables are:
//
//	users(name primary key, real_name, listed, hidden, created, token_hash, version)
//	texts(name, kind, body, changed, version; primary key (name, kind))
//	history(id, name, kind, body, at, deleted, version) keeping the newest HistoryLimit per (name, kind)
//	tombstones(name primary key, version) for users deleted, so that Snapshot can report them
//	meta(version) one row: the store version
//
// where a row's version is the store version of the write that last changed
// it. Times are stored to the microsecond.
package store
