-- Browser sessions. `id` is a hash of the cookie value (the web layer hashes
-- it), so a copy of the database does not hand out live sessions.

CREATE TABLE sessions (
    id      TEXT PRIMARY KEY,
    data    TEXT NOT NULL,
    expires TEXT NOT NULL
) STRICT;

CREATE INDEX sessions_by_expiry ON sessions (expires);
