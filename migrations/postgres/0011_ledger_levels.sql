-- Ledger levels: an entry is `full` (the whole record) or `summary` (healthy checks that repeated
-- their integration's previous check, folded per hour; `record` then holds the summary). Entries
-- kept before this column existed are full.
ALTER TABLE invocations ADD COLUMN level TEXT NOT NULL DEFAULT 'full';
-- What the integration's last check did (its entry's digest) and its last full entry (id, start):
-- a healthy check with the same digest, on the same day (UTC) as that entry, is folded into a
-- summary that repeats it. The first check of a day is kept in full, so that a summary and the
-- entry it repeats are kept, and go, together.
ALTER TABLE health_schedule ADD COLUMN last_digest TEXT;
ALTER TABLE health_schedule ADD COLUMN last_full TEXT;
ALTER TABLE health_schedule ADD COLUMN last_full_ms BIGINT;
