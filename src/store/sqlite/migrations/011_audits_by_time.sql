-- The whole trail read by time (the study-wide audit export), a page at a
-- time; entries of one instant in the order they were written.
CREATE INDEX audits_by_time ON audits (datetime, seq);
