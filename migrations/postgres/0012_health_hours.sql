-- Health history that stays small: the checks themselves are kept `health.history-hours`, and
-- one row per integration and hour (checks made, working, skipped, and a latency histogram: the
-- JSON of the service's LatencyHistogram, buckets up to 5, 10, 20, 50, 100, 200, 500 ms, 1, 2, 5,
-- 10, 20, 30, 60 s and above) for `health.retention-days`, from which uptime and latency are
-- computed.
CREATE TABLE health_hours (
    integration_id TEXT COLLATE "C" NOT NULL REFERENCES integrations (integration_id) ON DELETE CASCADE,
    hour_ms        BIGINT NOT NULL,
    tenant_id      TEXT NOT NULL,
    made           BIGINT NOT NULL,
    working        BIGINT NOT NULL,
    skipped        BIGINT NOT NULL,
    latency        TEXT NOT NULL,
    PRIMARY KEY (integration_id, hour_ms)
);

-- The hours of the history kept so far, so that uptime and latency read the same after the
-- upgrade; the checks stay until their own retention.
INSERT INTO health_hours (integration_id, hour_ms, tenant_id, made, working, skipped, latency)
SELECT integration_id, (checked_ms / 3600000) * 3600000, MIN(tenant_id),
    SUM(CASE WHEN outcome <> 'skipped' THEN 1 ELSE 0 END),
    SUM(CASE WHEN outcome IN ('healthy', 'degraded') THEN 1 ELSE 0 END),
    SUM(CASE WHEN outcome = 'skipped' THEN 1 ELSE 0 END),
    '{"count":' || SUM(CASE WHEN outcome <> 'skipped' THEN 1 ELSE 0 END) ||
        ',"sumMs":' || SUM(CASE WHEN outcome <> 'skipped' THEN latency_ms ELSE 0 END) ||
        ',"minMs":' || COALESCE(MIN(CASE WHEN outcome <> 'skipped' THEN latency_ms END), 0) ||
        ',"maxMs":' || COALESCE(MAX(CASE WHEN outcome <> 'skipped' THEN latency_ms END), 0) ||
        ',"buckets":[' ||
        SUM(CASE WHEN outcome <> 'skipped' AND latency_ms <= 5 THEN 1 ELSE 0 END) || ',' ||
        SUM(CASE WHEN outcome <> 'skipped' AND latency_ms > 5 AND latency_ms <= 10 THEN 1 ELSE 0 END) || ',' ||
        SUM(CASE WHEN outcome <> 'skipped' AND latency_ms > 10 AND latency_ms <= 20 THEN 1 ELSE 0 END) || ',' ||
        SUM(CASE WHEN outcome <> 'skipped' AND latency_ms > 20 AND latency_ms <= 50 THEN 1 ELSE 0 END) || ',' ||
        SUM(CASE WHEN outcome <> 'skipped' AND latency_ms > 50 AND latency_ms <= 100 THEN 1 ELSE 0 END) || ',' ||
        SUM(CASE WHEN outcome <> 'skipped' AND latency_ms > 100 AND latency_ms <= 200 THEN 1 ELSE 0 END) || ',' ||
        SUM(CASE WHEN outcome <> 'skipped' AND latency_ms > 200 AND latency_ms <= 500 THEN 1 ELSE 0 END) || ',' ||
        SUM(CASE WHEN outcome <> 'skipped' AND latency_ms > 500 AND latency_ms <= 1000 THEN 1 ELSE 0 END) || ',' ||
        SUM(CASE WHEN outcome <> 'skipped' AND latency_ms > 1000 AND latency_ms <= 2000 THEN 1 ELSE 0 END) || ',' ||
        SUM(CASE WHEN outcome <> 'skipped' AND latency_ms > 2000 AND latency_ms <= 5000 THEN 1 ELSE 0 END) || ',' ||
        SUM(CASE WHEN outcome <> 'skipped' AND latency_ms > 5000 AND latency_ms <= 10000 THEN 1 ELSE 0 END) || ',' ||
        SUM(CASE WHEN outcome <> 'skipped' AND latency_ms > 10000 AND latency_ms <= 20000 THEN 1 ELSE 0 END) || ',' ||
        SUM(CASE WHEN outcome <> 'skipped' AND latency_ms > 20000 AND latency_ms <= 30000 THEN 1 ELSE 0 END) || ',' ||
        SUM(CASE WHEN outcome <> 'skipped' AND latency_ms > 30000 AND latency_ms <= 60000 THEN 1 ELSE 0 END) || ',' ||
        SUM(CASE WHEN outcome <> 'skipped' AND latency_ms > 60000 THEN 1 ELSE 0 END) ||
        ']}'
FROM health_checks
GROUP BY integration_id, (checked_ms / 3600000) * 3600000;
