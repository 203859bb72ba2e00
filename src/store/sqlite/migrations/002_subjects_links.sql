-- Study subjects and their links (QR-code invitations).
-- Timestamps are fixed-width RFC 3339 UTC text and birth dates YYYY-MM-DD,
-- so both sort correctly as text.

-- WITHOUT ROWID: the table is the sssid index, so a fetch by sssid is one
-- b-tree lookup and listing by sssid walks the table in order.
CREATE TABLE subjects (
    sssid          TEXT PRIMARY KEY,
    name           TEXT NOT NULL,
    -- Lower-cased name (Unicode lower-casing done in Rust), for
    -- case-insensitive search and ordering.
    name_folded    TEXT NOT NULL,
    bday           TEXT NOT NULL,
    email          TEXT,
    date_invited   TEXT,
    date_consented TEXT,
    date_enrolled  TEXT,
    date_withdrawn TEXT,
    created        TEXT NOT NULL,
    changed        TEXT NOT NULL,
    version        INTEGER NOT NULL,
    -- The latest state, for the status filter (SPEC section 4).
    status         TEXT GENERATED ALWAYS AS (CASE
        WHEN date_withdrawn IS NOT NULL THEN 'withdrawn'
        WHEN date_enrolled IS NOT NULL THEN 'enrolled'
        WHEN date_consented IS NOT NULL THEN 'consented'
        WHEN date_invited IS NOT NULL THEN 'invited'
    END) VIRTUAL
) STRICT, WITHOUT ROWID;

-- One index per sort column; sssid breaks ties so pages are stable and the
-- ORDER BY ... LIMIT walks an index instead of sorting the table.
CREATE INDEX subjects_by_name ON subjects (name_folded, sssid);
CREATE INDEX subjects_by_bday ON subjects (bday, sssid);
CREATE INDEX subjects_by_created ON subjects (created, sssid);
CREATE INDEX subjects_by_changed ON subjects (changed, sssid);
CREATE INDEX subjects_by_invited ON subjects (date_invited, sssid);
CREATE INDEX subjects_by_consented ON subjects (date_consented, sssid);
CREATE INDEX subjects_by_enrolled ON subjects (date_enrolled, sssid);
CREATE INDEX subjects_by_withdrawn ON subjects (date_withdrawn, sssid);
CREATE INDEX subjects_by_status ON subjects (status, sssid);

-- No foreign key to subjects: imported data from the old service may hold
-- links of subjects that no longer exist, and subjects are never deleted.
CREATE TABLE links (
    id            TEXT PRIMARY KEY,
    sssid         TEXT NOT NULL,
    iss           TEXT NOT NULL,
    aud           TEXT NOT NULL,
    algorithm     TEXT NOT NULL,
    created       TEXT NOT NULL,
    changed       TEXT NOT NULL,
    issued_at     TEXT,
    exp           TEXT,
    linked_on     TEXT,
    linked_to     TEXT,
    linked_system TEXT,
    withdrawn_on  TEXT,
    version       INTEGER NOT NULL
) STRICT;

CREATE INDEX links_by_subject ON links (sssid, created, id);
