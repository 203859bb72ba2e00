-- The audit trail becomes a hash chain (store/chain.rs): `seq` numbers the
-- entries 1, 2, 3, ... (the row id, so appending and verifying walk the
-- table in order), `hash` chains each entry to the one before, `action`
-- holds the text with a placeholder per personal value and `personal`
-- (JSON) those values with their salts and commitments, so they can be
-- erased while the chain still verifies. The hook after this script
-- chains the existing entries in the order they were written.

DROP INDEX audits_by_subject;
DROP INDEX audits_by_user;
ALTER TABLE audits RENAME TO audits_unchained;

CREATE TABLE audits (
    seq        INTEGER PRIMARY KEY,
    hash       TEXT NOT NULL,
    datetime   TEXT NOT NULL,
    action     TEXT NOT NULL,
    personal   TEXT,
    actor      TEXT,
    request_id TEXT,
    client_ip  TEXT,
    subject    TEXT,
    link       TEXT,
    user       TEXT
) STRICT;

CREATE INDEX audits_by_subject ON audits (subject, seq) WHERE subject IS NOT NULL;
CREATE INDEX audits_by_user ON audits (user, seq) WHERE user IS NOT NULL;
