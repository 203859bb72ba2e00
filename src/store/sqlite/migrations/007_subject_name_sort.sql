-- Names sort the way readers expect: Åsa and Émilie among the a's and e's,
-- not after Zoë. `name_sort` holds the key (transliterated to Latin letters
-- without diacritics, lower-cased; computed in Rust, `name_sort_key`), so
-- the order is an index walk. Existing rows get their key from the hook
-- that runs after this script, in the same transaction.

ALTER TABLE subjects ADD COLUMN name_sort TEXT NOT NULL DEFAULT '';

-- The name order's index replaces the one over the lower-cased name, which
-- only that order used (searches read `subject_names`).
DROP INDEX subjects_by_name;
CREATE INDEX subjects_by_name_sort ON subjects (name_sort, sssid);
