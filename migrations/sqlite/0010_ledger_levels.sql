-- Ledger levels: an entry is `full` (the whole record) or `summary` (healthy checks that repeated
-- their integration's previous check, folded per hour; `record` then holds the summary). Entries
-- kept before this column existed are full.
ALTER TABLE invocations ADD COLUMN level TEXT NOT NULL DEFAULT 'full';
-- What the integration's last check did (its entry's digest) and its last full entry: a healthy
-- check with the same digest is folded into a summary that repeats that entry.
ALTER TABLE health_schedule ADD COLUMN last_digest TEXT;
ALTER TABLE health_schedule ADD COLUMN last_full TEXT;
