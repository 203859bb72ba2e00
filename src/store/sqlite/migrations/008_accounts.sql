-- Staff account lifecycle: role, state, second factor, recovery codes, and
-- sessions found by their user.
--
-- `role` is NULL for accounts written before roles existed: the admin flag
-- decides whether an account is an admin, `role` tells staff from
-- monitors. `state` of existing accounts is 'active'.

ALTER TABLE users ADD COLUMN role TEXT CHECK (role IN ('admin', 'staff', 'monitor'));
ALTER TABLE users ADD COLUMN state TEXT NOT NULL DEFAULT 'active'
    CHECK (state IN ('invited', 'active', 'disabled'));
-- The TOTP secret, encrypted by the service (see DEPLOY.md).
ALTER TABLE users ADD COLUMN totp_secret TEXT;
ALTER TABLE users ADD COLUMN totp_confirmed INTEGER NOT NULL DEFAULT 0
    CHECK (totp_confirmed IN (0, 1));
ALTER TABLE users ADD COLUMN totp_last_step INTEGER;

-- Single-use recovery codes, stored as keyed hashes only.
CREATE TABLE recovery_codes (
    user_id   TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    code_hash TEXT NOT NULL,
    PRIMARY KEY (user_id, code_hash)
) STRICT, WITHOUT ROWID;

-- The user a signed-in session belongs to, read from its data.
ALTER TABLE sessions ADD COLUMN user_id TEXT
    GENERATED ALWAYS AS (json_extract(data, '$.auth.user_id')) VIRTUAL;
CREATE INDEX sessions_by_user ON sessions (user_id) WHERE user_id IS NOT NULL;
