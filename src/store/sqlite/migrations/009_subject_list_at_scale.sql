-- Subject lists whose cost does not grow with the number of subjects
-- (`store::subject_list`).

-- 1. Searches of one or two characters through the trigram index. Each
-- name is now indexed padded with two U+0001 characters, so that every
-- character and pair of characters of a name starts one of its trigrams,
-- and such a search is a range of the index's terms (read through the
-- `instance` vocabulary table, one row per trigram of a name). The
-- padding is only in the index: `subject_names` keeps the plain folded
-- name, which every match is checked against. So the index must never be
-- rebuilt with the 'rebuild' command (it would index unpadded names):
-- delete everything and insert the padded names, as below.

DROP TRIGGER subject_names_after_insert;
DROP TRIGGER subject_names_after_delete;
DROP TRIGGER subject_names_after_update;

CREATE TRIGGER subject_names_after_insert AFTER INSERT ON subject_names BEGIN
    INSERT INTO subject_names_trigrams (rowid, name_folded)
        VALUES (new.id, new.name_folded || char(1, 1));
END;
CREATE TRIGGER subject_names_after_delete AFTER DELETE ON subject_names BEGIN
    INSERT INTO subject_names_trigrams (subject_names_trigrams, rowid, name_folded)
        VALUES ('delete', old.id, old.name_folded || char(1, 1));
END;
CREATE TRIGGER subject_names_after_update AFTER UPDATE OF name_folded ON subject_names BEGIN
    INSERT INTO subject_names_trigrams (subject_names_trigrams, rowid, name_folded)
        VALUES ('delete', old.id, old.name_folded || char(1, 1));
    INSERT INTO subject_names_trigrams (rowid, name_folded)
        VALUES (new.id, new.name_folded || char(1, 1));
END;

INSERT INTO subject_names_trigrams (subject_names_trigrams) VALUES ('delete-all');
INSERT INTO subject_names_trigrams (rowid, name_folded)
    SELECT id, name_folded || char(1, 1) FROM subject_names;

CREATE VIRTUAL TABLE subject_name_trigram_terms
    USING fts5vocab(subject_names_trigrams, instance);

-- 2. The number of subjects, kept by triggers, so the total of an
-- unfiltered list costs one row instead of a count of every subject.

CREATE TABLE subject_count (
    one      INTEGER PRIMARY KEY CHECK (one = 1),
    subjects INTEGER NOT NULL
) STRICT;
INSERT INTO subject_count (one, subjects) SELECT 1, count(*) FROM subjects;

CREATE TRIGGER subjects_count_after_insert AFTER INSERT ON subjects BEGIN
    UPDATE subject_count SET subjects = subjects + 1;
END;
CREATE TRIGGER subjects_count_after_delete AFTER DELETE ON subjects BEGIN
    UPDATE subject_count SET subjects = subjects - 1;
END;

-- 3. A search sorted by name walks the name order testing each folded
-- name: with the folded name in the index, the walk never reads the table.

DROP INDEX subjects_by_name_sort;
CREATE INDEX subjects_by_name_sort ON subjects (name_sort, sssid, name_folded);
