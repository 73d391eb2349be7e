-- Retention that costs nothing: the ledger, the health history and its hourly rollups are
-- partitioned by day (UTC, on their Unix-millisecond time), and retention drops whole partitions
-- (no DELETE, no dead tuples for VACUUM). The service creates each day's partition ahead of time
-- (the maintenance task); a row outside every partition goes to `<table>_default` (a clock far
-- off, say), which retention empties by DELETE.
--
-- The rows kept so far become one partition each, `<table>_before`, holding everything before
-- the end of the day of the upgrade, and dropped whole once that day has passed the retention. A
-- partitioned table's unique keys include its partition key: an entry is unique by (id, time),
-- which it always was (an entry's time never changes).
DO $$
DECLARE
    -- The end of today (UTC), in Unix ms: the `_before` partitions end there.
    cut BIGINT := (floor(extract(epoch FROM now()) / 86400)::BIGINT + 1) * 86400000;
BEGIN
    -- The ledger.
    ALTER TABLE invocations RENAME TO invocations_before;
    ALTER TABLE invocations_before DROP CONSTRAINT invocations_pkey;
    DROP INDEX invocations_tenant_time, invocations_provider_time, invocations_time;
    CREATE TABLE invocations (LIKE invocations_before INCLUDING DEFAULTS) PARTITION BY RANGE (at_ms);
    ALTER TABLE invocations ADD PRIMARY KEY (invocation_id, at_ms);
    CREATE INDEX invocations_tenant_time ON invocations (tenant_id, at_ms, invocation_id);
    CREATE INDEX invocations_provider_time ON invocations (provider, at_ms, invocation_id);
    EXECUTE format('ALTER TABLE invocations ATTACH PARTITION invocations_before FOR VALUES FROM (MINVALUE) TO (%s)', cut);
    CREATE TABLE invocations_default PARTITION OF invocations DEFAULT;

    -- The health history.
    ALTER TABLE health_checks RENAME TO health_checks_before;
    ALTER TABLE health_checks_before DROP CONSTRAINT health_checks_pkey;
    ALTER TABLE health_checks_before DROP CONSTRAINT health_checks_integration_id_fkey;
    DROP INDEX health_checks_integration, health_checks_time;
    CREATE TABLE health_checks (LIKE health_checks_before INCLUDING DEFAULTS) PARTITION BY RANGE (checked_ms);
    ALTER TABLE health_checks ADD PRIMARY KEY (check_id, checked_ms);
    ALTER TABLE health_checks ADD FOREIGN KEY (integration_id) REFERENCES integrations (integration_id) ON DELETE CASCADE;
    CREATE INDEX health_checks_integration ON health_checks (integration_id, checked_ms);
    EXECUTE format('ALTER TABLE health_checks ATTACH PARTITION health_checks_before FOR VALUES FROM (MINVALUE) TO (%s)', cut);
    CREATE TABLE health_checks_default PARTITION OF health_checks DEFAULT;

    -- Its hourly rollups.
    ALTER TABLE health_hours RENAME TO health_hours_before;
    ALTER TABLE health_hours_before DROP CONSTRAINT health_hours_pkey;
    ALTER TABLE health_hours_before DROP CONSTRAINT health_hours_integration_id_fkey;
    CREATE TABLE health_hours (LIKE health_hours_before INCLUDING DEFAULTS) PARTITION BY RANGE (hour_ms);
    ALTER TABLE health_hours ADD PRIMARY KEY (integration_id, hour_ms);
    ALTER TABLE health_hours ADD FOREIGN KEY (integration_id) REFERENCES integrations (integration_id) ON DELETE CASCADE;
    EXECUTE format('ALTER TABLE health_hours ATTACH PARTITION health_hours_before FOR VALUES FROM (MINVALUE) TO (%s)', cut);
    CREATE TABLE health_hours_default PARTITION OF health_hours DEFAULT;
END
$$;
