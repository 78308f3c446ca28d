package postgres

import "github.com/openfinger/finger/internal/store"

// migrations is the schema, one step at a time, with the same tables,
// columns and steps as the SQLite driver's, in PostgreSQL's types.
// Published steps never change; a change of schema is a new step. Times are
// timestamptz (microseconds, as store.Now records them).
var migrations = []store.Migration{
	{Version: 1, Name: "hosted users, texts, history, tombstones", SQL: `
CREATE TABLE meta (
	id      integer PRIMARY KEY CHECK (id = 1),
	version bigint NOT NULL
);
INSERT INTO meta (id, version) VALUES (1, 0);

CREATE TABLE users (
	name       text PRIMARY KEY,
	real_name  text NOT NULL DEFAULT '',
	listed     boolean NOT NULL DEFAULT false,
	hidden     boolean NOT NULL DEFAULT false,
	created    timestamptz NOT NULL,
	token_hash bytea NOT NULL,
	version    bigint NOT NULL
);
CREATE INDEX users_version ON users (version);

CREATE TABLE texts (
	name    text NOT NULL,
	kind    text NOT NULL,
	body    text NOT NULL,
	changed timestamptz NOT NULL,
	version bigint NOT NULL,
	PRIMARY KEY (name, kind)
);

CREATE TABLE history (
	version bigint PRIMARY KEY,
	name    text NOT NULL,
	kind    text NOT NULL,
	body    text NOT NULL,
	at      timestamptz NOT NULL,
	deleted boolean NOT NULL
);
CREATE INDEX history_name_kind ON history (name, kind, version);
CREATE INDEX history_kind ON history (kind, version);

CREATE TABLE tombstones (
	name    text PRIMARY KEY,
	version bigint NOT NULL
);
CREATE INDEX tombstones_version ON tombstones (version);
`},
}
