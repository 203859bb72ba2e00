-- A trigram index over subject names, so a name-substring search reads the
-- matching rows instead of scanning every subject (SPEC section 4: fast at
-- 100,000 subjects). FTS5 needs integer row ids and `subjects` has none
-- (WITHOUT ROWID), so a small table gives each subject's folded name one,
-- and triggers keep it and the index in step with `subjects`.

CREATE TABLE subject_names (
    id          INTEGER PRIMARY KEY,
    sssid       TEXT NOT NULL UNIQUE,
    name_folded TEXT NOT NULL
) STRICT;

-- `name_folded` is already lower-cased (in Rust, for all of Unicode), so
-- the index compares case-sensitively and matches exactly what
-- `instr(name_folded, ...)` matched before.
CREATE VIRTUAL TABLE subject_names_trigrams USING fts5(
    name_folded,
    content = 'subject_names',
    content_rowid = 'id',
    tokenize = 'trigram case_sensitive 1'
);

CREATE TRIGGER subject_names_after_insert AFTER INSERT ON subject_names BEGIN
    INSERT INTO subject_names_trigrams (rowid, name_folded) VALUES (new.id, new.name_folded);
END;
CREATE TRIGGER subject_names_after_delete AFTER DELETE ON subject_names BEGIN
    INSERT INTO subject_names_trigrams (subject_names_trigrams, rowid, name_folded)
        VALUES ('delete', old.id, old.name_folded);
END;
CREATE TRIGGER subject_names_after_update AFTER UPDATE OF name_folded ON subject_names BEGIN
    INSERT INTO subject_names_trigrams (subject_names_trigrams, rowid, name_folded)
        VALUES ('delete', old.id, old.name_folded);
    INSERT INTO subject_names_trigrams (rowid, name_folded) VALUES (new.id, new.name_folded);
END;

CREATE TRIGGER subjects_name_after_insert AFTER INSERT ON subjects BEGIN
    INSERT INTO subject_names (sssid, name_folded) VALUES (new.sssid, new.name_folded);
END;
CREATE TRIGGER subjects_name_after_update AFTER UPDATE OF name_folded ON subjects
    WHEN old.name_folded IS NOT new.name_folded BEGIN
    UPDATE subject_names SET name_folded = new.name_folded WHERE sssid = new.sssid;
END;
CREATE TRIGGER subjects_name_after_delete AFTER DELETE ON subjects BEGIN
    DELETE FROM subject_names WHERE sssid = old.sssid;
END;

INSERT INTO subject_names (sssid, name_folded) SELECT sssid, name_folded FROM subjects;
