package sqlite

import "github.com/openfinger/finger/internal/store"

// migrations is the schema, one step at a time. Published steps never
// change; a change of schema is a new step. Times are microseconds since
// the Unix epoch, booleans 0 or 1.
var migrations = []store.Migration{
	{Version: 1, Name: "hosted users, texts, history, tombstones", SQL: `
CREATE TABLE meta (
	id      INTEGER PRIMARY KEY CHECK (id = 1),
	version INTEGER NOT NULL
);
INSERT INTO meta (id, version) VALUES (1, 0);

CREATE TABLE users (
	name       TEXT PRIMARY KEY,
	real_name  TEXT NOT NULL DEFAULT '',
	listed     INTEGER NOT NULL DEFAULT 0,
	hidden     INTEGER NOT NULL DEFAULT 0,
	created    INTEGER NOT NULL,
	token_hash BLOB NOT NULL,
	version    INTEGER NOT NULL
);
CREATE INDEX users_version ON users (version);

CREATE TABLE texts (
	name    TEXT NOT NULL,
	kind    TEXT NOT NULL,
	body    TEXT NOT NULL,
	changed INTEGER NOT NULL,
	version INTEGER NOT NULL,
	PRIMARY KEY (name, kind)
);

CREATE TABLE history (
	version INTEGER PRIMARY KEY,
	name    TEXT NOT NULL,
	kind    TEXT NOT NULL,
	body    TEXT NOT NULL,
	at      INTEGER NOT NULL,
	deleted INTEGER NOT NULL
);
CREATE INDEX history_name_kind ON history (name, kind, version);
CREATE INDEX history_kind ON history (kind, version);

CREATE TABLE tombstones (
	name    TEXT PRIMARY KEY,
	version INTEGER NOT NULL
);
CREATE INDEX tombstones_version ON tombstones (version);
`},
}
