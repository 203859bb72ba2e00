-- Staff accounts, the audit trail and throttling counters.
-- Timestamps are RFC 3339 UTC text with a fixed width, so they sort as text.

CREATE TABLE users (
    id            TEXT PRIMARY KEY,
    username      TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    admin         INTEGER NOT NULL CHECK (admin IN (0, 1)),
    token_version INTEGER NOT NULL DEFAULT 0,
    created       TEXT NOT NULL,
    changed       TEXT NOT NULL,
    last_login    TEXT
) STRICT;

CREATE INDEX users_admins ON users (admin) WHERE admin = 1;

CREATE TABLE audits (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    datetime   TEXT NOT NULL,
    action     TEXT NOT NULL,
    actor      TEXT,
    request_id TEXT,
    subject    TEXT,
    link       TEXT,
    user       TEXT
) STRICT;

CREATE INDEX audits_by_subject ON audits (subject, id) WHERE subject IS NOT NULL;
CREATE INDEX audits_by_user ON audits (user, id) WHERE user IS NOT NULL;

CREATE TABLE throttle (
    key       TEXT PRIMARY KEY,
    count     INTEGER NOT NULL,
    resets_at TEXT NOT NULL
) STRICT;
