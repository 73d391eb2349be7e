-- Per-integration health check interval, in seconds; NULL: the service's default
-- (health.interval-seconds). The API validates the range; the CHECK keeps any other writer to it.
ALTER TABLE integrations ADD COLUMN health_check_interval_s BIGINT
    CHECK (health_check_interval_s BETWEEN 30 AND 86400);

-- The replica that made each check (its lease owner name), for telling replicas apart when one of
-- them cannot reach what the others can. NULL for checks recorded before this column existed.
ALTER TABLE health_checks ADD COLUMN replica TEXT;

-- A change of an integration's interval while its check runs under a lease: the check's end makes
-- the next one due at once (instead of an old interval later).
ALTER TABLE health_schedule ADD COLUMN reschedule BOOLEAN NOT NULL DEFAULT FALSE;
