-- The whole trail read by time (the study-wide audit export), a page at a
-- time.
CREATE INDEX audits_by_time ON audits (datetime, id);
